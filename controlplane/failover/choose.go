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
// In synchronous mode a reader is eligible only if it has received as much WAL as every other
// reader, and only if every reader is reachable: an acknowledged commit is flushed on at least
// one reader, so the most advanced of all of them holds every acknowledged commit, while an
// unreachable reader might be the only one that holds the last ones.
func Choose(cands []Candidate, mode, target string) (Choice, error) {
	if len(cands) == 0 {
		return Choice{}, &ChoiceError{"the cluster has no reader to promote: add a reader (failover needs one)"}
	}
	var maxRecv uint64
	var unreachable []string
	for _, c := range cands {
		if c.Reachable {
			maxRecv = max(maxRecv, c.Received, c.Replayed)
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
		switch {
		case target != "" && c.ID != target:
		case !c.Reachable:
			excluded = append(excluded, c.ID+" (unreachable)")
		case mode == Synchronous && len(unreachable) > 0:
			excluded = append(excluded, fmt.Sprintf("%s (synchronous mode and reader(s) %s unreachable: one of them may hold the last acknowledged commits)",
				c.ID, strings.Join(unreachable, ", ")))
		case mode == Synchronous && max(c.Received, c.Replayed) < maxRecv:
			excluded = append(excluded, fmt.Sprintf("%s (synchronous mode and %d bytes of WAL behind another reader: it may miss an acknowledged commit)",
				c.ID, maxRecv-max(c.Received, c.Replayed)))
		default:
			eligible = append(eligible, c)
		}
	}
	if len(eligible) == 0 {
		return Choice{}, &ChoiceError{"no reader can be promoted: " + strings.Join(excluded, "; ")}
	}
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
