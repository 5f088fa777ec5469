package bgworker

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseCPUMax(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"150000 100000\n", 1.5, true},
		{"50000 100000", 0.5, true},
		{"max 100000\n", 0, false},
		{"", 0, false},
		{"-1 100000", 0, false},
		{"abc 100000", 0, false},
	}
	for _, c := range cases {
		got, ok := parseCPUMax(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseCPUMax(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// A fake /proc and /sys/fs/cgroup: the tightest quota on the path wins, and no quota leaves
// the affinity count.
func TestUsableCPUsFollowsCgroupQuota(t *testing.T) {
	root := t.TempDir()
	proc, cg := filepath.Join(root, "proc"), filepath.Join(root, "cgroup")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(proc, "42", "cgroup"), "0::/pods/db\n")
	write(filepath.Join(cg, "cpu.max"), "max 100000\n")
	write(filepath.Join(cg, "pods", "cpu.max"), "300000 100000\n")
	write(filepath.Join(cg, "pods", "db", "cpu.max"), "max 100000\n")
	if got := UsableCPUs(proc, cg, 42, 8); got != 3 {
		t.Fatalf("with a 3-CPU quota on the parent: %v CPUs, want 3", got)
	}
	write(filepath.Join(cg, "pods", "db", "cpu.max"), "150000 100000\n")
	if got := UsableCPUs(proc, cg, 42, 8); got != 1.5 {
		t.Fatalf("with 1.5 CPUs on the leaf: %v, want 1.5", got)
	}
	if got := UsableCPUs(proc, cg, 42, 1); got != 1 {
		t.Fatalf("affinity 1 under a 1.5 quota: %v, want 1", got)
	}
	// cgroup v1 only (no "0::" line), or no such process: the affinity count.
	write(filepath.Join(proc, "43", "cgroup"), "4:memory:/x\n")
	if got := UsableCPUs(proc, cg, 43, 8); got != 8 {
		t.Fatalf("cgroup v1: %v, want 8", got)
	}
	if got := UsableCPUs(proc, cg, 44, 2); got != 2 {
		t.Fatalf("unknown process: %v, want 2", got)
	}
}
