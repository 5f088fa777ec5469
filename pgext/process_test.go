package pgext_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/internal/pgtest"
	"github.com/borealisdb/borealis/internal/runtimepatch"
)

// These tests prove the process model of docs/architecture.md on a real server: the Go engine
// is never in the postmaster, loads in backends, and never stands in the way of PostgreSQL's
// signals (cancel, timeout, terminate, latches).

func startPreloaded(t *testing.T) *pgtest.Server {
	t.Helper()
	pgtest.RequireInstalled(t)
	return pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
}

func TestPreloadedServerServesManyNewBackends(t *testing.T) {
	s := startPreloaded(t)
	ctx := context.Background()
	for i := range 20 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgx.Connect(cctx, s.DSN("postgres"))
		if err != nil {
			cancel()
			t.Fatalf("backend %d: connect: %v", i, err)
		}
		var v string
		if err := conn.QueryRow(cctx, "SELECT borealis_version()").Scan(&v); err != nil {
			t.Fatalf("backend %d: borealis_version(): %v", i, err)
		}
		if !strings.HasPrefix(v, "borealis 0.1.0 (engine go1.") {
			t.Fatalf("backend %d: borealis_version() = %q", i, v)
		}
		conn.Close(cctx)
		cancel()
	}
}

func TestEngineLoadsInBackendNotPostmaster(t *testing.T) {
	s := startPreloaded(t)
	conn := s.Connect("postgres")
	ctx := context.Background()

	var raw []byte
	if err := conn.QueryRow(ctx, "SELECT borealis_engine_info()::text").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var info struct {
		ExtensionVersion string `json:"extension_version"`
		GoVersion        string `json:"go_version"`
		SignalIsolation  struct {
			GoThreads int    `json:"go_threads"`
			OK        bool   `json:"ok"`
			Problem   string `json:"problem"`
		} `json:"signal_isolation"`
		SIMD struct {
			Path string `json:"path"`
		} `json:"simd"`
		RuntimePatch string `json:"runtime_patch"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatalf("borealis_engine_info() is not JSON: %v: %s", err, raw)
	}
	if info.ExtensionVersion != "0.1.0" || !strings.HasPrefix(info.GoVersion, "go1.") || info.SIMD.Path == "" {
		t.Fatalf("borealis_engine_info() incomplete: %s", raw)
	}
	if !info.SignalIsolation.OK || info.SignalIsolation.GoThreads == 0 {
		t.Fatalf("Go threads in the backend accept PostgreSQL's signals: %s", raw)
	}
	// The Makefile builds the engine with the sysmon edits whenever this toolchain's runtime
	// takes them (internal/runtimepatch's own test checks that it does).
	if info.RuntimePatch != runtimepatch.Name {
		t.Fatalf("engine runtime_patch = %q, want %q: the installed engine was built without the Go runtime patch (run make install from this tree): %s", info.RuntimePatch, runtimepatch.Name, raw)
	}

	var backendPID int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backendPID); err != nil {
		t.Fatal(err)
	}
	if !mapsContain(t, backendPID, "borealis_engine.so") {
		t.Fatalf("engine not mapped in backend %d after borealis_engine_info()", backendPID)
	}
	if !mapsContain(t, s.PID(), "borealis.so") {
		t.Fatalf("borealis.so not preloaded in the postmaster (pid %d)", s.PID())
	}
	if mapsContain(t, s.PID(), "borealis_engine.so") {
		t.Fatalf("the Go engine is mapped in the postmaster (pid %d): it must only load after fork", s.PID())
	}

	// Seen from outside too: every thread of the backend but its own blocks the signals
	// PostgreSQL relies on (SIGINT, SIGUSR1, SIGTERM, SIGALRM, SIGURG).
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(backendPID) + "/task/*")
	goThreads := 0
	for _, task := range tasks {
		if strings.HasSuffix(task, "/"+strconv.Itoa(backendPID)) {
			continue
		}
		goThreads++
		status, err := os.ReadFile(task + "/status")
		if err != nil {
			t.Fatal(err)
		}
		mask := sigBlk(t, string(status))
		for _, sig := range []uint{2, 10, 14, 15, 23} {
			if mask&(1<<(sig-1)) == 0 {
				t.Errorf("Go thread %s of backend %d does not block signal %d", task, backendPID, sig)
			}
		}
	}
	if goThreads == 0 {
		t.Fatalf("backend %d has no Go threads after loading the engine", backendPID)
	}
}

func sigBlk(t *testing.T, status string) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if hex, ok := strings.CutPrefix(line, "SigBlk:"); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatal("no SigBlk line")
	return 0
}

func mapsContain(t *testing.T, pid int, lib string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		t.Fatalf("reading maps of pid %d: %v", pid, err)
	}
	return strings.Contains(string(data), "/"+lib)
}

// spinInBackground starts borealis.debug_spin(30) on its own connection and returns the
// backend's pid and a channel that receives the statement's error.
func spinInBackground(t *testing.T, s *pgtest.Server, setup string) (int, <-chan error) {
	t.Helper()
	conn := s.Connect("postgres")
	ctx := context.Background()
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if setup != "" {
		if _, err := conn.Exec(ctx, setup); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT borealis.debug_spin(30)")
		errc <- err
	}()
	waitForQuery(t, s, pid, "debug_spin")
	return pid, errc
}

// waitForQuery waits until backend pid is running a query containing text.
func waitForQuery(t *testing.T, s *pgtest.Server, pid int, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		q := s.QueryValue("postgres", "SELECT coalesce((SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active'), '')", pid)
		if strings.Contains(q, text) {
			time.Sleep(200 * time.Millisecond) // inside the Go loop by now
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("backend %d never started %q", pid, text)
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestCancelInterruptsEngineWithinOneSecond(t *testing.T) {
	s := startPreloaded(t)
	pid, errc := spinInBackground(t, s, "")
	start := time.Now()
	if got := s.QueryValue("postgres", "SELECT pg_cancel_backend($1)", pid); got != "true" {
		t.Fatalf("pg_cancel_backend(%d) = %s", pid, got)
	}
	select {
	case err := <-errc:
		if sqlState(err) != "57014" {
			t.Fatalf("expected query_canceled (57014), got %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("cancel took %v, want under 1s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pg_cancel_backend did not stop the engine call within 5s")
	}
}

func TestStatementTimeoutInterruptsEngine(t *testing.T) {
	s := startPreloaded(t)
	start := time.Now()
	_, errc := spinInBackground(t, s, "SET statement_timeout = '1500ms'")
	select {
	case err := <-errc:
		if sqlState(err) != "57014" {
			t.Fatalf("expected query_canceled (57014) from statement_timeout, got %v", err)
		}
		// The statement started after the pg_stat_activity poll began; allow the 1.5 s timeout
		// plus the one second the process model promises.
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Fatalf("statement_timeout of 1.5s took effect after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("statement_timeout did not stop the engine call")
	}
}

func TestPgSleepAfterEngineLoaded(t *testing.T) {
	s := startPreloaded(t)
	conn := s.Connect("postgres")
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SELECT borealis_engine_info()"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, "SELECT pg_sleep(1)"); err != nil {
		t.Fatal(err)
	}
	// pg_sleep waits on the backend's latch, woken by SIGURG-driven timeouts in PostgreSQL 15:
	// if the Go runtime swallowed those signals this would hang or overrun.
	if d := time.Since(start); d < 950*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("pg_sleep(1) took %v with the engine loaded", d)
	}
}

func TestTerminateInsideEngineLeavesServerUp(t *testing.T) {
	s := startPreloaded(t)
	startTime := s.QueryValue("postgres", "SELECT pg_postmaster_start_time()")
	pid, errc := spinInBackground(t, s, "")
	if got := s.QueryValue("postgres", "SELECT pg_terminate_backend($1)", pid); got != "true" {
		t.Fatalf("pg_terminate_backend(%d) = %s", pid, got)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("terminated backend's statement returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pg_terminate_backend did not end the backend within 5s")
	}
	// The server is up and did not go through crash recovery: the postmaster is the same.
	if got := s.QueryValue("postgres", "SELECT pg_postmaster_start_time()"); got != startTime {
		t.Fatalf("postmaster restarted (start time %s -> %s): a backend crashed", startTime, got)
	}
	if got := s.QueryValue("postgres", "SELECT borealis_version() LIKE 'borealis%'"); got != "true" {
		t.Fatalf("new backend after terminate: %s", got)
	}
	if strings.Contains(s.LogTail(200), "terminated by signal") {
		t.Fatalf("a backend died by signal:\n%s", s.LogTail(40))
	}
}
