package cluster

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestProcState reads a real process's state as the prober does: 'T' while it is stopped
// (SIGSTOP), a scheduled state ('S' or 'R') once it is resumed, 0 once it is gone.
func TestProcState(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	wait := func(what string, ok func(byte) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for st := procState(pid); !ok(st); st = procState(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("state of pid %d: %q, want %s", pid, st, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("S or R", func(b byte) bool { return b == 'S' || b == 'R' })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	wait("T", func(b byte) bool { return b == 'T' })
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	wait("S or R", func(b byte) bool { return b == 'S' || b == 'R' })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if st := procState(pid); st != 0 {
		t.Fatalf("state of a reaped process: %q, want 0", st)
	}
	if procState(0) != 0 || procState(-1) != 0 {
		t.Fatal("state of pid 0 or -1 must be 0")
	}
}
