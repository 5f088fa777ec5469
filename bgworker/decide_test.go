package bgworker

import (
	"reflect"
	"testing"
	"time"
)

func TestDecideEachReason(t *testing.T) {
	const threshold = 5 * time.Second
	cases := []struct {
		name     string
		sessions []Session
		prepared int
		want     []string
	}{
		{"no sessions", nil, 0, []string{}},
		{"idle and short statements", []Session{
			{State: StateIdle},
			{State: StateActive, QueryAge: time.Second, TransactionAge: time.Second},
			{State: StateActive, QueryAge: threshold, TransactionAge: threshold}, // not more than
		}, 0, []string{}},
		{"long statement is a long query, not also an open transaction", []Session{
			{State: StateActive, QueryAge: 6 * time.Second, TransactionAge: 6 * time.Second},
		}, 0, []string{"long_running_query"}},
		{"idle in transaction at any age", []Session{
			{State: StateIdleInTransaction, TransactionAge: time.Millisecond},
		}, 0, []string{"open_transaction"}},
		{"short statement in a long transaction", []Session{
			{State: StateActive, QueryAge: time.Millisecond, TransactionAge: time.Minute},
		}, 0, []string{"open_transaction"}},
		{"temp tables on an idle session", []Session{
			{State: StateIdle, TempTables: true},
		}, 0, []string{"temp_tables"}},
		{"lock table inside a transaction", []Session{
			{State: StateIdleInTransaction, TransactionAge: time.Second, ExplicitLocks: true},
		}, 0, []string{"open_transaction", "explicit_locks"}},
		{"session advisory lock on an idle session", []Session{
			{State: StateIdle, AdvisoryLocks: true},
		}, 0, []string{"advisory_locks"}},
		{"WITH HOLD cursor on an idle session", []Session{
			{State: StateIdle, HeldCursors: true},
		}, 0, []string{"held_cursors"}},
		{"a prepared transaction with no session at all", nil, 1, []string{"prepared_transactions"}},
		{"all at once, listed in canonical order", []Session{
			{State: StateIdle, TempTables: true, HeldCursors: true},
			{State: StateIdleInTransaction, ExplicitLocks: true},
			{State: StateActive, QueryAge: time.Hour, TransactionAge: time.Hour},
			{State: StateIdle, AdvisoryLocks: true},
		}, 2, []string{"long_running_query", "open_transaction", "temp_tables", "explicit_locks",
			"advisory_locks", "held_cursors", "prepared_transactions"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Decide(c.sessions, c.prepared, threshold)
			if got := s.Blockers.Names(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("blockers = %v, want %v", got, c.want)
			}
			if s.ScalingPoint() != (len(c.want) == 0) {
				t.Fatalf("ScalingPoint() = %v with blockers %v", s.ScalingPoint(), c.want)
			}
		})
	}
}

func TestDecideCountsAndOldest(t *testing.T) {
	s := Decide([]Session{
		{State: StateActive, QueryAge: 2 * time.Second, TransactionAge: 9 * time.Second},
		{State: StateActive, QueryAge: 3 * time.Second, TransactionAge: 3 * time.Second},
		{State: StateIdle, TempTables: true},
		{State: StateIdle},
		{State: StateIdleInTransaction, TransactionAge: 12 * time.Second, ExplicitLocks: true, TempTables: true},
		{State: StateOther},
		{State: StateIdle, AdvisoryLocks: true, HeldCursors: true},
	}, 3, 5*time.Second)
	want := Summary{
		Active: 2, Idle: 3, IdleInTransaction: 1,
		OldestQuery: 3 * time.Second, OldestTransaction: 12 * time.Second,
		TempTableSessions: 2, ExplicitLockSessions: 1,
		AdvisoryLockSessions: 1, HeldCursorSessions: 1, PreparedTransactions: 3,
		Blockers: BlockerOpenTransaction | BlockerTempTables | BlockerExplicitLocks |
			BlockerAdvisoryLocks | BlockerHeldCursors | BlockerPreparedTransactions,
	}
	if s != want {
		t.Fatalf("Decide = %+v, want %+v", s, want)
	}
}

// The C module maps the same bits to the same names (pgext/src/agent_abi.h); a change here
// must change the ABI version.
func TestBlockerBitsAreStable(t *testing.T) {
	bits := []Blockers{BlockerLongRunningQuery, BlockerOpenTransaction, BlockerTempTables, BlockerExplicitLocks,
		BlockerAdvisoryLocks, BlockerHeldCursors, BlockerPreparedTransactions}
	for i, b := range bits {
		if b != 1<<i {
			t.Fatalf("blocker %v has bit %#x, want %#x", b.Names(), uint32(b), 1<<i)
		}
	}
}
