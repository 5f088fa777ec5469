package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the not-root test run this binary as another user.
func TestMain(m *testing.M) {
	if os.Getenv("BOREALIS_CGROUP_DETECT_CHILD") == "1" {
		c := Detect(Options{Scope: "child"})
		fmt.Printf("%s\n%s\n", c.Mode(), c.Reason())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func realController(t *testing.T) *Controller {
	t.Helper()
	scope := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := Detect(Options{Scope: scope})
	if os.Geteuid() != 0 {
		if c.Enforced() {
			t.Fatalf("not root, but Detect says %s", c.Mode())
		}
		t.Fatalf("this test needs root to create cgroups (Detect: %s)", c.Reason())
	}
	if !c.Enforced() {
		t.Fatalf("root, but no usable cgroup: %s", c.Reason())
	}
	t.Cleanup(func() {
		for _, b := range c.Base() {
			os.Remove(b)
		}
	})
	return c
}

// startTree starts sh with one background child, in its own process group.
func startTree(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

func inGroup(t *testing.T, pid int, g *Group) bool {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range g.Dirs() {
		if !strings.Contains(string(data), "/"+filepath.Join("borealis", filepath.Base(filepath.Dir(d)), g.name)+"\n") {
			return false
		}
	}
	return true
}

func TestRealGroupLimitsAndTree(t *testing.T) {
	c := realController(t)
	g, err := c.Group("node-1")
	if err != nil {
		t.Fatal(err)
	}
	cmd := startTree(t, "sleep 60 & sleep 60; wait")
	// Wait until the child exists, so the tree has two levels before the move.
	var kids []int
	for i := 0; i < 250 && len(kids) < 2; i++ {
		kids = descendants("/proc", cmd.Process.Pid)
		time.Sleep(20 * time.Millisecond)
	}
	if len(kids) < 2 {
		t.Fatalf("sh did not start its children: %v", kids)
	}
	if g.holds(cmd.Process.Pid) {
		t.Fatal("holds() before the move")
	}
	if err := g.AttachTree(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append([]int{cmd.Process.Pid}, kids...) {
		if !inGroup(t, pid, g) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			t.Fatalf("pid %d is not in %v:\n%s", pid, g.Dirs(), b)
		}
		if !g.holds(pid) {
			t.Fatalf("holds(%d) false after the move", pid)
		}
	}
	if g.holds(os.Getpid()) {
		t.Fatal("holds() says the test process is in the group")
	}
	// A second move of the same tree finds everything inside and writes nothing.
	if err := g.AttachTree(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procs, err := g.Procs()
	if err != nil || len(procs) != 1+len(kids) {
		t.Fatalf("Procs() = %v, %v; want %d processes", procs, err, 1+len(kids))
	}
	if err := g.SetLimits(2<<30, 0.5); err != nil {
		t.Fatal(err)
	}
	mem, cpus, err := g.Limits()
	if err != nil || mem != 2<<30 || cpus != 0.5 {
		t.Fatalf("Limits() = %d, %g, %v; want 2 GiB, 0.5 CPU", mem, cpus, err)
	}
	// And from the files themselves.
	switch c.Mode() {
	case V1:
		if s, _ := readTrim(g.Dirs()["cpu"], "cpu.cfs_quota_us"); s != "50000" {
			t.Fatalf("cpu.cfs_quota_us = %q", s)
		}
		if s, _ := readTrim(g.Dirs()["memory"], "memory.limit_in_bytes"); s != strconv.Itoa(2<<30) {
			t.Fatalf("memory.limit_in_bytes = %q", s)
		}
	case V2:
		if s, _ := readTrim(g.Dirs()["unified"], "cpu.max"); s != "50000 100000" {
			t.Fatalf("cpu.max = %q", s)
		}
	}
	if err := g.Remove(); err == nil {
		t.Fatal("Remove succeeded with processes inside")
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := g.Procs()
		if len(p) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still in the group", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
}

// A process that goes over the memory limit is killed by the kernel inside the group, and
// the group counts it; the CPU quota holds a busy loop to its share.
func TestRealMemoryAndCPUEnforced(t *testing.T) {
	c := realController(t)
	g, err := c.Group("node-2")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	if err := g.SetLimits(32<<20, 2); err != nil {
		t.Fatal(err)
	}
	// tail holds its whole last "line" (no newline in /dev/zero) in memory: 100 MB > 32 MB.
	cmd := exec.Command("sh", "-c", "read go; head -c 100000000 /dev/zero | tail -n 1 | wc -c")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Attach(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "go")
	stdin.Close()
	_ = cmd.Wait()
	if strings.TrimSpace(out.String()) == "100000000" {
		t.Fatal("tail held 100 MB under a 32 MB limit")
	}
	kills, err := g.OOMKills()
	if err != nil || kills < 1 {
		t.Fatalf("OOMKills() = %d, %v; want at least 1", kills, err)
	}

	if err := g.SetLimits(32<<20, 0.2); err != nil {
		t.Fatal(err)
	}
	busy := exec.Command("sh", "-c", "read go; while :; do :; done")
	busy.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	bin, _ := busy.StdinPipe()
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-busy.Process.Pid, syscall.SIGKILL); _ = busy.Wait() }()
	if err := g.Attach(busy.Process.Pid); err != nil {
		t.Fatal(err)
	}
	before, err := g.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fmt.Fprintln(bin, "go")
	time.Sleep(2 * time.Second)
	used, _ := g.CPUUsage()
	elapsed := time.Since(start)
	used -= before
	// 0.2 CPU over the elapsed time, plus one period of slack.
	if used <= 0 || used > time.Duration(0.2*float64(elapsed))+100*time.Millisecond {
		t.Fatalf("a busy loop used %v of CPU in %v under a 0.2 CPU quota", used, elapsed)
	}
	t.Logf("busy loop: %v CPU in %v under a 0.2 CPU quota; OOM kills %d", used, elapsed, kills)
}

// Not root: Detect says unenforced and why, and Group methods refuse.
func TestNotRootIsUnenforced(t *testing.T) {
	if os.Geteuid() != 0 {
		c := Detect(Options{Scope: "notroot"})
		if c.Enforced() || c.Reason() == "" {
			t.Fatalf("not root: mode %s, reason %q", c.Mode(), c.Reason())
		}
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("need the postgres user to run as non-root: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	exe, _ := os.Executable()
	// The test binary must be reachable by that user.
	dir, err := os.MkdirTemp("", "borealis-cgroup-test")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "cgroup.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "BOREALIS_CGROUP_DETECT_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.SplitN(string(out), "\n", 2)
	if lines[0] != string(None) || !strings.Contains(lines[1], "root") {
		t.Fatalf("as postgres: %s", out)
	}
	t.Logf("as postgres: %s", strings.TrimSpace(string(out)))
	var g Group
	g.c = &Controller{mode: None}
	if err := g.SetLimits(1<<30, 1); err != ErrUnenforced {
		t.Fatalf("SetLimits unenforced: %v", err)
	}
}

// fakeTree lays out /proc and a cgroup2 mount in a temp dir.
func fakeTree(t *testing.T, controllers string) (proc, mnt string) {
	t.Helper()
	root := t.TempDir()
	proc, mnt = filepath.Join(root, "proc"), filepath.Join(root, "cg")
	own := filepath.Join(mnt, "ctr")
	for _, d := range []string{filepath.Join(proc, "self"), filepath.Join(proc, "42"), own} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte(
		"30 22 0:27 / /sys rw - sysfs sysfs rw\n40 30 0:37 / "+mnt+" rw,relatime - cgroup2 cgroup2 rw\n"), 0o644)
	os.WriteFile(filepath.Join(proc, "42", "cgroup"), []byte("0::/ctr\n"), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.controllers"), []byte(controllers+"\n"), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.subtree_control"), nil, 0o644)
	return proc, mnt
}

// The v2 paths, on a laid-out tree (this machine's kernel is v1 for memory and cpu).
func TestV2Files(t *testing.T) {
	proc, mnt := fakeTree(t, "cpuset cpu io memory pids")
	c := Detect(Options{Proc: proc, Self: 42, Scope: "home1"})
	if c.Mode() != V2 {
		t.Fatalf("mode %s: %s", c.Mode(), c.Reason())
	}
	if got := c.Base()["unified"]; got != filepath.Join(mnt, "ctr", "borealis", "home1") {
		t.Fatalf("base %s", got)
	}
	if s, _ := readTrim(filepath.Join(mnt, "ctr"), "cgroup.subtree_control"); s != "+memory +cpu" {
		t.Fatalf("subtree_control %q", s)
	}
	g, err := c.Group("c-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetLimits(3<<30, 1.5); err != nil {
		t.Fatal(err)
	}
	if s, _ := readTrim(g.Dirs()["unified"], "cpu.max"); s != "150000 100000" {
		t.Fatalf("cpu.max %q", s)
	}
	mem, cpus, err := g.Limits()
	if err != nil || mem != 3<<30 || cpus != 1.5 {
		t.Fatalf("Limits %d %g %v", mem, cpus, err)
	}
	os.WriteFile(filepath.Join(g.Dirs()["unified"], "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n"), 0o644)
	if n, err := g.OOMKills(); n != 2 || err != nil {
		t.Fatalf("OOMKills %d %v", n, err)
	}
	os.WriteFile(filepath.Join(g.Dirs()["unified"], "cpu.stat"), []byte("usage_usec 1500000\nuser_usec 1\n"), 0o644)
	if d, err := g.CPUUsage(); d != 1500*time.Millisecond || err != nil {
		t.Fatalf("CPUUsage %v %v", d, err)
	}
	if _, err := c.Group("../x"); err == nil {
		t.Fatal("a name with a slash was accepted")
	}
	if err := g.SetLimits(0, 1); err == nil {
		t.Fatal("zero memory accepted")
	}
}

func TestNoControllers(t *testing.T) {
	proc, _ := fakeTree(t, "pids io")
	c := Detect(Options{Proc: proc, Self: 42})
	if c.Enforced() || !strings.Contains(c.Reason(), "not both memory and cpu") {
		t.Fatalf("mode %s, reason %q", c.Mode(), c.Reason())
	}
	c = Detect(Options{Proc: t.TempDir()})
	if c.Enforced() || !strings.Contains(c.Reason(), "mount table") {
		t.Fatalf("no /proc: mode %s, reason %q", c.Mode(), c.Reason())
	}
}

// A read-only cgroup filesystem (Docker's, for an unprivileged container) is not fixed by root:
// the hint says what it is; other failures to create a node cgroup still ask for root.
func TestCreateHint(t *testing.T) {
	ro := createHint(&os.PathError{Op: "mkdir", Path: "/sys/fs/cgroup/memory/borealis", Err: syscall.EROFS})
	if !strings.Contains(ro, "read-only, as in an unprivileged container") || strings.Contains(ro, "as root") {
		t.Fatalf("EROFS: %q", ro)
	}
	if h := createHint(&os.PathError{Op: "mkdir", Path: "/x", Err: syscall.EACCES}); !strings.Contains(h, "as root") {
		t.Fatalf("EACCES: %q", h)
	}
}
