package router

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestCrashReplay kills, with real kill -9, first an idle session's own backend and then the
// whole postmaster: the session, idle with a snapshot, continues on a new backend with its
// prepared statements and settings and no error. A session that sent something after its
// snapshot (here: one inside a transaction) gets an error, never a silent replay.
func TestCrashReplay(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))
	r, addr, _ := startRouter(t, Config{Name: "crash", Backends: &staticBackends{writer: sock},
		IdleSnapshotAfter: 100 * time.Millisecond, HoldTimeout: 90 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	c := connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name=survivor"))
	if _, err := c.Prepare(ctx, "twice", "SELECT $1::int * 2"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET search_path = elsewhere, public", "SET work_mem = '7MB'", "PREPARE sqlprep AS SELECT 'sql'"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	inTx := connect(t, dsn(addr, "postgres", "", ""))
	if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	pid := func() int {
		var p int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p); err != nil {
			t.Fatalf("the session after the crash: %v", err)
		}
		return p
	}
	check := func(what string) {
		var twice int
		var path, mem, app, sql string
		if err := c.QueryRow(ctx, "twice", 21).Scan(&twice); err != nil || twice != 42 {
			t.Fatalf("%s: protocol-level prepared statement: %d, %v", what, twice, err)
		}
		if err := c.QueryRow(ctx, "EXECUTE sqlprep").Scan(&sql); err != nil || sql != "sql" {
			t.Fatalf("%s: SQL PREPARE: %q, %v", what, sql, err)
		}
		if err := c.QueryRow(ctx, "SELECT current_setting('search_path'), current_setting('work_mem'), current_setting('application_name')").Scan(&path, &mem, &app); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if path != "elsewhere, public" || mem != "7MB" || app != "survivor" {
			t.Fatalf("%s: search_path %q, work_mem %q, application_name %q", what, path, mem, app)
		}
	}
	// The client stays idle until the router has noticed the crash: a query racing the death
	// of its backend is not replayed (its fate on the old backend is unknown) and errors.
	waitRecovered := func(n int64) {
		deadline := time.Now().Add(90 * time.Second)
		for r.RecoveredSessions() < n {
			if time.Now().After(deadline) {
				t.Fatalf("RecoveredSessions %d, want %d", r.RecoveredSessions(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReplayable := func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := 0
			for _, s := range r.Sessions() {
				if s.Replayable {
					n++
				}
			}
			if n == 1 {
				return // the idle session; never the one in a transaction
			}
			if time.Now().After(deadline) {
				t.Fatalf("sessions replayable: %d, want 1: %+v", n, r.Sessions())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// 1. kill -9 of the session's own backend: the postmaster restarts every backend (crash
	// recovery); the session waits through it and continues.
	before := pid()
	waitReplayable()
	if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitRecovered(1)
	check("after kill -9 of its backend")
	if after := pid(); after == before {
		t.Fatalf("still on backend %d", before)
	}
	var one int
	if err := inTx.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
		t.Fatal("the session inside a transaction went on after the crash, as if nothing had happened")
	}

	// 2. kill -9 of the postmaster, and a restart a moment later (as the control plane does):
	// the session is held meanwhile and continues.
	before = pid()
	waitReplayable()
	if err := srv.Kill9(); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(time.Second)
		srv.Restart()
	}()
	waitRecovered(2)
	check("after kill -9 of the postmaster and a restart")
	if after := pid(); after == before {
		t.Fatalf("still on backend %d", before)
	}
	if r.RecoveredSessions() != 2 {
		t.Fatalf("RecoveredSessions %d, want 2 (the session in a transaction must not be counted)", r.RecoveredSessions())
	}

	// 3. A pinned session (a temp table lives only in its backend) is never replayed: its
	// client sees the error.
	c2 := connect(t, dsn(addr, "postgres", "", ""))
	var p2 int
	if _, err := c2.Exec(ctx, "CREATE TEMP TABLE scratch (i int)"); err != nil {
		t.Fatal(err)
	}
	if err := c2.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the sweeper looks at it, and finds it pinned
	if err := syscall.Kill(p2, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c2.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
		t.Fatal("a pinned session went on after its backend was killed")
	}

	// 4. Closing the router ends a replayable session: the backend the router closes then is
	// not a crash to recover from.
	waitReplayable()
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("Router.Close did not return with a replayable session open (recovered %d)", r.RecoveredSessions())
	}
	if r.RecoveredSessions() != 2 {
		t.Fatalf("RecoveredSessions %d after Close, want still 2", r.RecoveredSessions())
	}
}
