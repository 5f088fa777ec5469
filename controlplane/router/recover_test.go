package router

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
	began := time.Now()
	step := func(what string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), what) }

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

	step("1")
	// 1. kill -9 of the session's own backend: the postmaster restarts every backend (crash
	// recovery); the session waits through it and continues.
	before := pid()
	waitReplayable()
	cp := checkpointer(t, ctx, srv)
	if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	step("1 killed")
	afterCrashRestart(t, ctx, srv, r, cp, 0)
	step("1 recovered")
	check("after kill -9 of its backend")
	if after := pid(); after == before {
		t.Fatalf("still on backend %d", before)
	}
	var one int
	if err := inTx.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
		t.Fatal("the session inside a transaction went on after the crash, as if nothing had happened")
	}
	waitUntil(t, "the session in a transaction to be closed, not replayed", time.Minute, func() bool { return len(r.Sessions()) == 1 })
	recovered := r.RecoveredSessions()

	step("2")
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
	step("2 killed")
	waitRecovered(recovered + 1)
	step("2 recovered")
	check("after kill -9 of the postmaster and a restart")
	if after := pid(); after == before {
		t.Fatalf("still on backend %d", before)
	}
	// The postmaster was gone until the restart: no replay could come early, so exactly one.
	if r.RecoveredSessions() != recovered+1 {
		t.Fatalf("RecoveredSessions %d, want %d", r.RecoveredSessions(), recovered+1)
	}
	recovered++

	step("3")
	// 3. A pinned session (a temp table lives only in its backend) is never replayed: its
	// client sees the error, promptly. Killing its backend makes the node restart every
	// backend (crash recovery), the idle session's too, which is replayed once more.
	waitReplayable() // the idle session, before anything below can be taken for it
	cp = checkpointer(t, ctx, srv)
	c2 := connect(t, dsn(addr, "postgres", "", ""))
	var p2 int
	if _, err := c2.Exec(ctx, "CREATE TEMP TABLE scratch (i int)"); err != nil {
		t.Fatal(err)
	}
	ended := r.snapEnded.Load()
	if err := c2.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p2); err != nil {
		t.Fatal(err)
	}
	// The sweeper looks at it and finds it pinned (the other session is replayable, so
	// the snapshot that ends is this one's).
	waitUntil(t, "the sweeper's snapshot of the pinned session", time.Minute, func() bool { return r.snapEnded.Load() > ended })
	if err := syscall.Kill(p2, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	step("3 killed")
	qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
	defer qcancel()
	err := c2.QueryRow(qctx, "SELECT 1").Scan(&one)
	if err == nil {
		t.Fatal("a pinned session went on after its backend was killed")
	}
	if qctx.Err() != nil {
		t.Fatalf("a pinned session's query after its backend was killed hung for 30 s: %v", err)
	}
	step(fmt.Sprintf("3 the pinned session's error: %v", err))
	afterCrashRestart(t, ctx, srv, r, cp, recovered)
	check("after the crash restart the pinned session's kill caused")
	step("3 the idle session recovered")

	step("4")
	// 4. Closing the router ends a replayable session: the backend the router closes then is
	// not a crash to recover from.
	waitReplayable()
	recovered = r.RecoveredSessions()
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("Router.Close did not return with a replayable session open (recovered %d)", r.RecoveredSessions())
	}
	step("4 closed")
	if r.RecoveredSessions() != recovered {
		t.Fatalf("RecoveredSessions %d after Close, want still %d", r.RecoveredSessions(), recovered)
	}
}

// checkpointer is the pid of srv's checkpointer: a crash restart replaces it.
func checkpointer(t *testing.T, ctx context.Context, srv *pgtest.Server) int {
	t.Helper()
	n, err := directInt(ctx, srv, "SELECT pid FROM pg_catalog.pg_stat_activity WHERE backend_type = 'checkpointer'")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// afterCrashRestart waits, after a kill -9 of one backend of srv, for the crash restart it
// causes (every backend restarted: a new checkpointer than cp) to be over and for the idle
// session with application_name survivor to be replayed after it. The router may replay that
// session before the postmaster has seen the crash, onto a backend the restart then ends in
// turn, and replays it again after (still idle, its snapshot still valid): so the count grows
// by one or by two.
func afterCrashRestart(t *testing.T, ctx context.Context, srv *pgtest.Server, r *Router, cp int, prev int64) {
	t.Helper()
	waitUntil(t, "the crash restart to end and the idle session to be replayed after it", 2*time.Minute, func() bool {
		now, err := directInt(ctx, srv, "SELECT pid FROM pg_catalog.pg_stat_activity WHERE backend_type = 'checkpointer'")
		if err != nil || now == cp {
			return false
		}
		n, err := directInt(ctx, srv, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'survivor' AND state = 'idle'")
		return err == nil && n == 1 && r.RecoveredSessions() > prev
	})
}

// directInt runs a one-integer query on a new direct connection to srv (not through a router).
func directInt(ctx context.Context, srv *pgtest.Server, sql string) (int, error) {
	c, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	var n int
	err = c.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// TestBackendKilledDuringSnapshot kills, with real kill -9, a session's backend while the
// sweeper's snapshot query runs in it, as happened in a fresh-clone CI run of TestCrashReplay.
// To catch the query in flight every time, another connection holds a lock the query needs
// (ACCESS EXCLUSIVE on pg_cursors), and the backend is killed only once the router counted the
// query sent and not answered and pg_stat_activity shows that backend running it, waiting for
// the lock. The session (pinned: a temporary table) cannot be replayed, so its client must get
// an error promptly, not hang; a replayable session beside it is recovered after the node's
// crash restart; and the router's Close returns promptly afterwards. In every I/O mode.
func TestBackendKilledDuringSnapshot(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))
	for _, model := range ioModels {
		t.Run(model, func(t *testing.T) {
			// A snapshot starts only after a whole interval of idleness: the lock below, taken
			// right after the client's last answer, is held before it.
			r, addr, _ := startRouter(t, inIOModel(Config{Name: "snapkill", Backends: &staticBackends{writer: sock},
				IdleSnapshotAfter: time.Second, HoldTimeout: 60 * time.Second}, model))
			if model == "IOURing" && r.EventLoopIO() != "io_uring" && !iouDisabledByEnv() {
				t.Fatalf("event loop I/O %q, want io_uring", r.EventLoopIO())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			survivor := connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name=survivor"))
			var one int
			if err := survivor.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the idle session to be replayable", time.Minute, func() bool {
				for _, s := range r.Sessions() {
					if s.Replayable {
						return true
					}
				}
				return false
			})

			// Direct connections, not through the router: one holds the lock, one watches (a
			// transaction sees pg_stat_activity as it was at its first look).
			lk, mon := srv.Connect("postgres"), srv.Connect("postgres")
			defer lk.Close(context.Background())
			defer mon.Close(context.Background())
			c := connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name=victim"))
			if _, err := c.Exec(ctx, "CREATE TEMP TABLE scratch (i int)"); err != nil {
				t.Fatal(err)
			}
			sent, ended := r.snapSent.Load(), r.snapEnded.Load()
			var pid int
			if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			if _, err := lk.Exec(ctx, "BEGIN; LOCK TABLE pg_catalog.pg_cursors IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			cp := checkpointer(t, ctx, srv)
			waitUntil(t, "the sweeper's snapshot query in the victim's backend, waiting for the lock", time.Minute, func() bool {
				if r.snapEnded.Load() != ended {
					t.Fatal("the snapshot ended before the lock was taken: this run proves nothing")
				}
				var w string
				_ = mon.QueryRow(ctx, "SELECT coalesce(wait_event_type, '') FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE 'SELECT ''pin''%'", pid).Scan(&w)
				return r.snapSent.Load() > sent && w == "Lock"
			})
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}

			// The pinned session cannot continue: its client gets an error, promptly.
			qctx, qcancel := context.WithTimeout(ctx, 20*time.Second)
			defer qcancel()
			start := time.Now()
			err := c.QueryRow(qctx, "SELECT 1").Scan(&one)
			if err == nil {
				t.Fatal("a pinned session went on after its backend was killed during a snapshot")
			}
			if qctx.Err() != nil {
				t.Fatalf("the client's query after its backend was killed during a snapshot hung for %s: %v", time.Since(start).Round(time.Millisecond), err)
			}
			t.Logf("the client's error after %s: %v", time.Since(start).Round(time.Millisecond), err)

			// The crash restart ended the survivor's backend too: it is recovered. The pinned
			// session is not: no backend of its application_name after the restart.
			afterCrashRestart(t, ctx, srv, r, cp, 0)
			var app string
			if err := survivor.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app); err != nil || app != "survivor" {
				t.Fatalf("the survivor after the crash restart: %q, %v", app, err)
			}
			if n, err := directInt(ctx, srv, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'victim'"); err != nil || n != 0 {
				t.Fatalf("backends of the pinned session after the crash restart: %d, %v; want none (it must not be replayed)", n, err)
			}
			recovered := r.RecoveredSessions()
			closed := make(chan struct{})
			go func() { r.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(20 * time.Second):
				t.Fatalf("Router.Close did not return within 20 s after a backend was killed during a snapshot")
			}
			if n := r.RecoveredSessions(); n != recovered {
				t.Fatalf("RecoveredSessions %d after Close, want still %d", n, recovered)
			}
		})
	}
}

// TestCloseDuringReplay closes the router while a session's crash replay is opening its new
// backend on a node that accepts connections and does not answer (its postmaster stopped with
// SIGSTOP after the session's backend was killed with kill -9): Close must end that replay at
// once, not after the dial and start-up timeouts (here 20 + 10 s). In every I/O mode.
func TestCloseDuringReplay(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))
	for _, model := range ioModels {
		t.Run(model, func(t *testing.T) {
			r, addr, _ := startRouter(t, inIOModel(Config{Name: "closereplay", Backends: &staticBackends{writer: sock},
				IdleSnapshotAfter: 100 * time.Millisecond, HoldTimeout: 2 * time.Minute, DialTimeout: 20 * time.Second}, model))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// The node may still be in the crash recovery of the last subtest.
			var c *pgx.Conn
			waitUntil(t, "a connection through the router", 2*time.Minute, func() bool {
				var err error
				c, err = pgx.Connect(ctx, dsn(addr, "postgres", "", "sslmode=disable"))
				return err == nil
			})
			defer c.Close(context.Background())
			var pid int
			if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the idle session to be replayable", time.Minute, func() bool {
				ss := r.Sessions()
				return len(ss) == 1 && ss[0].Replayable
			})
			pm := srv.PID()
			if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			defer syscall.Kill(pm, syscall.SIGCONT) // then the node restarts after the crash
			dialed := r.replayDialed.Load()
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the replay to dial the stopped node", time.Minute, func() bool { return r.replayDialed.Load() > dialed })
			start := time.Now()
			closed := make(chan struct{})
			go func() { r.Close(); close(closed) }()
			select {
			case <-closed:
				t.Logf("Router.Close returned after %s", time.Since(start).Round(time.Millisecond))
			case <-time.After(10 * time.Second):
				t.Fatal("Router.Close did not return within 10 s while a crash replay waited for a node that does not answer")
			}
			if n := r.RecoveredSessions(); n != 0 {
				t.Fatalf("RecoveredSessions %d, want 0", n)
			}
		})
	}
}
