package bgworker

import "time"

// SessionState is what a client session is doing, as pg_stat_activity's state column.
type SessionState int

const (
	// StateOther is a session whose state is unknown (track_activities off, or starting up).
	StateOther SessionState = iota
	// StateActive is a session running a statement (or a fast-path function call).
	StateActive
	// StateIdle is a session waiting for a command outside any transaction.
	StateIdle
	// StateIdleInTransaction is a session waiting for a command inside a transaction block,
	// including a failed (aborted) one.
	StateIdleInTransaction
)

// Session is what the agent knows about one client session at sampling time.
type Session struct {
	State SessionState
	// QueryAge is how long the running statement has run; 0 unless State is StateActive.
	QueryAge time.Duration
	// TransactionAge is how long the session's transaction has been open; 0 if it has none.
	TransactionAge time.Duration
	// TempTables is true when the session has temporary relations (their files exist).
	TempTables bool
	// ExplicitLocks is true when the session ran LOCK TABLE in its current transaction.
	ExplicitLocks bool
	// AdvisoryLocks is true when the session, idle outside a transaction, holds an advisory
	// lock (which can then only be session-level: pg_advisory_lock).
	AdvisoryLocks bool
	// HeldCursors is true when the session keeps a WITH HOLD cursor past its transaction.
	HeldCursors bool
}

// Blockers is a set of reasons why now is not a scaling point.
type Blockers uint32

// The reasons, in the order node_status() lists them. The bit values are part of the ABI with
// the C module (pgext/src/agent_abi.h).
const (
	BlockerLongRunningQuery Blockers = 1 << iota
	BlockerOpenTransaction
	BlockerTempTables
	BlockerExplicitLocks
	BlockerAdvisoryLocks
	BlockerHeldCursors
	BlockerPreparedTransactions
)

var blockerNames = []struct {
	bit  Blockers
	name string
}{
	{BlockerLongRunningQuery, "long_running_query"},
	{BlockerOpenTransaction, "open_transaction"},
	{BlockerTempTables, "temp_tables"},
	{BlockerExplicitLocks, "explicit_locks"},
	{BlockerAdvisoryLocks, "advisory_locks"},
	{BlockerHeldCursors, "held_cursors"},
	{BlockerPreparedTransactions, "prepared_transactions"},
}

// Names lists the reasons in b by their node_status() names, in canonical order.
func (b Blockers) Names() []string {
	names := []string{}
	for _, bn := range blockerNames {
		if b&bn.bit != 0 {
			names = append(names, bn.name)
		}
	}
	return names
}

// Summary is the session part of a node status: counts, oldest ages and the decision.
type Summary struct {
	Active, Idle, IdleInTransaction int
	OldestQuery                     time.Duration
	OldestTransaction               time.Duration
	TempTableSessions               int
	ExplicitLockSessions            int
	AdvisoryLockSessions            int
	HeldCursorSessions              int
	PreparedTransactions            int
	Blockers                        Blockers
}

// ScalingPoint reports whether capacity can change now: no session blocks it.
func (s Summary) ScalingPoint() bool { return s.Blockers == 0 }

// Decide summarises the sessions and finds what blocks a scaling point. threshold is
// borealis.scaling_query_threshold. The reasons are defined so each session state has one:
//
//   - long_running_query: a statement has been running for longer than threshold. Its
//     implicit transaction is as old, but it is reported here only, not as open_transaction.
//   - open_transaction: a session is idle inside a transaction block (at any age: only its
//     client can end that transaction), or is running a short statement inside a
//     transaction that has been open for longer than threshold.
//   - temp_tables: a session has temporary relations, which live only in that session.
//   - explicit_locks: a session ran LOCK TABLE in its still-open transaction.
//   - advisory_locks: an idle session holds a session-level advisory lock, which would be
//     lost with its backend.
//   - held_cursors: a session keeps a WITH HOLD cursor, whose rows live in that backend.
//   - prepared_transactions: the node has prepared (two-phase) transactions, which hold their
//     locks until COMMIT PREPARED or ROLLBACK PREPARED, across restarts; prepared counts them.
//
// A short statement in a short transaction blocks nothing: it will be over before capacity
// changes.
func Decide(sessions []Session, prepared int, threshold time.Duration) Summary {
	s := Summary{PreparedTransactions: prepared}
	if prepared > 0 {
		s.Blockers |= BlockerPreparedTransactions
	}
	for _, se := range sessions {
		switch se.State {
		case StateActive:
			s.Active++
			s.OldestQuery = max(s.OldestQuery, se.QueryAge)
			if se.QueryAge > threshold {
				s.Blockers |= BlockerLongRunningQuery
			} else if se.TransactionAge > threshold {
				s.Blockers |= BlockerOpenTransaction
			}
		case StateIdle:
			s.Idle++
		case StateIdleInTransaction:
			s.IdleInTransaction++
			s.Blockers |= BlockerOpenTransaction
		}
		s.OldestTransaction = max(s.OldestTransaction, se.TransactionAge)
		if se.TempTables {
			s.TempTableSessions++
			s.Blockers |= BlockerTempTables
		}
		if se.ExplicitLocks {
			s.ExplicitLockSessions++
			s.Blockers |= BlockerExplicitLocks
		}
		if se.AdvisoryLocks {
			s.AdvisoryLockSessions++
			s.Blockers |= BlockerAdvisoryLocks
		}
		if se.HeldCursors {
			s.HeldCursorSessions++
			s.Blockers |= BlockerHeldCursors
		}
	}
	return s
}
