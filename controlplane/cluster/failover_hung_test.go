package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestScheduledButHungWriterFailsOver hangs the whole writer — postmaster, backends, WAL
// writer — in a cgroup freezer: the processes exist, the kernel still queues new TCP
// connections on the listen socket, nothing answers, and /proc shows the postmaster
// scheduled ('D' under the v1 freezer, 'S' under v2), as a server hung on its disk would be,
// not stopped ('T', which SIGSTOP gives and TestFailover covers). The detector cannot tell
// that from a starved server, so it waits failover.AliveLimit (3 x grace, at least grace +
// 10 s) rather than the grace period, and then must really promote: the failover starts no
// sooner, a write through the cluster endpoint lands on the new writer while the old one is
// still hung, and once thawed the old writer's processes die of the fence's pending SIGKILL
// without taking a write and it rejoins as a reader. Before the hang, the other side of that
// limit: a writer whose every new session takes longer than the probe timeout, for longer than
// AliveLimit, but that serves them, is not failed over (slowSessionsAreNotFailedOver).
func TestScheduledButHungWriterFailsOver(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManager(t, newHome(t))
	fz := newFreezer(t) // after the manager: thawed before the manager stops the nodes
	const grace = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	d, acks := ackedCluster(t, ctx, m, "hung", 1, int(grace/time.Second))
	acks.write(30)
	old := writerOf(d)
	// A session opened straight to the writer before it hangs.
	direct := connectTo(t, fmt.Sprintf("127.0.0.1:%d", old.Port))

	before := lastSeq(t, m)
	slowSessionsAreNotFailedOver(t, m, "hung", old.Port, grace, acks, before)
	before = lastSeq(t, m)
	tree, hung := fz.freeze(t, old.PID)
	state := procState(old.PID)
	if !strings.ContainsRune("RSD", rune(state)) {
		t.Fatalf("the hung postmaster is in state %c, want a scheduled one (R, S or D)", state)
	}

	// The promotion: the cluster's writer changes while the old one still hangs (its fence
	// may wait for the thaw: a v1-frozen process dies of SIGKILL only once thawed).
	waitFor(t, "a reader promoted", 90*time.Second, func() bool {
		return writerOf(m.mustDescribe(t, "hung")).DBInstanceIdentifier != old.DBInstanceIdentifier
	})
	// Recorded alongside the promotion (failover.go), so it may land after the writer changes.
	started := waitEvent(t, m, "hung", "cluster.failover-started", before)
	limit := failover.AliveLimit(grace)
	// The failure is timed from the first failed probe's start, which may precede the hang
	// by one probe interval.
	if after := started.Time.Sub(hung); after < limit-probeInterval {
		t.Fatalf("failover started %v after the hang, before the %v a scheduled writer gets: %s", after, limit, started.Message)
	}
	t.Logf("failover started %.1f s after the hang (limit %v): %s", started.Time.Sub(hung).Seconds(), limit, started.Message)
	if !strings.Contains(started.Message, fmt.Sprintf("its postmaster is scheduled (state %c) but has answered nothing", state)) {
		t.Fatalf("failover reason: %s", started.Message)
	}
	acks.write(10) // through the cluster endpoint, to the new writer

	fz.thaw(t)
	waitFor(t, "the hung writer's processes to die of the fence's SIGKILL", 60*time.Second, func() bool {
		for _, pid := range tree {
			if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(data), ") Z ") {
				return false
			}
		}
		return true
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := direct.Exec(wctx, "INSERT INTO acked VALUES (-1)")
	wcancel()
	if err == nil {
		t.Fatal("the thawed old writer accepted a write")
	}
	d = waitNewWriter(t, m, "hung", old.DBInstanceIdentifier, 90*time.Second)
	completed := waitEvent(t, m, "hung", "cluster.failover-completed", before)
	t.Logf("completed: %s", completed.Message)
	acks.check(d.Endpoint)
	waitRejoined(t, m, "hung", old.DBInstanceIdentifier, acks)
}

// slowSessionsAreNotFailedOver makes every new session on the writer at port slower than the
// probe timeout for longer than failover.AliveLimit, as a writer starved of CPU is: the
// developer setting pre_auth_delay (reloadable) makes each new backend sleep 1 s before
// authentication, twice the 0.5 s probe timeout of a 2 s grace period, while sessions already
// open answer at once. Every probe then times out, and only the probe left to go on sees the
// writer answer: the writer is not failed over, and writes through the endpoint go on.
func slowSessionsAreNotFailedOver(t *testing.T, m *Manager, name string, port int, grace time.Duration, acks *ackLog, before uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	su := superConnect(t, m, name, port)
	setDelay := func(sql string) {
		for _, q := range []string{sql, "SELECT pg_reload_conf()"} {
			if _, err := su.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	c := m.mustCluster(t, name)
	decision := func() (failover.Decision, time.Time) {
		p := &c.fo.probe
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.dec, p.det.Since()
	}
	noFailover := func() {
		if ev := eventAfter(t, m, name, "cluster.failover-started", before); ev != nil {
			t.Fatalf("a writer whose new sessions take 1 s, and that serves them, was failed over: %s", ev.Message)
		}
	}
	setDelay("ALTER SYSTEM SET pre_auth_delay = 1")
	// Until a probe that timed out is answered late, then AliveLimit more: under the old rule
	// the writer was promoted away AliveLimit after the first failed probe, which came before.
	// (A late answer's reason lasts one probe round, at least the 0.5 s a probe waits.)
	limit := failover.AliveLimit(grace)
	var end time.Time
	lates := 0
	for deadline := time.Now().Add(time.Minute); end.IsZero() || time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		noFailover()
		if dec, _ := decision(); strings.Contains(dec.Reason, "writer answers slowly") {
			if lates++; end.IsZero() {
				end = time.Now().Add(limit + 3*time.Second)
			}
		}
		if end.IsZero() && time.Now().After(deadline) {
			t.Fatal("no probe that timed out was answered late within a minute of pre_auth_delay = 1")
		}
	}
	acks.write(5)
	noFailover()
	setDelay("ALTER SYSTEM RESET pre_auth_delay")
	waitFor(t, "probes answered within the timeout again", 60*time.Second, func() bool {
		dec, since := decision()
		return since.IsZero() && dec.Action == failover.None && !strings.Contains(dec.Reason, "slowly")
	})
	noFailover()
	t.Logf("new sessions slower than the probe timeout for %s: late answers seen in %d samples, no failover", limit+3*time.Second, lates)
}

// freezer is a cgroup made for one test whose processes can be frozen: the v1 freezer
// controller's (freezer.state) or, without it, a v2 group's (cgroup.freeze).
type freezer struct {
	dir string
	v1  bool
}

func newFreezer(t *testing.T) *freezer {
	t.Helper()
	name := fmt.Sprintf("borealis-test-hung-%d", os.Getpid())
	var fz *freezer
	if _, err := os.Stat("/sys/fs/cgroup/freezer/cgroup.procs"); err == nil {
		fz = &freezer{dir: filepath.Join("/sys/fs/cgroup/freezer", name), v1: true}
	} else {
		for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
			if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
				fz = &freezer{dir: filepath.Join(root, name)}
				break
			}
		}
	}
	if fz == nil {
		t.Fatal("this test hangs a writer in a cgroup freezer: no v1 freezer hierarchy (/sys/fs/cgroup/freezer) and no cgroup v2 mount found")
	}
	if err := os.Mkdir(fz.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatalf("making the freezer cgroup (this test needs root): %v", err)
	}
	if !fz.v1 {
		if _, err := os.Stat(filepath.Join(fz.dir, "cgroup.freeze")); err != nil {
			os.Remove(fz.dir)
			t.Fatalf("cgroup v2 without cgroup.freeze (kernel older than 5.2?): %v", err)
		}
	}
	t.Cleanup(func() {
		fz.thaw(t)
		// Its processes are gone (the nodes stop after this); the empty group can go.
		for i := 0; i < 50 && os.Remove(fz.dir) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	return fz
}

// freeze moves the postmaster pid and every process under it into the group and freezes it.
// The postmaster goes first, so that a child it forks while the others are listed is born in
// the group. It returns the processes frozen and when the freeze was asked for (a loaded
// machine may take a while to report the whole group frozen, but its processes stop answering
// from the request on).
func (fz *freezer) freeze(t *testing.T, pid int) ([]int, time.Time) {
	t.Helper()
	procs := filepath.Join(fz.dir, "cgroup.procs")
	tree := []int{pid}
	if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("moving the postmaster %d into %s: %v", pid, fz.dir, err)
	}
	for _, c := range pgproc.Descendants(pid) {
		if err := os.WriteFile(procs, []byte(strconv.Itoa(c)), 0); err == nil {
			tree = append(tree, c)
		} else if !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("moving %d into %s: %v", c, fz.dir, err)
		}
	}
	file, value, want := "cgroup.freeze", "1", "frozen 1"
	if fz.v1 {
		file, value, want = "freezer.state", "FROZEN", "FROZEN"
	}
	asked := time.Now()
	if err := os.WriteFile(filepath.Join(fz.dir, file), []byte(value), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the writer frozen", 10*time.Second, func() bool {
		if fz.v1 {
			data, _ := os.ReadFile(filepath.Join(fz.dir, "freezer.state"))
			return strings.TrimSpace(string(data)) == want
		}
		data, _ := os.ReadFile(filepath.Join(fz.dir, "cgroup.events"))
		return strings.Contains(string(data), want)
	})
	return tree, asked
}

func (fz *freezer) thaw(t *testing.T) {
	file, value := "cgroup.freeze", "0"
	if fz.v1 {
		file, value = "freezer.state", "THAWED"
	}
	if err := os.WriteFile(filepath.Join(fz.dir, file), []byte(value), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("thawing %s: %v", fz.dir, err)
	}
}
