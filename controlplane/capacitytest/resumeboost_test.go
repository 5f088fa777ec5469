package capacitytest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/cgroup"
	. "github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// With capacity enforced, a resume starts the writer in a cgroup whose CPU weight is raised
// along its chain and whose quota is lifted (the resumed event reports the weight it read
// back), and the capacity's weight and quota are back in the cgroup files once the start-up
// window ends; the node was in its cgroup meanwhile.
func TestResumeBoostsCgroupCPU(t *testing.T) {
	pgtest.RequireInstalled(t)
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to create cgroups")
	}
	t.Setenv(AutoPauseFloorEnv, "2")
	m := newCapManager(t, func(o *Options) { o.Autoscale = false })
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
	var dir string
	for ctl, dd := range g.Dirs() {
		if ctl == "cpu" || ctl == "unified" {
			dir = dd
		}
	}
	scope := dir[:strings.LastIndex(dir, "/")]
	if raw, err := os.ReadFile(scope + "/" + weight); err != nil || strings.TrimSpace(string(raw)) != fmt.Sprint(normal) {
		t.Fatalf("%s/%s = %q, %v after the boost", scope, weight, raw, err)
	}
	if e := writerOf(now).EnforcementError; e != "" {
		t.Fatalf("enforcement error after the boost: %s", e)
	}
}
