package pgext_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// These tests run the node agent (the borealis background worker) in real servers and make
// every reason node_status() gives for "not a scaling point" with a real session, then check
// that it clears.

// nodeStatus is one row of borealis.node_status(); pointers are the nullable columns.
type nodeStatus struct {
	SampledAt                   *time.Time
	CPUPercent1m, CPUPercent5m  *float64
	MemoryBytes                 *int64
	Active, Idle, IdleInXact    *int32
	OldestQuery, OldestXact     *float64
	TempTableSessions, LockSess *int32
	ScalingPoint                *bool
	Blockers                    []string
	AgentPID                    *int32
}

func readStatus(t *testing.T, conn *pgx.Conn) nodeStatus {
	t.Helper()
	st, err := queryStatus(conn)
	if err != nil {
		t.Fatalf("borealis.node_status(): %v", err)
	}
	return st
}

func queryStatus(conn *pgx.Conn) (nodeStatus, error) {
	var st nodeStatus
	err := conn.QueryRow(context.Background(), `SELECT sampled_at, cpu_percent_1m, cpu_percent_5m,
		memory_bytes, connections_active, connections_idle, connections_idle_in_transaction,
		oldest_query_seconds, oldest_transaction_seconds, temp_table_sessions,
		explicit_lock_sessions, scaling_point, blockers, agent_pid FROM borealis.node_status()`).Scan(
		&st.SampledAt, &st.CPUPercent1m, &st.CPUPercent5m, &st.MemoryBytes, &st.Active, &st.Idle,
		&st.IdleInXact, &st.OldestQuery, &st.OldestXact, &st.TempTableSessions, &st.LockSess,
		&st.ScalingPoint, &st.Blockers, &st.AgentPID)
	return st, err
}

// waitStatus polls node_status() until ok accepts a snapshot taken after since, and returns it.
func waitStatus(t *testing.T, conn *pgx.Conn, since time.Time, what string, ok func(nodeStatus) bool) nodeStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var st nodeStatus
	for time.Now().Before(deadline) {
		st = readStatus(t, conn)
		if st.SampledAt != nil && st.SampledAt.After(since) && ok(st) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("node_status() never showed %s; last: %s", what, describe(st))
	return st
}

func describe(st nodeStatus) string {
	var b strings.Builder
	f := func(name string, v any) { b.WriteString(name + "=" + fmtAny(v) + " ") }
	f("sampled_at", st.SampledAt)
	f("active", st.Active)
	f("idle", st.Idle)
	f("idle_in_xact", st.IdleInXact)
	f("oldest_query", st.OldestQuery)
	f("oldest_xact", st.OldestXact)
	f("temp", st.TempTableSessions)
	f("locks", st.LockSess)
	f("scaling_point", st.ScalingPoint)
	f("blockers", st.Blockers)
	f("agent_pid", st.AgentPID)
	return b.String()
}

func fmtAny(v any) string {
	switch p := v.(type) {
	case *time.Time:
		if p != nil {
			return p.Format(time.RFC3339Nano)
		}
	case *int32:
		if p != nil {
			return strconv.Itoa(int(*p))
		}
	case *float64:
		if p != nil {
			return strconv.FormatFloat(*p, 'f', 3, 64)
		}
	case *bool:
		if p != nil {
			return strconv.FormatBool(*p)
		}
	case []string:
		return "{" + strings.Join(p, ",") + "}"
	}
	return "NULL"
}

func blockedBy(reasons ...string) func(nodeStatus) bool {
	return func(st nodeStatus) bool {
		return st.ScalingPoint != nil && !*st.ScalingPoint && slices.Equal(st.Blockers, reasons)
	}
}

func scalingPoint(st nodeStatus) bool {
	return st.ScalingPoint != nil && *st.ScalingPoint && len(st.Blockers) == 0
}

func requireAgentInstalled(t *testing.T) {
	t.Helper()
	pgtest.RequireInstalled(t)
	lib := filepath.Join(pgtest.PgConfig(t, "--pkglibdir"), "borealis_agent.so")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("the node agent is not installed (%v): run `make install`", err)
	}
}

// startAgentServer starts a preloaded server whose agent samples every 200 ms and treats
// statements and transactions older than 1 s as long, so the tests wait less.
func startAgentServer(t *testing.T) *pgtest.Server {
	t.Helper()
	requireAgentInstalled(t)
	return pgtest.Start(t, pgtest.Options{Preload: true, Extension: true, Settings: map[string]string{
		"borealis.agent_interval_ms":       "200",
		"borealis.scaling_query_threshold": "'1s'",
	}})
}

// session opens a connection for one (sub)test and ends it when that test ends, terminating
// the backend so a failed test cannot leave a transaction, lock or sleep for the next one.
func session(t *testing.T, s *pgtest.Server) (*pgx.Conn, int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.QueryValue("postgres", "SELECT pg_terminate_backend($1)", pid)
		conn.Close(ctx)
	})
	return conn, pid
}

func processCmdline(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(data), "\x00", " ")
}

func TestNodeAgentPublishesSnapshot(t *testing.T) {
	s := startAgentServer(t)
	conn, _ := session(t, s)
	s.Connect("postgres") // an idle session for the snapshot to count
	start := time.Now()
	st := waitStatus(t, conn, start, "a snapshot with an idle session", func(st nodeStatus) bool {
		return st.Idle != nil && *st.Idle >= 1
	})

	pid := int(*st.AgentPID)
	if cmd := processCmdline(t, pid); !strings.Contains(cmd, "borealis node agent") {
		t.Fatalf("agent_pid %d is not the agent worker: %q", pid, cmd)
	}
	if st.CPUPercent1m == nil || *st.CPUPercent1m < 0 || *st.CPUPercent1m > 100 ||
		st.CPUPercent5m == nil || *st.CPUPercent5m < 0 || *st.CPUPercent5m > 100 {
		t.Fatalf("CPU percentages out of 0-100: %s", describe(st))
	}
	// PSS of a server with 128 MB of shared buffers, a few backends and the Go runtime.
	if st.MemoryBytes == nil || *st.MemoryBytes < 4<<20 || *st.MemoryBytes > 4<<30 {
		t.Fatalf("memory_bytes implausible: %v", st.MemoryBytes)
	}
	if !scalingPoint(st) || *st.TempTableSessions != 0 || *st.LockSess != 0 || *st.IdleInXact != 0 {
		t.Fatalf("an idle server is not a scaling point: %s", describe(st))
	}

	// The Go half is loaded in the worker only, and its threads leave PostgreSQL's signals to
	// the worker's own thread.
	if !mapsContain(t, pid, "borealis_agent.so") {
		t.Fatalf("borealis_agent.so not mapped in the agent (pid %d)", pid)
	}
	if mapsContain(t, s.PID(), "borealis_agent.so") || mapsContain(t, s.PID(), "borealis_engine.so") {
		t.Fatalf("Go is mapped in the postmaster (pid %d)", s.PID())
	}
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*")
	if len(tasks) < 2 {
		t.Fatalf("agent %d has no Go threads", pid)
	}
	for _, task := range tasks {
		if strings.HasSuffix(task, "/"+strconv.Itoa(pid)) {
			continue
		}
		status, err := os.ReadFile(task + "/status")
		if err != nil {
			continue // a thread that just exited
		}
		mask := sigBlk(t, string(status))
		for _, sig := range []uint{1, 2, 10, 14, 15, 23} {
			if mask&(1<<(sig-1)) == 0 {
				t.Errorf("Go thread %s of the agent accepts signal %d", task, sig)
			}
		}
	}

	checkCPUOfExitedBackendCounted(t, s, conn)

	// A hot standby (a reader) runs its own agent.
	standby := s.StartStandby("agent-standby")
	sconn := standby.Connect("postgres")
	if got := standby.QueryValue("postgres", "SELECT pg_is_in_recovery()"); got != "true" {
		t.Fatalf("standby not in recovery: %s", got)
	}
	sst := waitStatus(t, sconn, time.Now(), "a snapshot on the standby", func(st nodeStatus) bool {
		return st.AgentPID != nil && st.Idle != nil && *st.Idle >= 1
	})
	if int(*sst.AgentPID) == pid || !strings.Contains(processCmdline(t, int(*sst.AgentPID)), "borealis node agent") {
		t.Fatalf("standby's agent_pid %d is not its own agent worker", *sst.AgentPID)
	}

	// Sampled about every 200 ms (borealis.agent_interval_ms), and the snapshot moves on.
	first := *st.SampledAt
	next := waitStatus(t, conn, first, "a newer snapshot", func(nodeStatus) bool { return true })
	// (The timestamp is taken after reading the sessions, so a descheduled worker can shorten
	// one gap by a little; a worker sampling back to back would show gaps of a few ms.)
	if gap := next.SampledAt.Sub(first); gap < 100*time.Millisecond {
		t.Fatalf("snapshots %v apart with agent_interval_ms=200", gap)
	}
}

func TestNodeStatusEveryReason(t *testing.T) {
	s := startAgentServer(t)
	ctx := context.Background()
	obs := s.Connect("postgres")
	s.Exec("postgres", "CREATE TABLE agent_lock_target (i int)")
	waitStatus(t, obs, time.Now(), "a scaling point on a quiet server", scalingPoint)

	t.Run("long_running_query", func(t *testing.T) {
		conn, pid := session(t, s)
		done := make(chan error, 1)
		go func() { _, err := conn.Exec(ctx, "SELECT pg_sleep(60)"); done <- err }()
		// A long statement is a long query only: its implicit transaction is not reported too.
		st := waitStatus(t, obs, time.Now(), "long_running_query", blockedBy("long_running_query"))
		if *st.OldestQuery <= 1 || *st.OldestXact < *st.OldestQuery || *st.Active < 1 {
			t.Fatalf("with pg_sleep running past the 1 s threshold: %s", describe(st))
		}
		s.QueryValue("postgres", "SELECT pg_cancel_backend($1)", pid)
		if err := <-done; sqlState(err) != "57014" {
			t.Fatalf("pg_sleep after cancel: %v", err)
		}
		waitStatus(t, obs, time.Now(), "the long query clear after cancel", scalingPoint)
	})

	t.Run("open_transaction", func(t *testing.T) {
		conn, _ := session(t, s)
		if _, err := conn.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, obs, time.Now(), "open_transaction", blockedBy("open_transaction"))
		if *st.IdleInXact != 1 || *st.OldestXact <= 0 {
			t.Fatalf("with one session idle in transaction: %s", describe(st))
		}
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "the open transaction clear after COMMIT", scalingPoint)

		// A failed transaction block holds the session as well, until ROLLBACK.
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT 1/0"); err == nil {
			t.Fatal("1/0 did not fail")
		}
		waitStatus(t, obs, time.Now(), "open_transaction for an aborted block", blockedBy("open_transaction"))
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "the aborted block clear after ROLLBACK", scalingPoint)
	})

	t.Run("temp_tables", func(t *testing.T) {
		conn, _ := session(t, s)
		if _, err := conn.Exec(ctx, "CREATE TEMP TABLE agent_scratch (i int)"); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, obs, time.Now(), "temp_tables", blockedBy("temp_tables"))
		if *st.TempTableSessions != 1 || *st.IdleInXact != 0 {
			t.Fatalf("with one idle session holding a temp table: %s", describe(st))
		}
		// Dropped, the table no longer blocks, though the session keeps its temp schema.
		if _, err := conn.Exec(ctx, "DROP TABLE agent_scratch"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "temp tables clear after DROP TABLE", scalingPoint)

		// A temp table goes with its session.
		other, _ := session(t, s)
		if _, err := other.Exec(ctx, "CREATE TEMP TABLE agent_scratch2 (i int)"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "temp_tables again", blockedBy("temp_tables"))
		other.Close(ctx)
		waitStatus(t, obs, time.Now(), "temp tables clear after disconnect", scalingPoint)
	})

	t.Run("explicit_locks", func(t *testing.T) {
		conn, _ := session(t, s)
		// A plain read in a transaction holds the same lock mode as LOCK ... IN ACCESS SHARE
		// MODE, but is not an explicit lock.
		if _, err := conn.Exec(ctx, "BEGIN; SELECT * FROM agent_lock_target"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "only open_transaction for an implicit lock", blockedBy("open_transaction"))
		if _, err := conn.Exec(ctx, "LOCK TABLE agent_lock_target IN ACCESS SHARE MODE"); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, obs, time.Now(), "explicit_locks", blockedBy("open_transaction", "explicit_locks"))
		if *st.LockSess != 1 {
			t.Fatalf("with one session after LOCK TABLE: %s", describe(st))
		}
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "explicit locks clear after COMMIT", scalingPoint)
		// The next transaction of the same session starts without them.
		if _, err := conn.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "a new transaction without explicit locks", blockedBy("open_transaction"))
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("threshold_reloads", func(t *testing.T) {
		// With the threshold raised by a reload, a statement older than the old 1 s threshold
		// no longer blocks.
		s.Exec("postgres", "ALTER SYSTEM SET borealis.scaling_query_threshold = '1h'")
		s.Exec("postgres", "SELECT pg_reload_conf()")
		t.Cleanup(func() {
			s.Exec("postgres", "ALTER SYSTEM RESET borealis.scaling_query_threshold")
			s.Exec("postgres", "SELECT pg_reload_conf()")
		})
		time.Sleep(500 * time.Millisecond) // the agent rereads the file before its next sample
		sleeper, _ := session(t, s)
		go sleeper.Exec(ctx, "SELECT pg_sleep(60)")
		waitStatus(t, obs, time.Now(), "a 2 s query that blocks nothing under a 1 h threshold", func(st nodeStatus) bool {
			return *st.OldestQuery > 2 && scalingPoint(st)
		})
	})

	t.Run("all_reasons_at_once", func(t *testing.T) {
		temp, _ := session(t, s)
		locker, _ := session(t, s)
		sleeper, pid := session(t, s)
		if _, err := temp.Exec(ctx, "CREATE TEMP TABLE agent_scratch3 (i int)"); err != nil {
			t.Fatal(err)
		}
		if _, err := locker.Exec(ctx, "SET lock_timeout = '10s'; BEGIN; LOCK TABLE agent_lock_target"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := sleeper.Exec(ctx, "SELECT pg_sleep(60)"); done <- err }()
		waitStatus(t, obs, time.Now(), "every reason, in order",
			blockedBy("long_running_query", "open_transaction", "temp_tables", "explicit_locks"))
		s.QueryValue("postgres", "SELECT pg_cancel_backend($1)", pid)
		<-done
		temp.Close(ctx)
		if _, err := locker.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, obs, time.Now(), "everything clear", scalingPoint)
	})
}

// checkCPUOfExitedBackendCounted burns CPU in a backend, ends that session, and checks the
// 1-minute CPU share still accounts for at least what the backend used (an exited child's
// time moves to the postmaster's cutime; the total never drops). Measured against the
// backend's own CPU time, not the wall clock, so a loaded machine only makes it slower.
func checkCPUOfExitedBackendCounted(t *testing.T, s *pgtest.Server, obs *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	burner, pid := session(t, s)
	deadline := time.Now().Add(30 * time.Second)
	for processTicks(t, pid) < 30 { // 0.3 s of CPU, however long a loaded machine takes
		if _, err := burner.Exec(ctx, "SELECT borealis.debug_spin(0.5)"); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d could not get 0.3 s of CPU in 30 s", pid)
		}
	}
	used := float64(processTicks(t, pid)) / 100 // USER_HZ
	burner.Close(ctx)
	for processCmdline(t, pid) != "" {
		time.Sleep(10 * time.Millisecond)
	}
	st := waitStatus(t, obs, time.Now(), "a snapshot after the backend exited", func(nodeStatus) bool { return true })
	// The 1-minute average covers at most the time since the server started.
	var started time.Time
	if err := obs.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&started); err != nil {
		t.Fatal(err)
	}
	window := min(st.SampledAt.Sub(started).Seconds(), 60)
	cpuSeconds := *st.CPUPercent1m / 100 * float64(runtime.NumCPU()) * window
	if cpuSeconds < used-0.05 {
		t.Fatalf("cpu_percent_1m %.2f%% of %d CPUs over at most %.1f s is %.2f CPU-seconds; the exited backend alone used %.2f",
			*st.CPUPercent1m, runtime.NumCPU(), window, cpuSeconds, used)
	}
}

// processTicks is utime+stime of a live process in clock ticks.
func processTicks(t testing.TB, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+1:])
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return u + st
}

// The agent stops at once on SIGTERM and comes back: after a terminate (exit code 1) and after
// a crash (kill -9, which makes the postmaster reinitialise shared memory).
func TestNodeAgentRestarts(t *testing.T) {
	s := startAgentServer(t)
	obs := s.Connect("postgres")
	st := waitStatus(t, obs, time.Now(), "a first snapshot", func(st nodeStatus) bool { return st.AgentPID != nil })
	first := int(*st.AgentPID)

	start := time.Now()
	if err := syscall.Kill(first, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for processCmdline(t, first) != "" {
		if time.Since(start) > time.Second {
			t.Fatalf("agent %d still running 1 s after SIGTERM", first)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st = waitStatus(t, obs, start, "a new agent after SIGTERM", func(st nodeStatus) bool {
		return st.AgentPID != nil && int(*st.AgentPID) != first
	})
	second := int(*st.AgentPID)

	if err := syscall.Kill(second, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The crash restart ends every connection, the observer's too.
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.DSN("postgres"))
		if err == nil {
			// The connection may have been made just before the crash reset ended it.
			st, err = queryStatus(conn)
			if err == nil && st.AgentPID != nil && int(*st.AgentPID) != second && st.SampledAt != nil {
				conn.Close(context.Background())
				break
			}
			conn.Close(context.Background())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agent 30 s after kill -9 of the last one: %s", describe(st))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A fast shutdown is not held up by the agent.
	stopStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stopStart); d > 10*time.Second {
		t.Fatalf("stopping the server took %v", d)
	}
}

// Without shared_preload_libraries there is no agent, and node_status() says so with NULLs.
func TestNodeStatusWithoutPreload(t *testing.T) {
	requireAgentInstalled(t)
	s := pgtest.Start(t, pgtest.Options{Extension: true})
	conn, _ := session(t, s)
	st := readStatus(t, conn)
	if st.SampledAt != nil || st.AgentPID != nil || st.ScalingPoint != nil || st.Blockers != nil || st.Active != nil {
		t.Fatalf("node_status() without the agent: %s", describe(st))
	}
	if got := s.QueryValue("postgres", "SELECT count(*) FROM borealis.node_status()"); got != "1" {
		t.Fatalf("node_status() returned %s rows, want 1", got)
	}
}
