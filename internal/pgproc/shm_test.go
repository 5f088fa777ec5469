package pgproc

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A real System V segment: attached, it is counted and waited for; detached, the wait ends.
func TestWaitShmDetached(t *testing.T) {
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatalf("shmget: %v", err)
	}
	t.Cleanup(func() { _, _ = unix.SysvShmCtl(id, unix.IPC_RMID, nil) })
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		t.Fatalf("shmat: %v", err)
	}
	if got := shmAttached(id); got != 1 {
		t.Fatalf("segment %d attached by this process: shmAttached = %d, want 1", id, got)
	}
	start := time.Now()
	if waitShmDetached(id, 200*time.Millisecond) {
		t.Fatal("waitShmDetached reported an attached segment as detached")
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Fatal("waitShmDetached gave up before its limit")
	}
	if err := unix.SysvShmDetach(mem); err != nil {
		t.Fatalf("shmdt: %v", err)
	}
	if !waitShmDetached(id, 5*time.Second) {
		t.Fatalf("segment %d still counted as attached after shmdt", id)
	}
}

func TestRecordedShmID(t *testing.T) {
	dir := t.TempDir()
	if got := recordedShmID(dir); got != -1 {
		t.Fatalf("no postmaster.pid: got %d, want -1", got)
	}
	pid := "123\n/data\n1796141203\n5432\n/tmp\n127.0.0.1\n  5432001    2228224\nready   \n"
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(pid), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := recordedShmID(dir); got != 2228224 {
		t.Fatalf("recordedShmID = %d, want 2228224", got)
	}
}
