package bgworker

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process title can have.
	line := "4242 (postgres: a (b) c) S 17 4242 4242 0 -1 4194560 1 0 0 0 11 22 33 44 20 0 1 0 100 0 0"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != 17 || st.Ticks != 11+22+33+44 {
		t.Fatalf("parseStat = %+v, want ppid 17 and 110 ticks", st)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S notanumber 1 1 0 -1 0 0 0 0 0 1 1 1 1 20", "1 (x) S 1 1"} {
		if _, err := parseStat(bad); err == nil || !strings.Contains(err.Error(), "malformed stat line") {
			t.Errorf("parseStat(%q) error = %v, want a malformed stat line error", bad, err)
		}
	}
}

func TestParsePSS(t *testing.T) {
	data := []byte("00400000-7ffd [rollup]\nRss:               10240 kB\nPss:                2048 kB\nPss_Anon:  1 kB\n")
	if got, err := parsePSS(data); err != nil || got != 2048*1024 {
		t.Fatalf("parsePSS = %d, %v; want 2 MiB", got, err)
	}
	if _, err := parsePSS([]byte("Rss: 1 kB\n")); err == nil {
		t.Fatal("parsePSS accepted smaps_rollup without a Pss line")
	}
	if _, err := parsePSS([]byte("Pss: 1 MB\n")); err == nil {
		t.Fatal("parsePSS accepted a Pss line not in kB")
	}
}

// The test process stands in for a postmaster: its children are found, and CPU it burns
// shows up in the ticks.
func TestServerProcessesAndCPUOfThisProcess(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })

	self := os.Getpid()
	pids, err := serverProcesses("/proc", self)
	if err != nil {
		t.Fatal(err)
	}
	if pids[0] != self || !slices.Contains(pids, child.Process.Pid) {
		t.Fatalf("serverProcesses(%d) = %v, want it first and its child %d", self, pids, child.Process.Pid)
	}

	// The fallback for kernels without children files finds the same child.
	scanned, err := scanChildren("/proc", self, []int{self})
	if err != nil || !slices.Contains(scanned, child.Process.Pid) {
		t.Fatalf("scanChildren(%d) = %v, %v; want its child %d", self, scanned, err, child.Process.Pid)
	}

	before, err := cpuTicks("/proc", pids)
	if err != nil {
		t.Fatal(err)
	}
	burnCPU(t, 300*time.Millisecond)
	after, err := cpuTicks("/proc", pids)
	if err != nil {
		t.Fatal(err)
	}
	// USER_HZ is 100 on Linux; a tick of rounding at each end.
	if got := float64(after-before) / 100; got < 0.28 {
		t.Fatalf("burned 0.3 s of CPU, ticks grew by %.2f s", got)
	}

	mem, err := memoryBytes("/proc", pids)
	if err != nil || mem < 1<<20 {
		t.Fatalf("memoryBytes = %d, %v; want at least 1 MiB for a Go test process", mem, err)
	}
}

func TestSamplerReportsAverages(t *testing.T) {
	s, err := NewSampler("/proc", os.Getpid(), 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := s.Sample(t0); err != nil {
		t.Fatal(err)
	}
	burnCPU(t, 200*time.Millisecond)
	u, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUPercent1m <= 0 || u.CPUPercent1m != u.CPUPercent5m || u.MemoryBytes <= 0 || u.Processes < 1 {
		t.Fatalf("after burning CPU: %+v", u)
	}
}

// Memory is re-measured only within its time budget; CPU is sampled every time.
func TestSamplerMemoryBudget(t *testing.T) {
	s, err := NewSampler("/proc", os.Getpid(), 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	first, err := s.Sample(t0)
	if err != nil {
		t.Fatal(err)
	}
	if !first.MemoryMeasuredAt.Equal(t0) || first.MemoryBytes <= 0 {
		t.Fatalf("first sample did not measure memory: %+v", first)
	}
	s.memBudget = 1e-12 // no time for memory
	second, err := s.Sample(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !second.MemoryMeasuredAt.Equal(t0) || second.MemoryBytes != first.MemoryBytes {
		t.Fatalf("memory re-measured outside its budget: %+v", second)
	}
	s.memBudget = 1 // all the time in the world
	third, err := s.Sample(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !third.MemoryMeasuredAt.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("memory not re-measured within its budget: %+v", third)
	}
}

func TestSamplerBadInput(t *testing.T) {
	if _, err := NewSampler("/proc", 0, 100, 1); err == nil || !strings.Contains(err.Error(), "postmaster pid") {
		t.Fatalf("pid 0: %v", err)
	}
	if _, err := NewSampler("/proc", 1, 0, 1); err == nil {
		t.Fatal("clock ticks 0 accepted")
	}
	s, err := NewSampler(t.TempDir(), 12345, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(time.Now()); err == nil || !strings.Contains(err.Error(), "postmaster pid 12345 not found") {
		t.Fatalf("missing postmaster: %v", err)
	}
}

// burnCPU spins until this process has used d more CPU time (not wall time, so a loaded
// machine only makes it slower).
func burnCPU(t *testing.T, d time.Duration) {
	t.Helper()
	start := cpuTime(t)
	deadline := time.Now().Add(time.Minute)
	x := 0
	for cpuTime(t)-start < d {
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
		if time.Now().After(deadline) {
			t.Fatal("could not burn CPU within a minute")
		}
	}
	_ = x
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A child's CPU time stays in the total after it exits: the kernel adds it to the parent's
// cutime/cstime when the parent reaps it, as the postmaster reaps backends.
func TestExitedChildCPUStaysCounted(t *testing.T) {
	self := os.Getpid()
	before, err := cpuTicks("/proc", []int{self})
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sh", "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done")
	if err := child.Run(); err != nil { // Run reaps it
		t.Fatal(err)
	}
	childCPU := (child.ProcessState.UserTime() + child.ProcessState.SystemTime()).Seconds()
	after, err := cpuTicks("/proc", []int{self})
	if err != nil {
		t.Fatal(err)
	}
	if got := float64(after-before) / 100; got < childCPU-0.02 {
		t.Fatalf("the reaped child used %.2f s of CPU; the parent's total grew by only %.2f s", childCPU, got)
	}
	if childCPU < 0.05 {
		t.Fatalf("the child used only %.3f s of CPU: the loop is too short to show anything", childCPU)
	}
}
