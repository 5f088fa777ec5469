package cgroup

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestCPUBoostPlan(t *testing.T) {
	anc := func(scopeOthers, topOthers int) []Ancestor {
		return []Ancestor{{"/cg/borealis/cp", scopeOthers}, {"/cg/borealis", topOthers}}
	}
	for _, tc := range []struct {
		name    string
		mode    Mode
		boost   bool
		anc     []Ancestor
		cpus    float64
		want    []Setting
		wantErr string
	}{
		{name: "v1 boost: the chain's weight outermost first, then the node's quota lifted", mode: V1, boost: true, anc: anc(0, 0),
			want: []Setting{{"/cg/borealis", "cpu.shares", "29154"}, {"/cg/borealis/cp", "cpu.shares", "29154"},
				{"/n", "cpu.shares", "29154"}, {"/n", "cpu.cfs_quota_us", "-1"}}},
		{name: "v2 boost", mode: V2, boost: true, anc: anc(3, 3),
			want: []Setting{{"/cg/borealis", "cpu.weight", "2847"}, {"/cg/borealis/cp", "cpu.weight", "2847"},
				{"/n", "cpu.weight", "2847"}, {"/n", "cpu.max", "max 100000"}}},
		{name: "v1 end, nothing else boosted: the quota first, every weight back", mode: V1, anc: anc(0, 0), cpus: 0.5,
			want: []Setting{{"/n", "cpu.cfs_quota_us", "50000"}, {"/n", "cpu.shares", "1024"},
				{"/cg/borealis/cp", "cpu.shares", "1024"}, {"/cg/borealis", "cpu.shares", "1024"}}},
		{name: "v1 end, another control plane's node boosted: the top stays raised", mode: V1, anc: anc(0, 1), cpus: 2,
			want: []Setting{{"/n", "cpu.cfs_quota_us", "200000"}, {"/n", "cpu.shares", "1024"},
				{"/cg/borealis/cp", "cpu.shares", "1024"}}},
		{name: "v2 end, a sibling node boosted: both ancestors stay raised", mode: V2, anc: anc(1, 1), cpus: 1.5,
			want: []Setting{{"/n", "cpu.max", "150000 100000"}, {"/n", "cpu.weight", "100"}}},
		{name: "unenforced", mode: None, boost: true, wantErr: ErrUnenforced.Error()},
		{name: "end with no quota to restore", mode: V1, cpus: 0, wantErr: "must be positive"},
		{name: "end with NaN", mode: V2, cpus: math.NaN(), wantErr: "must be positive"},
		{name: "end with Inf", mode: V2, cpus: math.Inf(1), wantErr: "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CPUBoostPlan(tc.mode, tc.boost, "/n", tc.anc, tc.cpus)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v\nwant %v", got, err, tc.want)
			}
		})
	}
	if _, err := CPUBoostPlan(V1, true, "", nil, 0); err == nil {
		t.Fatal("a node without a cpu directory was accepted")
	}
}

func readInt(t *testing.T, dir, file string) int {
	t.Helper()
	s, err := readTrim(dir, file)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.Fields(s)[0])
	if err != nil {
		t.Fatalf("%s/%s: %q", dir, file, s)
	}
	return n
}

// On this machine's real cgroups: a boost raises the node's weight and its two ancestors' and
// lifts its quota; ending one of two boosts keeps the shared ancestor raised; ending the last
// puts every file back; a restore the kernel refuses is an error naming the file, and the
// group stays marked boosted until a retry succeeds.
func TestRealCPUBoostRaisesAndRestores(t *testing.T) {
	c := realController(t)
	if c.Mode() != V1 && c.Mode() != V2 {
		t.Fatalf("mode %s", c.Mode())
	}
	file, boosted := c.weightFile()
	normal := defaultShares
	if c.Mode() == V2 {
		normal = defaultWeight
	}
	b, _ := strconv.Atoi(boosted)
	var groups []*Group
	for _, name := range []string{"boost-a", "boost-b"} {
		g, err := c.Group(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.EndCPUBoost(1); _ = g.Remove() })
		if err := g.SetLimits(1<<30, 0.5); err != nil {
			t.Fatal(err)
		}
		cmd := startTree(t, "sleep 60")
		if err := g.Attach(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	a, bg := groups[0], groups[1]
	scope, top := a.ancestors()[0], a.ancestors()[1]
	if scope != c.Base()[map[Mode]string{V1: "cpu", V2: "unified"}[c.Mode()]] || filepath.Base(top) != "borealis" {
		t.Fatalf("ancestors %s, %s", scope, top)
	}
	topBefore := readInt(t, top, file)
	if w, cpus, err := a.CPUWeight(); err != nil || w != normal || cpus != 0.5 {
		t.Fatalf("before the boost: weight %d, %g CPU, %v", w, cpus, err)
	}
	for _, g := range groups {
		if err := g.StartCPUBoost(); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{a.cpuDir(), bg.cpuDir(), scope, top} {
		if got := readInt(t, d, file); got != b {
			t.Fatalf("boosted: %s/%s = %d, want %d", d, file, got, b)
		}
	}
	if w, cpus, err := a.CPUWeight(); err != nil || w != b || cpus != 0 {
		t.Fatalf("boosted: weight %d, quota %g CPU (0 = none), %v", w, cpus, err)
	}
	if err := a.EndCPUBoost(0.5); err != nil {
		t.Fatal(err)
	}
	if w, cpus, err := a.CPUWeight(); err != nil || w != normal || cpus != 0.5 || a.CPUBoosted() {
		t.Fatalf("a ended: weight %d, %g CPU, %v, boosted %v", w, cpus, err, a.CPUBoosted())
	}
	if got := readInt(t, scope, file); got != b {
		t.Fatalf("a ended, b still boosted: the scope's weight is %d, want %d", got, b)
	}
	// Ending b the kernel refuses (a quota below its 1 ms minimum): an error naming the file,
	// still marked boosted, and the shared ancestors not yet restored.
	err := bg.EndCPUBoost(0.001)
	if err == nil || !strings.Contains(err.Error(), "cpu.") || !strings.Contains(err.Error(), "boost-b") || !bg.CPUBoosted() {
		t.Fatalf("a refused restore: err %v, boosted %v", err, bg.CPUBoosted())
	}
	t.Logf("refused restore reported: %v", err)
	if err := bg.EndCPUBoost(2); err != nil {
		t.Fatal(err)
	}
	if w, cpus, err := bg.CPUWeight(); err != nil || w != normal || cpus != 2 || bg.CPUBoosted() {
		t.Fatalf("b ended: weight %d, %g CPU, %v", w, cpus, err)
	}
	if got := readInt(t, scope, file); got != normal {
		t.Fatalf("both ended: the scope's weight is %d, want %d", got, normal)
	}
	// The borealis directory is shared with other control planes on this host: it goes back
	// unless one of their nodes is boosted right now.
	want := normal
	if c.boostedBelow(top, 2, "") > 0 {
		want = b
	}
	if got := readInt(t, top, file); got != want {
		t.Fatalf("both ended: borealis weight %d, want %d (it was %d before)", got, want, topBefore)
	}
	if err := bg.EndCPUBoost(2); err != nil {
		t.Fatalf("ending an ended boost: %v", err)
	}
}

// The v2 files, on a laid-out tree.
func TestV2CPUBoostFiles(t *testing.T) {
	proc, mnt := fakeTree(t, "cpu memory")
	c := Detect(Options{Proc: proc, Self: 42, Scope: "home1"})
	if c.Mode() != V2 {
		t.Fatalf("mode %s: %s", c.Mode(), c.Reason())
	}
	top := filepath.Join(mnt, "ctr", "borealis")
	scope := filepath.Join(top, "home1")
	for _, d := range []string{top, scope} {
		os.WriteFile(filepath.Join(d, "cpu.weight"), []byte("100\n"), 0o644)
	}
	var gs []*Group
	for _, n := range []string{"n1", "n2"} {
		g, err := c.Group(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.SetLimits(2<<30, 1.5); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	for _, g := range gs {
		if err := g.StartCPUBoost(); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{top, scope, gs[0].cpuDir()} {
		if s, _ := readTrim(d, "cpu.weight"); s != "2847" {
			t.Fatalf("%s cpu.weight %q", d, s)
		}
	}
	if s, _ := readTrim(gs[0].cpuDir(), "cpu.max"); s != "max 100000" {
		t.Fatalf("boosted cpu.max %q", s)
	}
	if err := gs[0].EndCPUBoost(1.5); err != nil {
		t.Fatal(err)
	}
	if s, _ := readTrim(gs[0].cpuDir(), "cpu.max"); s != "150000 100000" {
		t.Fatalf("restored cpu.max %q", s)
	}
	if s, _ := readTrim(scope, "cpu.weight"); s != "2847" {
		t.Fatalf("n2 boosted, scope cpu.weight %q", s)
	}
	if err := gs[1].EndCPUBoost(1.5); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{top, scope, gs[0].cpuDir(), gs[1].cpuDir()} {
		if s, _ := readTrim(d, "cpu.weight"); s != "100" {
			t.Fatalf("%s cpu.weight %q after both ended", d, s)
		}
	}
	// A file that cannot be written is reported, and the group stays boosted.
	g := gs[0]
	if err := g.StartCPUBoost(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(g.cpuDir(), "cpu.max"))
	os.Mkdir(filepath.Join(g.cpuDir(), "cpu.max"), 0o755) // writing a directory fails
	err := g.EndCPUBoost(1.5)
	if err == nil || !strings.Contains(err.Error(), "cpu.max") || !g.CPUBoosted() {
		t.Fatalf("unwritable cpu.max: %v, boosted %v", err, g.CPUBoosted())
	}
	var u Group
	u.c = &Controller{mode: None}
	if err := u.StartCPUBoost(); !errors.Is(err, ErrUnenforced) {
		t.Fatalf("unenforced boost: %v", err)
	}
}
