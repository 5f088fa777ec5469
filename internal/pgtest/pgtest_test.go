package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// The harness itself, on real servers: a standby streams what the primary commits, and a
// server killed with kill -9 recovers every committed row.
func TestStandbyStreamsAndKill9Recovers(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	s.Exec("postgres", "CREATE TABLE t (id int PRIMARY KEY)")
	standby := s.StartStandby("standby-1")
	if got := standby.QueryValue("postgres", "SELECT pg_is_in_recovery()"); got != "true" {
		t.Fatalf("standby pg_is_in_recovery() = %s", got)
	}

	s.Exec("postgres", "INSERT INTO t SELECT generate_series(1, 1000)")
	deadline := time.Now().Add(30 * time.Second)
	for standby.QueryValue("postgres", "SELECT count(*) FROM t") != "1000" {
		if time.Now().After(deadline) {
			t.Fatal("standby did not replay 1000 rows within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A busy backend at the moment of the crash: Kill9 must wait for it to go, or the restart
	// finds its shared memory still attached.
	busy := s.Connect("postgres")
	go busy.Exec(context.Background(), "SELECT pg_sleep(60)")
	time.Sleep(200 * time.Millisecond)

	pid := s.PID()
	if err := s.Kill9(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatalf("postmaster %d still running after Kill9", pid)
	}
	s.Restart()
	if got := s.QueryValue("postgres", "SELECT count(*) FROM t"); got != "1000" {
		t.Fatalf("after kill -9 and restart: %s rows, want 1000", got)
	}
	if s.PID() == pid {
		t.Fatal("Restart reports the killed postmaster's pid: no new server was started")
	}
}
