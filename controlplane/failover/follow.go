package failover

import (
	"fmt"
	"time"
)

// FollowBound is how long a running reader may go without a WAL receiver streaming the
// writer's current timeline, while the writer itself answers its probes, before it is repaired
// (stopped, then rewound or cloned afresh from the writer). A healthy reader is re-pointed and
// streams within a second or two of a failover or of a restart of either side, and a rejoined
// one at its start; a reader that cannot follow (it holds WAL past the point where the new
// timeline forked, or needs WAL the writer no longer has) retries its WAL receiver forever and
// would otherwise stay "available" in describe while its lag grows.
const FollowBound = 15 * time.Second

// FollowObservation is one look at a reader's WAL receiver (pg_stat_wal_receiver).
type FollowObservation struct {
	At time.Time
	// WriterTimeline is the writer's current timeline; 0 when unknown (the reader is then
	// judged by its receiver's status alone).
	WriterTimeline uint32
	// Status is pg_stat_wal_receiver.status ("" when there is no WAL receiver).
	Status string
	// ReceivedTimeline is pg_stat_wal_receiver.received_tli (0 when none).
	ReceivedTimeline uint32
}

// Following reports whether the observation shows the reader streaming the writer's timeline.
func (o FollowObservation) Following() bool {
	return o.Status == "streaming" && (o.WriterTimeline == 0 || o.ReceivedTimeline == o.WriterTimeline)
}

func (o FollowObservation) describe() string {
	switch {
	case o.Status == "":
		return "no WAL receiver"
	case o.Status != "streaming":
		return fmt.Sprintf("WAL receiver %s (on timeline %d)", o.Status, o.ReceivedTimeline)
	default:
		return fmt.Sprintf("WAL receiver streaming timeline %d, the writer is on timeline %d", o.ReceivedTimeline, o.WriterTimeline)
	}
}

// FollowWatch judges one reader over time: Observe is fed each look taken while the writer
// answers its probes, Reset when nothing can be judged (the writer fails, the reader is not
// running). Each repair doubles the bound for the next one (up to 8 times), so that a reader
// that cannot follow for a reason a fresh copy does not cure is not cloned in a loop; a full
// bound of following brings it back.
type FollowWatch struct {
	// Bound is the base bound (FollowBound when zero).
	Bound time.Duration

	since     time.Time // first look of the current spell of not following (zero: following)
	okSince   time.Time // first look of the current spell of following
	repairs   int
	lastWhy   string
	lastCheck time.Time
}

func (w *FollowWatch) bound() time.Duration {
	b := w.Bound
	if b <= 0 {
		b = FollowBound
	}
	return b << min(w.repairs, 3)
}

// Reset forgets the current spell: nothing can be judged now.
func (w *FollowWatch) Reset() { w.since, w.okSince = time.Time{}, time.Time{} }

// Observe feeds one look and says whether the reader must be repaired now, and why.
func (w *FollowWatch) Observe(o FollowObservation) (repair bool, why string) {
	// A spell is judged on looks that follow each other: after a gap of half a bound or more
	// (a paused cluster, a prober that was not scheduled) it starts again.
	if !w.lastCheck.IsZero() && o.At.Sub(w.lastCheck) >= w.baseBound()/2 {
		w.Reset()
	}
	w.lastCheck = o.At
	if o.Following() {
		w.since = time.Time{}
		if w.okSince.IsZero() {
			w.okSince = o.At
		}
		if w.repairs > 0 && o.At.Sub(w.okSince) >= w.baseBound() {
			w.repairs = 0
		}
		return false, ""
	}
	w.okSince = time.Time{}
	if w.since.IsZero() {
		w.since = o.At
	}
	w.lastWhy = o.describe()
	if d := o.At.Sub(w.since); d >= w.bound() {
		w.repairs++
		w.since = time.Time{}
		return true, fmt.Sprintf("not following the writer for %.0f s (%s)", d.Seconds(), w.lastWhy)
	}
	return false, ""
}

func (w *FollowWatch) baseBound() time.Duration {
	if w.Bound <= 0 {
		return FollowBound
	}
	return w.Bound
}

// NotFollowingFor is how long the current spell of not following has lasted at the last look
// (0 when following or unknown).
func (w *FollowWatch) NotFollowingFor() time.Duration {
	if w.since.IsZero() {
		return 0
	}
	return w.lastCheck.Sub(w.since)
}
