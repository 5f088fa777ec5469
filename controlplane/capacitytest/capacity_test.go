package capacitytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/controlplane/cgroup"
	. "github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/cluster/clustertest"
	"github.com/borealisdb/borealis/controlplane/scaling"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/pgtest"
)

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func connectTo(t *testing.T, addr string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", DefaultMasterUsername, testPassword, addr))
	if err != nil {
		t.Fatalf("connecting to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func lastSeq(t *testing.T, m *Manager) uint64 {
	evs, _ := m.Events("", 1)
	if len(evs) == 0 {
		return 0
	}
	return evs[0].Seq
}

// homes remembers each Manager's home (for reading node logs).
var homes sync.Map // *Manager -> string

func newCapManager(t *testing.T, mut func(*Options)) *Manager {
	t.Helper()
	home := clustertest.NewHome(t, "borealis-cap-")
	opts := Options{HoldTimeout: 60 * time.Second, EnforceCapacity: true, Autoscale: true}
	mut(&opts)
	m := clustertest.NewManager(t, home, opts)
	if e := m.Enforcement(); os.Geteuid() == 0 && !e.Enforced {
		t.Fatalf("running as root, but capacity is not enforced: %s", e.Reason)
	}
	homes.Store(m, home)
	return m
}

// testPassword is the master user's password of the tests' clusters (endpoints ask for SCRAM).
const testPassword = "test-master-pw"

func createAndWait(t *testing.T, m *Manager, in CreateInput) Description {
	t.Helper()
	in.MasterUserInput = MasterUserInput{MasterUserPassword: testPassword}
	if _, err := m.Create(in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, in.Name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writerOf(d Description) MemberDescription {
	for _, mb := range d.DBClusterMembers {
		if mb.IsClusterWriter {
			return mb
		}
	}
	return MemberDescription{}
}

func setting(t *testing.T, c *pgx.Conn, name string) string {
	t.Helper()
	var v string
	if err := c.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkCgroup reads the writer's limits back from the cgroup files and checks that pids are in
// its cgroup.
func checkCgroup(t *testing.T, m *Manager, member string, acu float64, pids ...int) {
	t.Helper()
	if !m.Enforcement().Enforced {
		return
	}
	g, err := m.NodeCgroup(member)
	if err != nil {
		t.Fatal(err)
	}
	mem, cpus, err := g.Limits()
	if err != nil || mem != int64(acu*(2<<30)) || cpus != acu*0.5 {
		t.Fatalf("%s at %g ACU: cgroup limits %d bytes, %g CPUs (%v)", member, acu, mem, cpus, err)
	}
	if m.Enforcement().Mode == string(cgroup.V1) {
		raw, _ := os.ReadFile(filepath.Join(g.Dirs()["memory"], "memory.limit_in_bytes"))
		if strings.TrimSpace(string(raw)) != strconv.FormatInt(int64(acu*(2<<30)), 10) {
			t.Fatalf("memory.limit_in_bytes = %s", raw)
		}
	}
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "/"+member+"\n") {
			t.Fatalf("pid %d is not in the cgroup of %s:\n%s", pid, member, data)
		}
	}
}

func eventWith(t *testing.T, m *Manager, cluster, typ, substr string, after uint64) *store.Event {
	evs, err := m.Events(cluster, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		e := evs[i]
		if e.Seq > after && e.Type == typ && strings.Contains(e.Message, substr) {
			return &e
		}
	}
	return nil
}

func waitEvent(t *testing.T, m *Manager, cluster, typ, substr string, after uint64, timeout time.Duration) store.Event {
	t.Helper()
	var e *store.Event
	waitFor(t, fmt.Sprintf("event %s containing %q", typ, substr), timeout, func() bool {
		e = eventWith(t, m, cluster, typ, substr, after)
		return e != nil
	})
	return *e
}

// Manual changes: in place within a tier (same postmaster, reloaded settings, new cgroup
// limits); across a tier a session in a transaction blocks the restart until the timeout,
// then RollbackCapacityChange keeps the capacity and ForceApplyCapacityChange restarts
// (the session gets 57P01, engine uptime resets); with no blocker it restarts at once.
func TestModifyCurrentCapacity(t *testing.T) {
	t.Parallel()
	pgtest.RequireInstalled(t)
	m := newCapManager(t, func(o *Options) { o.Autoscale = false; o.ScalingTimeout = 4 * time.Second })
	d := createAndWait(t, m, CreateInput{Name: "cap", MinCapacity: 1, MaxCapacity: 4})
	w := writerOf(d)
	ctx := context.Background()
	conn := connectTo(t, d.Endpoint)
	var backend int
	conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend)
	checkCgroup(t, m, w.DBInstanceIdentifier, 1, w.PID, backend)
	for k, want := range map[string]string{"max_connections": "90", "shared_buffers": "512MB", "effective_cache_size": "1536MB",
		"max_worker_processes": "72", "borealis.build_threads": "1", "max_parallel_workers": "0"} {
		if got := setting(t, conn, k); got != want {
			t.Errorf("%s = %s at 1 ACU, want %s", k, got, want)
		}
	}
	if !d.CapacityEnforcement.Enforced && os.Geteuid() == 0 {
		t.Fatalf("describe: %+v", d.CapacityEnforcement)
	}

	// Bad requests.
	for _, in := range []CapacityInput{{Capacity: 8}, {Capacity: 1.25}, {Capacity: 2, TimeoutAction: "Later"}, {Capacity: 2, SecondsBeforeTimeout: 5}} {
		var fe *FieldError
		if _, err := m.ModifyCurrentCapacity("cap", in); !errors.As(err, &fe) {
			t.Fatalf("%+v: %v, want a field error", in, err)
		}
	}
	if _, err := m.ModifyCurrentCapacity("nope", CapacityInput{Capacity: 2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown cluster: %v", err)
	}

	// In place: 1 -> 1.5.
	seq := lastSeq(t, m)
	out, err := m.ModifyCurrentCapacity("cap", CapacityInput{Capacity: 1.5})
	if err != nil || out.PendingCapacity != 1.5 || out.CurrentCapacity != 1 {
		t.Fatalf("%+v %v", out, err)
	}
	waitEvent(t, m, "cap", "capacity.scaling", "Scaling DB cluster from 1 capacity units to 1.5 capacity units for this reason: The customer initiated the scaling", seq, 30*time.Second)
	waitEvent(t, m, "cap", "capacity.changed", "in place", seq, 30*time.Second)
	d, _ = m.Describe("cap")
	if writerOf(d).PID != w.PID || d.Capacity != 1.5 {
		t.Fatalf("in-place change restarted the writer or did not record it: %+v", writerOf(d))
	}
	if got := setting(t, conn, "effective_cache_size"); got != "2304MB" {
		t.Fatalf("effective_cache_size after reload = %s", got)
	}
	checkCgroup(t, m, w.DBInstanceIdentifier, 1.5, w.PID, backend)

	// A session in a transaction through the cluster endpoint blocks 1.5 -> 2 (restart).
	tx := connectTo(t, d.Endpoint)
	if _, err := tx.Exec(ctx, "BEGIN; CREATE TABLE held (x int)"); err != nil {
		t.Fatal(err)
	}
	seq = lastSeq(t, m)
	if _, err := m.ModifyCurrentCapacity("cap", CapacityInput{Capacity: 2, TimeoutAction: RollbackCapacityChange}); err != nil {
		t.Fatal(err)
	}
	// While it waits, the cluster says so and a second request is refused.
	waitFor(t, "pending capacity in describe", 20*time.Second, func() bool {
		d, _ := m.Describe("cap")
		p := writerOf(d).PendingCapacity
		return p != nil && *p == 2 && d.Status == StatusScalingCapacity
	})
	var se *StateError
	if _, err := m.ModifyCurrentCapacity("cap", CapacityInput{Capacity: 4}); !errors.As(err, &se) {
		t.Fatalf("second request during a change: %v", err)
	}
	e := waitEvent(t, m, "cap", "capacity.rolled-back", "Scaling DB cluster from 1.5 capacity units to 2 capacity units was rolled back", seq, 60*time.Second)
	if !strings.Contains(e.Message, "in a transaction") {
		t.Fatalf("rollback event names no blocker: %s", e.Message)
	}
	t.Logf("rollback: %s", e.Message)
	d, _ = m.Describe("cap")
	if d.Capacity != 1.5 || writerOf(d).PID != w.PID || setting(t, conn, "shared_buffers") != "512MB" {
		t.Fatalf("rolled back, but capacity %g, pid %d", d.Capacity, writerOf(d).PID)
	}
	if r := m.ScalingResults(); r[ResultRolledBack] != 1 || r[ResultApplied] != 1 {
		t.Fatalf("results %v", r)
	}

	// Force: the same blocker, then the change anyway.
	uptime := writerOf(d).EngineUptimeSeconds
	seq = lastSeq(t, m)
	if _, err := m.ModifyCurrentCapacity("cap", CapacityInput{Capacity: 2, TimeoutAction: ForceApplyCapacityChange}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, m, "cap", "capacity.timeout", "forcing the change", seq, 60*time.Second)
	waitEvent(t, m, "cap", "capacity.changed", "Scaled DB cluster from 1.5 capacity units to 2 capacity units forced", seq, 90*time.Second)
	_, err = tx.Exec(ctx, "SELECT 1")
	var pe *pgconn.PgError
	if err == nil {
		t.Fatal("the session in a transaction survived a forced restart")
	}
	if errors.As(err, &pe) && pe.Code != "57P01" {
		t.Fatalf("forced session got %s %s, want 57P01", pe.Code, pe.Message)
	}
	t.Logf("session in a transaction after the forced change: %v", err)
	d, _ = m.Describe("cap")
	nw := writerOf(d)
	if nw.PID == w.PID || d.Capacity != 2 {
		t.Fatalf("forced change did not restart: pid %d (was %d), capacity %g", nw.PID, w.PID, d.Capacity)
	}
	c2 := connectTo(t, d.Endpoint)
	if sb, mc := setting(t, c2, "shared_buffers"), setting(t, c2, "max_connections"); sb != "1GB" || mc != "180" {
		t.Fatalf("after restart at 2 ACU: shared_buffers %s, max_connections %s", sb, mc)
	}
	waitFor(t, "a poll of the restarted writer", 20*time.Second, func() bool {
		d, _ = m.Describe("cap")
		u := writerOf(d).EngineUptimeSeconds
		return u > 0 && u < uptime
	})
	var b2 int
	c2.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&b2)
	checkCgroup(t, m, w.DBInstanceIdentifier, 2, nw.PID, b2)

	// No blocker: 2 -> 1 restarts at once, and an idle session (with a SET) moves to the
	// restarted node without noticing.
	c2.Close(ctx)
	if _, err := conn.Exec(ctx, "SET application_name = 'mover'"); err != nil {
		t.Fatal(err)
	}
	seq = lastSeq(t, m)
	if _, err := m.ModifyCurrentCapacity("cap", CapacityInput{Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, m, "cap", "capacity.changed", "to 1 capacity units at a scaling point, with a restart", seq, 60*time.Second)
	waitEvent(t, m, "cap", "member.sessions-moved", "1 session(s) moved", seq, 10*time.Second)
	var moved int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&moved); err != nil || moved == backend {
		t.Fatalf("the idle session did not move: %v (backend %d, was %d)", err, moved, backend)
	}
	if sb, app := setting(t, conn, "shared_buffers"), setting(t, conn, "application_name"); sb != "512MB" || app != "mover" {
		t.Fatalf("moved session sees shared_buffers %s, application_name %s", sb, app)
	}
	if r := m.ScalingResults(); r[ResultApplied] != 2 || r[ResultForced] != 1 || r[ResultRolledBack] != 1 {
		t.Fatalf("results %v", r)
	}
	d, _ = m.Describe("cap")
	checkCgroup(t, m, w.DBInstanceIdentifier, 1, writerOf(d).PID)
}

// shortPolicy makes the autoscaler act in seconds (a test setting; the defaults are minutes).
func shortPolicy() *scaling.Policy {
	p := scaling.DefaultPolicy()
	p.MinCPUWindow, p.UpCooldown, p.LowUseFor, p.DownCooldown = 2*time.Second, 3*time.Second, 4*time.Second, 4*time.Second
	return &p
}

// A pgbench load through the cluster endpoint scales the writer up, and idle scales it down
// again after the shortened cool-down. 85 clients take 94% of the 90 connections of 1 ACU, which
// no host load can hide (CPU against the quota can: a node starved by a busy host never reaches
// its quota, and then a larger quota would not help); the change to 2 ACU needs a restart, found
// at a scaling point between pgbench's single-statement transactions.
func TestAutoscalingFollowsLoad(t *testing.T) {
	t.Parallel()
	pgtest.RequireInstalled(t)
	m := newCapManager(t, func(o *Options) {
		o.Scaling = shortPolicy()
		o.CPUWindows = [2]time.Duration{3 * time.Second, 6 * time.Second}
		o.ScalingTimeout = 30 * time.Second
	})
	d := createAndWait(t, m, CreateInput{Name: "load", MinCapacity: 1, MaxCapacity: 2, TimeoutAction: ForceApplyCapacityChange})
	host, port, _ := strings.Cut(d.Endpoint, ":")
	pgbench := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(pgproc.BinDir(), "pgbench"), append([]string{"-h", host, "-p", port, "-U", DefaultMasterUsername}, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+testPassword)
		return cmd
	}
	if out, err := pgbench(context.Background(), "-i", "-s", "1", "-q", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	seq := lastSeq(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bench := pgbench(ctx, "-S", "-c", "85", "-j", "4", "-T", "120", "postgres")
	var out strings.Builder
	bench.Stdout, bench.Stderr = &out, &out
	start := time.Now()
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	// CPU (in place to 1.5 first, on a quiet host) or the connections bring it to 2 ACU, the last
	// step with a restart at a scaling point; parking and moving 85 sessions of a starved node
	// can take a while on a busy host.
	waitEvent(t, m, "load", "capacity.changed", "to 2 capacity units", seq, 180*time.Second)
	e := waitEvent(t, m, "load", "capacity.scaling", "capacity units to 2 capacity units for this reason: Autoscaling:", seq, time.Second)
	t.Logf("at 2 ACU %s after the load started: %s", time.Since(start).Round(time.Second), e.Message)
	cancel()
	_ = bench.Wait()
	idle, idleSeq := time.Now(), lastSeq(t, m)
	// Low use brings it back to 1 ACU: at once from 2 when the node's CPU windows show it idle,
	// or by halves while they still hold the end of the load (Decide targets the CPU at 50%, and
	// at load 30 the node still used 27% of 2 ACU, 54% of 1: 1.5 first). Every scaling decision
	// after the load ended is such a scale-down.
	e = waitEvent(t, m, "load", "capacity.scaling", "Scaling DB cluster from 2 capacity units to ", idleSeq, 90*time.Second)
	waitEvent(t, m, "load", "capacity.changed", "to 1 capacity units", idleSeq, 120*time.Second)
	evs, err := m.Events("load", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Seq > idleSeq && ev.Type == "capacity.scaling" && !strings.Contains(ev.Message, "for this reason: Autoscaling: low use") {
			t.Fatalf("a scaling decision after the load ended that is not a low-use scale-down: %s", ev.Message)
		}
	}
	t.Logf("back at 1 ACU %s after the load stopped: %s", time.Since(idle).Round(time.Second), e.Message)
	d, _ = m.Describe("load")
	checkCgroup(t, m, writerOf(d).DBInstanceIdentifier, 1, writerOf(d).PID)
}

// A node at 1 ACU that tries to use more than 2 GiB is limited by its cgroup, not the machine:
// the kernel kills the backend, PostgreSQL restarts its processes, and the control plane sees
// the OOM kill and scales up.
//
// It runs from its own make target (test-capacity-memory, part of make test), alone and without
// the race detector: filling 2.4 GB through a 0.5-CPU quota takes minutes on a busy host, which
// does not fit beside the other control-plane packages in one -race run. The Makefile's
// package-wide runs leave it out by name (SLOW_ALONE_TESTS in the Makefile).
func TestMemoryLimit(t *testing.T) {
	pgtest.RequireInstalled(t)
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to enforce a memory limit")
	}
	p := shortPolicy()
	p.MinCPUWindow = time.Hour // only memory may trigger here
	// Only the OOM kill may trigger here: on a quiet host the sampler sees the backend grow and
	// the 90% memory rule scales up in place before the kill (seen in CI), which is the rule
	// working but not what this test proves.
	p.ScaleUpMemory = 100
	m := newCapManager(t, func(o *Options) { o.Scaling = p })
	d := createAndWait(t, m, CreateInput{Name: "mem", MinCapacity: 1, MaxCapacity: 2})
	conn := connectTo(t, d.Endpoint)
	seq := lastSeq(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Three values of 0.8 GB held in one row: 2.4 GB in one backend, over the 2 GiB (2.15 GB)
	// limit. repeat copies a 1,000-byte string, so filling them costs little CPU (which
	// matters: the node has 0.5 CPU, less on a busy host).
	var n int64
	qstart := time.Now()
	err := conn.QueryRow(ctx, `SELECT length(a)::bigint + length(b) + length(c) FROM
		(SELECT repeat(repeat('a', 1000), 800000) a, repeat(repeat('b', 1000), 800000) b, repeat(repeat('c', 1000), 800000) c) s`).Scan(&n)
	if err == nil {
		t.Fatalf("a 2.4 GB query succeeded at 1 ACU (%d bytes)", n)
	}
	t.Logf("the client of the 2.4 GB query got, after %s: %v", time.Since(qstart).Round(time.Second), err)
	e := waitEvent(t, m, "mem", "capacity.scaling", "Scaling DB cluster from 1 capacity units to 2 capacity units for this reason: Autoscaling: 1 process(es) killed at the 2.0 GiB memory limit", seq, 90*time.Second)
	t.Logf("%s", e.Message)
	waitEvent(t, m, "mem", "capacity.changed", "to 2 capacity units", seq, 90*time.Second)
	t.Logf("at 2 ACU %s after the query started", time.Since(qstart).Round(time.Second))
	w := writerOf(d)
	home, _ := homes.Load(m)
	logs, _ := filepath.Glob(filepath.Join(home.(string), "clusters", "mem", w.DBInstanceIdentifier, "log", "*.log"))
	found := false
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "signal 9") || strings.Contains(line, "out of memory") || strings.Contains(line, "terminating any other") {
				t.Logf("server log: %s", line)
				found = found || strings.Contains(line, "was terminated by signal 9: Killed")
			}
		}
	}
	if !found {
		t.Fatalf("the server log does not say the backend was killed (logs %v)", logs)
	}
	d, _ = m.Describe("mem")
	checkCgroup(t, m, w.DBInstanceIdentifier, 2, writerOf(d).PID)
}
