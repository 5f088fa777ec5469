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
		want     []string
	}{
		{"no sessions", nil, []string{}},
		{"idle and short statements", []Session{
			{State: StateIdle},
			{State: StateActive, QueryAge: time.Second, TransactionAge: time.Second},
			{State: StateActive, QueryAge: threshold, TransactionAge: threshold}, // not more than
		}, []string{}},
		{"long statement is a long query, not also an open transaction", []Session{
			{State: StateActive, QueryAge: 6 * time.Second, TransactionAge: 6 * time.Second},
		}, []string{"long_running_query"}},
		{"idle in transaction at any age", []Session{
			{State: StateIdleInTransaction, TransactionAge: time.Millisecond},
		}, []string{"open_transaction"}},
		{"short statement in a long transaction", []Session{
			{State: StateActive, QueryAge: time.Millisecond, TransactionAge: time.Minute},
		}, []string{"open_transaction"}},
		{"temp tables on an idle session", []Session{
			{State: StateIdle, TempTables: true},
		}, []string{"temp_tables"}},
		{"lock table inside a transaction", []Session{
			{State: StateIdleInTransaction, TransactionAge: time.Second, ExplicitLocks: true},
		}, []string{"open_transaction", "explicit_locks"}},
		{"all at once, listed in canonical order", []Session{
			{State: StateIdle, TempTables: true},
			{State: StateIdleInTransaction, ExplicitLocks: true},
			{State: StateActive, QueryAge: time.Hour, TransactionAge: time.Hour},
		}, []string{"long_running_query", "open_transaction", "temp_tables", "explicit_locks"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Decide(c.sessions, threshold)
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
	}, 5*time.Second)
	want := Summary{
		Active: 2, Idle: 2, IdleInTransaction: 1,
		OldestQuery: 3 * time.Second, OldestTransaction: 12 * time.Second,
		TempTableSessions: 2, ExplicitLockSessions: 1,
		Blockers: BlockerOpenTransaction | BlockerTempTables | BlockerExplicitLocks,
	}
	if s != want {
		t.Fatalf("Decide = %+v, want %+v", s, want)
	}
}

// The C module maps the same bits to the same names (pgext/src/agent_abi.h); a change here
// must change the ABI version.
func TestBlockerBitsAreStable(t *testing.T) {
	bits := []Blockers{BlockerLongRunningQuery, BlockerOpenTransaction, BlockerTempTables, BlockerExplicitLocks}
	for i, b := range bits {
		if b != 1<<i {
			t.Fatalf("blocker %v has bit %#x, want %#x", b.Names(), uint32(b), 1<<i)
		}
	}
}
