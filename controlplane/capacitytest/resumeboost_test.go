package capacitytest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/cgroup"
	. "github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// With capacity enforced, a resume starts the writer in a cgroup whose CPU weight is raised
// along its chain and whose quota is lifted (the resumed event reports the weight it read
// back, and the test reads it during the window); a restore the kernel refuses is an event
// and an EnforcementError, retried until it succeeds; then the capacity's weight and quota are
// back in the cgroup files, and the node was in its cgroup all along.
func TestResumeBoostsCgroupCPU(t *testing.T) {
	pgtest.RequireInstalled(t)
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to create cgroups")
	}
	t.Setenv(AutoPauseFloorEnv, "2")
	// A 10 s start-up window, so the test (niced, on a loaded host) breaks the restore before
	// it runs.
	m := newCapManager(t, func(o *Options) { o.Autoscale = false; o.ResumeQuiet = 10 * time.Second })
	d := createAndWait(t, m, CreateInput{Name: "wake", MinCapacity: 1, MaxCapacity: 2, AutoPause: true, SecondsUntilAutoPause: 2})
	w := writerOf(d)
	waitFor(t, "the cluster to pause", 2*time.Minute, func() bool {
		d, err := m.Describe("wake")
		return err == nil && d.Status == StatusPaused
	})
	seq := lastSeq(t, m)
	conn := connectTo(t, d.Endpoint)
	var pid int
	if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	weight, boosted := "cpu.shares", cgroup.StartupShares
	if m.Enforcement().Mode == string(cgroup.V2) {
		weight, boosted = "cpu.weight", cgroup.StartupWeight
	}
	e := waitEvent(t, m, "wake", "cluster.resumed", fmt.Sprintf("cgroup CPU weight %d and no quota", boosted), seq, 30*time.Second)
	t.Logf("%s", e.Message)
	g, err := m.NodeCgroup(w.DBInstanceIdentifier)
	if err != nil {
		t.Fatal(err)
	}
	normal := map[string]int{"cpu.shares": 1024, "cpu.weight": 100}[weight]
	var dir string
	for ctl, dd := range g.Dirs() {
		if ctl == "cpu" || ctl == "unified" {
			dir = dd
		}
	}
	scope := filepath.Dir(dir)
	// Make the restore fail, for real, inside the window: on v1 a child's quota may not exceed
	// its parent's, so the control plane's directory gets a 0.1 CPU quota (the boosted node has
	// none, which is allowed); on v2 the cpu controller is taken away from the control plane's
	// directory's children, so the node's cpu files are gone.
	wt, _, err := g.CPUWeight()
	if err != nil || wt != boosted {
		t.Fatalf("right after the resume the node's weight is %d (%v), want %d: the window closed early", wt, err, boosted)
	}
	breakIt, fixIt := func() error { return os.WriteFile(scope+"/cpu.cfs_quota_us", []byte("10000"), 0) },
		func() error { return os.WriteFile(scope+"/cpu.cfs_quota_us", []byte("-1"), 0) }
	if m.Enforcement().Mode == string(cgroup.V2) {
		breakIt, fixIt = func() error { return os.WriteFile(scope+"/cgroup.subtree_control", []byte("-cpu"), 0) },
			func() error { return os.WriteFile(scope+"/cgroup.subtree_control", []byte("+cpu"), 0) }
	}
	if err := breakIt(); err != nil {
		t.Fatal(err)
	}
	failed := waitEvent(t, m, "wake", "capacity.boost-restore-failed", w.DBInstanceIdentifier, seq, 30*time.Second)
	t.Logf("%s", failed.Message)
	if d, _ := m.Describe("wake"); !strings.Contains(writerOf(d).EnforcementError, "start-up CPU boost could not be ended") {
		t.Fatalf("describe after a failed restore: EnforcementError %q", writerOf(d).EnforcementError)
	}
	if err := fixIt(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, m, "wake", "capacity.boost-restored", w.DBInstanceIdentifier, seq, 30*time.Second)
	waitFor(t, "the node cgroup back at the capacity's CPU weight and quota", 60*time.Second, func() bool {
		wt, cpus, err := g.CPUWeight()
		return err == nil && wt == normal && cpus == 0.5
	})
	now, err := m.Describe("wake")
	if err != nil {
		t.Fatal(err)
	}
	checkCgroup(t, m, w.DBInstanceIdentifier, 1, pid, writerOf(now).PID)
	// The control plane's own directory (no other node of its is boosted) is back too.
	if raw, err := os.ReadFile(scope + "/" + weight); err != nil || strings.TrimSpace(string(raw)) != fmt.Sprint(normal) {
		t.Fatalf("%s/%s = %q, %v after the boost", scope, weight, raw, err)
	}
	if e := writerOf(now).EnforcementError; e != "" {
		t.Fatalf("enforcement error after the boost: %s", e)
	}
}
