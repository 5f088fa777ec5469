package failover

import (
	"fmt"
	"sort"
	"strings"
)

// Promotion tiers, as Aurora defines them: 0 is promoted first.
const (
	MinTier = 0
	MaxTier = 15
)

// ValidateTier checks a promotion tier.
func ValidateTier(tier int) error {
	if tier < MinTier || tier > MaxTier {
		return fmt.Errorf("%d is out of range: use %d (promoted first) to %d", tier, MinTier, MaxTier)
	}
	return nil
}

// Durability modes of a cluster.
const (
	// Asynchronous commits return once the writer has flushed them; a failover can lose what
	// the promoted reader had not received (the replay lag reported before the failure).
	Asynchronous = "asynchronous"
	// Synchronous commits return once the writer and at least one reader have flushed them
	// (synchronous_standby_names = ANY 1 over the readers); only a reader that holds every
	// acknowledged commit is promoted.
	Synchronous = "synchronous"
)

// ValidateMode checks a durability mode name.
func ValidateMode(mode string) error {
	if mode != Asynchronous && mode != Synchronous {
		return fmt.Errorf("%q is not a durability mode: use %s or %s", mode, Asynchronous, Synchronous)
	}
	return nil
}

// Candidate is one reader as seen just before a promotion.
type Candidate struct {
	ID       string
	Tier     int
	Capacity float64
	// Reachable means the reader answered a query in recovery (a hot standby that can be promoted).
	Reachable bool
	// Received is the end of the WAL the reader has flushed (pg_last_wal_receive_lsn), Replayed
	// what it has applied (pg_last_wal_replay_lsn); both are byte positions.
	Received, Replayed uint64
	// Timeline is the timeline of the reader's most advanced WAL (0: unknown). A position
	// means something only on its timeline: see Timelines.
	Timeline uint32
}

// Timelines is what is known of the cluster's WAL history at the choice.
type Timelines struct {
	// Current is the newest timeline known: the failed writer's, when it was seen, else the
	// newest any reader is on. Readers' own timelines raise it.
	Current uint32
	// SwitchPoints maps each ancestor of Current to the LSN where it ended (the new timeline
	// began there), from Current's history file.
	SwitchPoints map[uint32]uint64
}

// placement is where a candidate's WAL lies on the cluster's history.
type placement int

const (
	onCurrent placement = iota // on the current timeline (or no timelines known at all)
	prefix                     // on an ancestor, not past its switch point: behind the current
	diverged                   // on an ancestor past its switch point: WAL that is not history
	unplaced                   // on an older timeline whose switch point is unknown
)

// place says where c's WAL lies and the position it counts for: an ancestor's WAL up to its
// switch point is a prefix of the current timeline; past it, it is not in the history at all
// (a reader stuck on the old timeline after a promotion), however large its LSN.
func (t Timelines) place(c Candidate) (placement, uint64) {
	pos := max(c.Received, c.Replayed)
	if t.Current == 0 || c.Timeline == t.Current {
		return onCurrent, pos
	}
	sp, ok := t.SwitchPoints[c.Timeline]
	switch {
	case c.Timeline == 0 || !ok:
		return unplaced, 0
	case pos > sp:
		return diverged, 0
	}
	return prefix, pos
}

// current returns t with Current raised to the newest timeline of any reachable candidate.
func (t Timelines) current(cands []Candidate) Timelines {
	for _, c := range cands {
		if c.Reachable {
			t.Current = max(t.Current, c.Timeline)
		}
	}
	return t
}

// Choice is the reader to promote and why.
type Choice struct {
	ID string
	// LagBytes is how far the chosen reader's replay is behind the most advanced WAL any
	// reachable reader has received.
	LagBytes uint64
	Reason   string
}

// ChoiceError explains why no reader can be promoted.
type ChoiceError struct{ Msg string }

func (e *ChoiceError) Error() string { return e.Msg }

// Choose picks the reader to promote: the lowest promotion tier, then the largest capacity,
// then the least replay lag, then the identifier (so the choice is stable). target, when not
// empty, names the only acceptable reader (a manual failover).
//
// Positions are compared on the cluster's history (tl): WAL of an older timeline counts up to
// that timeline's switch point, and a reader past it (stuck on the old timeline after an
// earlier promotion) or on an older timeline whose switch point is unknown is never promoted:
// its WAL is not, or cannot be shown to be, part of the history, and its larger LSN is not
// "ahead". Without any timeline known (tl zero, candidates' Timeline 0) positions are compared
// as they are.
//
// In synchronous mode a reader is eligible only if it holds as much of the history as every
// other reader, and only if every reader is reachable: an acknowledged commit is flushed on at
// least one reader, so the most advanced of all of them holds every acknowledged commit, while
// an unreachable reader might be the only one that holds the last ones.
func Choose(cands []Candidate, mode, target string, tl Timelines) (Choice, error) {
	if len(cands) == 0 {
		return Choice{}, &ChoiceError{"the cluster has no reader to promote: add a reader (failover needs one)"}
	}
	tl = tl.current(cands)
	var maxRecv uint64
	var unreachable []string
	for _, c := range cands {
		if c.Reachable {
			if _, pos := tl.place(c); pos > maxRecv {
				maxRecv = pos
			}
		} else {
			unreachable = append(unreachable, c.ID)
		}
	}
	if target != "" {
		found := false
		for _, c := range cands {
			found = found || c.ID == target
		}
		if !found {
			return Choice{}, &ChoiceError{fmt.Sprintf("%s is not a reader of this cluster", target)}
		}
	}
	var eligible []Candidate
	var excluded []string
	for _, c := range cands {
		where, pos := tl.place(c)
		switch {
		case target != "" && c.ID != target:
		case !c.Reachable:
			excluded = append(excluded, c.ID+" (unreachable)")
		case where == diverged:
			excluded = append(excluded, fmt.Sprintf("%s (its WAL on timeline %d goes past that timeline's end at %s, where timeline %d began: it diverged from the cluster's history and must rejoin)",
				c.ID, c.Timeline, FormatLSN(tl.SwitchPoints[c.Timeline]), tl.Current))
		case where == unplaced:
			excluded = append(excluded, fmt.Sprintf("%s (on timeline %d, the cluster is on timeline %d and where timeline %d ended is unknown: it cannot be shown to hold the cluster's history)",
				c.ID, c.Timeline, tl.Current, c.Timeline))
		case mode == Synchronous && len(unreachable) > 0:
			excluded = append(excluded, fmt.Sprintf("%s (synchronous mode and reader(s) %s unreachable: one of them may hold the last acknowledged commits)",
				c.ID, strings.Join(unreachable, ", ")))
		case mode == Synchronous && pos < maxRecv:
			excluded = append(excluded, fmt.Sprintf("%s (synchronous mode and %d bytes of WAL behind another reader: it may miss an acknowledged commit)",
				c.ID, maxRecv-pos))
		default:
			eligible = append(eligible, c)
		}
	}
	if len(eligible) == 0 {
		return Choice{}, &ChoiceError{"no reader can be promoted: " + strings.Join(excluded, "; ")}
	}
	// Replay on an ancestor timeline is history only up to its switch point (place checked
	// that the reader is not past it).
	lag := func(c Candidate) uint64 { return maxRecv - min(c.Replayed, maxRecv) }
	sort.SliceStable(eligible, func(i, j int) bool {
		a, b := eligible[i], eligible[j]
		switch {
		case a.Tier != b.Tier:
			return a.Tier < b.Tier
		case a.Capacity != b.Capacity:
			return a.Capacity > b.Capacity
		case lag(a) != lag(b):
			return lag(a) < lag(b)
		}
		return a.ID < b.ID
	})
	best := eligible[0]
	reason := fmt.Sprintf("promotion tier %d, capacity %g ACU, replay lag %d bytes", best.Tier, best.Capacity, lag(best))
	if tl.Current > 0 {
		reason += fmt.Sprintf(", WAL to %s on timeline %d of the cluster's timeline %d", FormatLSN(max(best.Received, best.Replayed)), best.Timeline, tl.Current)
	}
	if target != "" {
		reason = "requested target; " + reason
	} else if len(eligible) > 1 {
		reason += fmt.Sprintf(" (best of %d eligible readers)", len(eligible))
	}
	if len(excluded) > 0 {
		reason += "; not eligible: " + strings.Join(excluded, "; ")
	}
	return Choice{ID: best.ID, LagBytes: lag(best), Reason: reason}, nil
}
