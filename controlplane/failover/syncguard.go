package failover

import (
	"fmt"
	"time"
)

// Synchronous mode with no reader to flush commits: the policy.
//
// Strict (Fallback 0, the default, like Patroni's synchronous_mode_strict): commits wait until
// a reader flushes them again. Nothing acknowledged is ever missing from every reader, so the
// failover rules stay those of Choose; the cluster reports that commits are waiting.
//
// Fallback after N seconds (like Patroni's synchronous_mode without strict): once commits have
// waited N seconds, or no reader has streamed for N seconds, the writer drops its synchronous
// standbys (synchronous_standby_names = ''): waiting commits return and later ones do not wait.
// Commits acknowledged from then on may exist on the writer only, so no reader is promoted
// automatically until a reader has streamed again and flushed everything the writer had
// written when the standbys were set back (Patroni likewise never promotes a reader that was
// not synchronous). A writer that fails meanwhile is restarted in place; switching the cluster
// to asynchronous mode accepts the loss and lets a reader be promoted.

// Sync states, as describe shows them (DurabilityStatus).
const (
	SyncOK = "synchronous"
	// SyncNoReader: strict mode and no reader flushes commits; they wait.
	SyncNoReader = "waiting-for-reader"
	// SyncDegraded: fell back to asynchronous commits.
	SyncDegraded = "degraded-asynchronous"
	// SyncCatchingUp: synchronous again, a reader still replaying what was committed while
	// degraded.
	SyncCatchingUp = "catching-up"
)

// MaxSyncFallback bounds the fallback setting.
const MaxSyncFallback = 3600 * time.Second

// ValidateSyncFallback checks the fallback setting (0: strict).
func ValidateSyncFallback(seconds int) error {
	if seconds < 0 || time.Duration(seconds)*time.Second > MaxSyncFallback {
		return fmt.Errorf("%d is out of range: use 0 (strict: commits wait for a reader) to %d", seconds, int(MaxSyncFallback/time.Second))
	}
	return nil
}

// SyncObservation is what the writer showed at one instant.
type SyncObservation struct {
	At time.Time
	// Streaming counts the readers of synchronous_standby_names streaming from the writer.
	Streaming int
	// OldestWait is how long the oldest commit has waited for a reader (0: none waits).
	OldestWait time.Duration
	// WriterLSN is the writer's current WAL position; ReaderFlush the most any streaming
	// reader has flushed.
	WriterLSN, ReaderFlush uint64
}

// SyncDecision is what the guard asks for.
type SyncDecision struct {
	State string
	// Standbys: true means the writer must list the readers in synchronous_standby_names,
	// false that it must list none (degraded).
	Standbys bool
	// Event is set when the state changed: the words to record (empty otherwise).
	Event string
}

// SyncGuard follows one writer in synchronous mode. Limit is how long commits may wait, or no
// reader stream, before the guard acts: the fallback when set, else the point where a strict
// cluster reports it. The zero value is a strict guard in state OK; set Limit.
type SyncGuard struct {
	Fallback time.Duration // 0: strict
	Limit    time.Duration

	state      string
	noReader   time.Time // since when no reader streams (zero: one does)
	restoreLSN uint64    // the writer's position when the standbys were set back
	since      time.Time // when the current state began
}

// State is the current state ("synchronous" before any observation).
func (g *SyncGuard) State() string {
	if g.state == "" {
		return SyncOK
	}
	return g.state
}

// Since is when the current state began (zero for the initial state).
func (g *SyncGuard) Since() time.Time { return g.since }

// Resume starts the guard in the degraded state: a control plane restarted while its cluster
// was degraded must not trust the readers before they caught up.
func (g *SyncGuard) Resume(degradedAt time.Time) { g.state, g.since = SyncDegraded, degradedAt }

// Observe takes one observation and says which standbys the writer must have.
func (g *SyncGuard) Observe(o SyncObservation) SyncDecision {
	if o.Streaming > 0 {
		g.noReader = time.Time{}
	} else if g.noReader.IsZero() {
		g.noReader = o.At
	}
	starved := o.OldestWait >= g.Limit || (!g.noReader.IsZero() && o.At.Sub(g.noReader) >= g.Limit)
	why := func() string {
		if o.OldestWait >= g.Limit {
			return fmt.Sprintf("a commit has waited %s for a reader to flush it", o.OldestWait.Round(100*time.Millisecond))
		}
		return fmt.Sprintf("no reader has streamed from the writer for %s", o.At.Sub(g.noReader).Round(100*time.Millisecond))
	}
	switch g.State() {
	case SyncOK:
		if !starved {
			return SyncDecision{State: SyncOK, Standbys: true}
		}
		if g.Fallback == 0 {
			return g.to(o, SyncNoReader, true, why()+"; synchronous mode is strict: commits wait until a reader is back (a failover needs a reader that holds every acknowledged commit)")
		}
		return g.to(o, SyncDegraded, false, why()+fmt.Sprintf("; falling back to asynchronous commits after %s: commits acknowledged from now on may be on the writer only, so no reader is promoted automatically until one has caught up", g.Fallback))
	case SyncNoReader:
		if o.Streaming > 0 && o.OldestWait < min(time.Second, g.Limit/2) {
			return g.to(o, SyncOK, true, "a reader streams again and commits no longer wait: synchronous")
		}
		if g.Fallback > 0 { // the setting changed meanwhile
			return g.to(o, SyncDegraded, false, why()+fmt.Sprintf("; falling back to asynchronous commits (fallback %s)", g.Fallback))
		}
		return SyncDecision{State: SyncNoReader, Standbys: true}
	case SyncDegraded:
		if o.Streaming > 0 {
			g.restoreLSN = o.WriterLSN
			return g.to(o, SyncCatchingUp, true, fmt.Sprintf("a reader streams again: commits wait for a reader again; promotion stays off until a reader has flushed up to %s", FormatLSN(o.WriterLSN)))
		}
		return SyncDecision{State: SyncDegraded, Standbys: false}
	case SyncCatchingUp:
		if o.Streaming > 0 && o.ReaderFlush >= g.restoreLSN {
			return g.to(o, SyncOK, true, fmt.Sprintf("a reader flushed everything committed while asynchronous (up to %s): synchronous, promotion allowed again", FormatLSN(g.restoreLSN)))
		}
		if starved && g.Fallback > 0 {
			return g.to(o, SyncDegraded, false, why()+"; falling back to asynchronous commits again")
		}
		return SyncDecision{State: SyncCatchingUp, Standbys: true}
	}
	return SyncDecision{State: g.State(), Standbys: true}
}

func (g *SyncGuard) to(o SyncObservation, state string, standbys bool, event string) SyncDecision {
	g.state, g.since = state, o.At
	return SyncDecision{State: state, Standbys: standbys, Event: event}
}

// PromotionAllowed says whether a reader may be promoted automatically in this state, and why
// not.
func (g *SyncGuard) PromotionAllowed() (bool, string) {
	switch g.State() {
	case SyncDegraded:
		return false, fmt.Sprintf("synchronous mode fell back to asynchronous commits at %s: commits acknowledged since may be on the writer only, and no reader has caught up (switch the cluster to asynchronous mode to accept that loss and promote)", g.since.UTC().Format(time.RFC3339))
	case SyncCatchingUp:
		return false, fmt.Sprintf("synchronous mode fell back to asynchronous commits and no reader has yet flushed up to %s, where it became synchronous again (switch the cluster to asynchronous mode to accept that loss and promote)", FormatLSN(g.restoreLSN))
	}
	return true, ""
}
