package router

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestKernelPath runs real clients through a router with kernel forwarding on (Config.Sockmap)
// and a TCP backend: the kernel must have forwarded their requests (KernelStats), every answer
// must be whole and right (large results span many skbs), settings made in the kernel survive
// a move, and a session idle in the kernel is replayed after its backend is terminated.
func TestKernelPath(t *testing.T) {
	pgtest.RequireInstalled(t)
	if os.Geteuid() != 0 {
		r := New(Config{Name: "k", Sockmap: true, Backends: &staticBackends{}})
		defer r.Close()
		if r.KernelStats().Enabled {
			t.Fatal("kernel forwarding enabled without root")
		}
		t.Skip("kernel forwarding needs root (CI runs as root); without it the router keeps its loop (checked)")
	}
	srv := pgtest.Start(t, pgtest.Options{})
	node := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	r, addr, _ := startRouter(t, Config{Name: "kernel", Backends: &staticBackends{writer: node}, Sockmap: true,
		IdleSnapshotAfter: 200 * time.Millisecond})
	if !r.KernelStats().Enabled {
		t.Fatal("kernel forwarding did not start as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	simple := dsn(addr, "postgres", "", "sslmode=disable&default_query_exec_mode=simple_protocol")

	t.Run("WholeAnswers", func(t *testing.T) {
		// Counts before the session exists: it enters the kernel at its login's
		// ReadyForQuery, and its forwarded queries are counted when it leaves.
		before := r.KernelStats()
		c := connect(t, simple)
		for i := 1; i <= 120; i++ {
			// Up to ~100 kB per answer: DataRows split over many skbs.
			n := 1 + (i*37)%400
			var rows, total int64
			var last string
			err := c.QueryRow(ctx, fmt.Sprintf(
				"SELECT count(*), sum(length(s)), max(s) FROM (SELECT repeat(md5(g::text), 8) || %d AS s FROM generate_series(1, %d) g) x", i, n)).Scan(&rows, &total, &last)
			if err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
			if rows != int64(n) || total != int64(n*(256+len(fmt.Sprint(i)))) {
				t.Fatalf("query %d: %d rows, %d bytes", i, rows, total)
			}
			var big string
			if err := c.QueryRow(ctx, fmt.Sprintf("SELECT repeat('x', %d) || 'end'", 1000*n)).Scan(&big); err != nil || len(big) != 1000*n+3 || !strings.HasSuffix(big, "xend") {
				t.Fatalf("query %d: a %d-byte value came back as %d bytes (%v)", i, 1000*n+3, len(big), err)
			}
		}
		// On a quiet machine the whole run can be one stay in the kernel, counted only when
		// the session leaves it: the client's Terminate hands it back (the router's half of
		// that close is asynchronous, so wait for the count).
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		after := r.KernelStats()
		for deadline := time.Now().Add(30 * time.Second); after.Forwarded-before.Forwarded < 20 && time.Now().Before(deadline); after = r.KernelStats() {
			time.Sleep(20 * time.Millisecond)
		}
		if after.Entered <= before.Entered || after.Forwarded-before.Forwarded < 20 {
			t.Fatalf("the kernel forwarded %d of 240 queries (%d entries): want it used", after.Forwarded-before.Forwarded, after.Entered-before.Entered)
		}
		t.Logf("kernel: %+v", after)
	})

	t.Run("PsqlAndPgbench", func(t *testing.T) {
		host, port := splitAddr(t, addr)
		before := r.KernelStats()
		out, err := exec.CommandContext(ctx, "psql", "-X", "-At", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres",
			"-c", "SELECT sum(g) FROM generate_series(1, 100000) g", "-c", "SET application_name = 'kp'", "-c", "SHOW application_name").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "5000050000\nSET\nkp" {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		dhost, dport := splitAddr(t, node)
		if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "1", "-h", dhost, "-p", dport, "-U", "postgres", "postgres").CombinedOutput(); err != nil {
			t.Fatalf("pgbench -i: %v\n%s", err, out)
		}
		out, err = exec.CommandContext(ctx, "pgbench", "-S", "-n", "-c", "4", "-t", "500", "-h", host, "-p", port, "-U", "postgres", "postgres").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "number of failed transactions: 0") {
			t.Fatalf("pgbench through the kernel path: %v\n%s", err, out)
		}
		if got := r.KernelStats().Forwarded - before.Forwarded; got < 500 {
			t.Fatalf("the kernel forwarded %d of pgbench's 2000 queries, want most", got)
		}
	})

	// check runs queries that read a setting made in the kernel.
	check := func(t *testing.T, c *pgx.Conn, what string) {
		t.Helper()
		for range 20 {
			var path string
			if err := c.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&path); err != nil || path != "kernel, public" {
				t.Fatalf("%s: search_path %q (%v)", what, path, err)
			}
		}
	}

	t.Run("Move", func(t *testing.T) {
		// Without crash snapshots an idle session stays in the kernel: the move must take it.
		rm, maddr, _ := startRouter(t, Config{Name: "kernel-move", Backends: &staticBackends{writer: node}, Sockmap: true})
		c := connect(t, dsn(maddr, "postgres", "", "sslmode=disable&default_query_exec_mode=simple_protocol"))
		if _, err := c.Exec(ctx, "SET search_path = kernel, public"); err != nil {
			t.Fatal(err)
		}
		check(t, c, "before")
		old := backendPID(t, c)
		// The ReadyForQuery of the last answer is sent once the session is in the kernel.
		before := rm.KernelStats()
		if in := before.Entered - before.HandedBack - before.BackedOut; in != 1 {
			t.Fatalf("%d sessions in the kernel before the move, want 1 (%+v)", in, before)
		}
		p := rm.Park(ctx, node, MoveOptions{Reason: "test"})
		if rep := p.Resume(ctx, node); rep.Moved != 1 || rep.Failed != 0 {
			t.Fatalf("move report %+v", rep)
		}
		if s := rm.KernelStats(); s.HandedBack != before.HandedBack+1 {
			t.Fatalf("the move did not take the session from the kernel: %+v then %+v", before, s)
		}
		if pid := backendPID(t, c); pid == old {
			t.Fatalf("still on backend %d after the move", old)
		}
		check(t, c, "after the move")
		if s := rm.KernelStats(); s.Entered <= before.Entered || s.Forwarded < before.Forwarded+20 {
			t.Fatalf("the moved session did not go back to the kernel: %+v then %+v", before, s)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		c := connect(t, simple)
		if _, err := c.Exec(ctx, "SET search_path = kernel, public"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "one session", time.Minute, func() bool { return len(r.Sessions()) == 1 })
		check(t, c, "before")
		old := backendPID(t, c)
		// Idle in the kernel, it leaves for its crash snapshot, then its backend is ended.
		waitUntil(t, "the idle session's snapshot", time.Minute, func() bool {
			ss := r.Sessions()
			return len(ss) == 1 && ss[0].Replayable
		})
		recovered := r.RecoveredSessions()
		direct, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", node))
		if err != nil {
			t.Fatal(err)
		}
		defer direct.Close(ctx)
		if _, err := direct.Exec(ctx, fmt.Sprintf("SELECT pg_terminate_backend(%d)", old)); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the crash replay", time.Minute, func() bool { return r.RecoveredSessions() > recovered })
		if pid := backendPID(t, c); pid == old {
			t.Fatalf("still on backend %d after its termination", pid)
		}
		check(t, c, "after the replay")
	})
}
