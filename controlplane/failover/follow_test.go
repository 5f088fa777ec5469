package failover

import (
	"strings"
	"testing"
	"time"
)

func TestFollowWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	streaming := func(s float64, tli, writer uint32) FollowObservation {
		return FollowObservation{At: at(s), Status: "streaming", ReceivedTimeline: tli, WriterTimeline: writer}
	}
	none := func(s float64) FollowObservation { return FollowObservation{At: at(s), WriterTimeline: 3} }
	waiting := func(s float64) FollowObservation {
		return FollowObservation{At: at(s), Status: "waiting", ReceivedTimeline: 2, WriterTimeline: 3}
	}
	old := func(s float64) FollowObservation { return streaming(s, 2, 3) }
	ok := func(s float64) FollowObservation { return streaming(s, 3, 3) }
	type step struct {
		o      FollowObservation
		reset  bool
		repair bool
		why    string
	}
	// looks are one look a second from a to b, none calling for a repair.
	looks := func(f func(float64) FollowObservation, a, b float64) []step {
		var out []step
		for s := a; s <= b; s++ {
			out = append(out, step{o: f(s)})
		}
		return out
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(s step) []step { return []step{s} }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"streaming the writer's timeline is following", looks(ok, 0, 100)},
		{"unknown writer timeline: streaming is enough", looks(func(s float64) FollowObservation { return streaming(s, 2, 0) }, 0, 100)},
		{"no WAL receiver for the bound", cat(looks(none, 0, 14), one(step{o: none(15), repair: true, why: "no WAL receiver"}))},
		{"streaming an old timeline (forked past it) counts as not following", cat(looks(old, 0, 14),
			one(step{o: old(15), repair: true, why: "streaming timeline 2, the writer is on timeline 3"}))},
		{"a receiver stuck in waiting", cat(looks(waiting, 0, 14), one(step{o: waiting(15), repair: true, why: "WAL receiver waiting (on timeline 2)"}))},
		{"a short gap (restart, failover) is not repaired", cat(looks(ok, 0, 1), looks(none, 2, 15), looks(ok, 16, 17), looks(none, 18, 32))},
		{"a reset (writer failing, reader down) restarts the clock", cat(looks(none, 0, 10), one(step{reset: true}), looks(none, 11, 25),
			one(step{o: none(26), repair: true}))},
		{"a gap between looks (paused, prober not scheduled) restarts the spell", cat(looks(none, 0, 10), looks(none, 100, 114),
			one(step{o: none(115), repair: true}))},
		{"repairs back off: 15 s, then 30 s, 60 s, 120 s, until it follows a full bound", cat(
			looks(none, 0, 14), one(step{o: none(15), repair: true}),
			looks(none, 16, 45), one(step{o: none(46), repair: true}), // 30 s
			looks(none, 47, 106), one(step{o: none(107), repair: true}), // 60 s
			looks(ok, 108, 110), looks(none, 111, 230), one(step{o: none(231), repair: true}), // followed 3 s only: 120 s
			looks(none, 232, 351), one(step{o: none(352), repair: true}), // capped at 8x
			looks(ok, 353, 368), looks(none, 369, 383), one(step{o: none(384), repair: true}), // a full bound following: 15 s again
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w FollowWatch
			for i, s := range tc.steps {
				if s.reset {
					w.Reset()
					continue
				}
				repair, why := w.Observe(s.o)
				if repair != s.repair {
					t.Fatalf("step %d (%+v): repair %v, want %v (%s)", i, s.o, repair, s.repair, why)
				}
				if repair && !strings.Contains(why, s.why) {
					t.Fatalf("step %d: why %q, want it to contain %q", i, why, s.why)
				}
			}
		})
	}
}
