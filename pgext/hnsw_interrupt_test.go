package pgext_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// Interrupts: pg_cancel_backend and statement_timeout stop a long build (while Go builds the
// graph) and a long iterative scan (while Go walks the graph) within a second, and the server
// stays up.

// runUntilCancelled runs sql on conn in the background; it returns a channel with the error
// and the time the statement ended.
type ended struct {
	err error
	at  time.Time
}

func runInBackground(conn *pgx.Conn, sql string) <-chan ended {
	done := make(chan ended, 1)
	go func() {
		_, err := conn.Exec(context.Background(), sql)
		done <- ended{err, time.Now()}
	}()
	return done
}

// requireCancelled checks the statement ended with a cancel within a second of from. Both
// instants are taken on the server (the cancel's clock_timestamp, the backend's state_change
// when it went idle), so a test client starved of CPU on a loaded machine does not blur them.
func requireCancelled(t *testing.T, what string, e ended, setup *pgx.Conn, pid int, from time.Time) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(e.err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("%s: want a cancel (SQLSTATE 57014), got %v", what, e.err)
	}
	var end time.Time
	if err := setup.QueryRow(context.Background(),
		"SELECT state_change FROM pg_stat_activity WHERE pid = $1 AND state <> 'active'", pid).Scan(&end); err != nil {
		t.Fatalf("%s: reading when backend %d went idle: %v", what, pid, err)
	}
	took := end.Sub(from)
	t.Logf("%s: stopped %v after the interrupt (%s)", what, took.Round(time.Millisecond), pgErr.Message)
	if took > time.Second {
		t.Fatalf("%s: took %v to stop, want ≤ 1 s", what, took)
	}
}

// cancelBackend cancels pid's statement and returns the server's time of the cancel.
func cancelBackend(t *testing.T, setup *pgx.Conn, pid int) time.Time {
	t.Helper()
	var at time.Time
	var ok bool
	if err := setup.QueryRow(context.Background(),
		"SELECT pg_cancel_backend($1), clock_timestamp()", pid).Scan(&ok, &at); err != nil || !ok {
		t.Fatalf("pg_cancel_backend(%d): %v %v", pid, ok, err)
	}
	return at
}

// timeoutAt is when the server's statement_timeout fires for the statement pid is running:
// its query_start plus the timeout (measured on the server's clock, the machine's clock, so a
// statement that reached a loaded server late is not blamed for the delay).
func timeoutAt(t *testing.T, setup *pgx.Conn, pid int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var start time.Time
		err := setup.QueryRow(context.Background(),
			"SELECT query_start FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid).Scan(&start)
		if err == nil {
			return start.Add(timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("backend %d never started its statement", pid)
	return time.Time{}
}

func backendPID(t *testing.T, conn *pgx.Conn) int {
	var pid int
	if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestHNSWInterruptsStopBuildAndScan(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true,
		Settings: map[string]string{"maintenance_work_mem": "'512MB'"}})
	setup := s.Connect("postgres")
	const n, dims = 20000, 128
	vecs := hnswtest.Clustered(n, dims, 30, 6)
	loadVectors(t, setup, "docs", dims, vecs, 1)
	slowBuild := "CREATE INDEX slow_idx ON docs USING borealis_hnsw (embedding vector_l2_ops) WITH (m = 48, ef_construction = 800)"

	t.Run("cancel build", func(t *testing.T) {
		conn := s.Connect("postgres")
		mustExec(t, conn, "SET borealis.build_threads = 1")
		pid := backendPID(t, conn)
		done := runInBackground(conn, slowBuild)
		// Wait until Go is building the graph, and progress is reported.
		deadline := time.Now().Add(60 * time.Second)
		for {
			var phase string
			var tuples int64
			err := setup.QueryRow(context.Background(),
				"SELECT phase, tuples_done FROM pg_stat_progress_create_index WHERE pid = $1", pid).Scan(&phase, &tuples)
			if err == nil && phase == "building index: building graph" && tuples > 0 {
				t.Logf("progress: %s, %d tuples done", phase, tuples)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the build never reported building the graph (last: %q %d, %v)", phase, tuples, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		from := cancelBackend(t, setup, pid)
		requireCancelled(t, "pg_cancel_backend during the build", <-done, setup, pid, from)
	})

	t.Run("statement_timeout on build", func(t *testing.T) {
		conn := s.Connect("postgres")
		mustExec(t, conn, "SET borealis.build_threads = 2")
		mustExec(t, conn, "SET statement_timeout = '2s'")
		pid := backendPID(t, conn)
		done := runInBackground(conn, slowBuild)
		from := timeoutAt(t, setup, pid, 2*time.Second)
		requireCancelled(t, "statement_timeout during the build", <-done, setup, pid, from)
	})

	if got := s.QueryValue("postgres", "SELECT count(*) FROM pg_class WHERE relname = 'slow_idx'"); got != "0" {
		t.Fatalf("a cancelled build left an index behind")
	}
	mustExec(t, setup, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_l2_ops)")

	// A filter no row passes makes an iterative scan walk the whole graph, once per outer row.
	longScan := "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL (SELECT id FROM docs WHERE id % 2 = 2 " +
		"ORDER BY embedding <-> (SELECT embedding FROM docs WHERE id = 1 + g % " + strconv.Itoa(n) + ") LIMIT 1) s"
	scanConn := func(t *testing.T) *pgx.Conn {
		conn := s.Connect("postgres")
		// No JIT: at this plan's cost PostgreSQL compiles the query with LLVM before the first
		// row, and LLVM never checks for interrupts. On a starved server that compile outlasted
		// the cancel by seconds (a CPU profile of the backend after the signal: 63–71% in
		// libLLVM, the engine absent), a phase of PostgreSQL's own that pgvector's scans share.
		mustExec(t, conn, "SET jit = off")
		mustExec(t, conn, "SET enable_seqscan = off")
		mustExec(t, conn, "SET borealis.iterative_scan = strict_order")
		mustExec(t, conn, "SET borealis.max_scan_tuples = 1000000")
		// Load this backend's graph first: the interrupt must land while Go walks the graph, not
		// while the first scan loads it (seconds on a loaded machine; a phase of its own).
		mustExec(t, conn, "SELECT id FROM docs ORDER BY embedding <-> (SELECT embedding FROM docs WHERE id = 1) LIMIT 1")
		return conn
	}

	t.Run("cancel iterative scan", func(t *testing.T) {
		conn := scanConn(t)
		pid := backendPID(t, conn)
		done := runInBackground(conn, longScan)
		time.Sleep(1500 * time.Millisecond)
		from := cancelBackend(t, setup, pid)
		requireCancelled(t, "pg_cancel_backend during an iterative scan", <-done, setup, pid, from)
	})

	t.Run("statement_timeout on iterative scan", func(t *testing.T) {
		conn := scanConn(t)
		mustExec(t, conn, "SET statement_timeout = '1500ms'")
		pid := backendPID(t, conn)
		done := runInBackground(conn, longScan)
		from := timeoutAt(t, setup, pid, 1500*time.Millisecond)
		requireCancelled(t, "statement_timeout during an iterative scan", <-done, setup, pid, from)
	})

	if got := s.QueryValue("postgres", "SELECT count(*) FROM docs"); got != strconv.Itoa(n) {
		t.Fatalf("server answered %s rows after the interrupts", got)
	}
	requireChecked(t, s, "docs_idx")
}
