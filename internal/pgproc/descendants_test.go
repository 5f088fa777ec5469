package pgproc

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestDescendantsChildrenFilesMatchScan: the children-file walk finds the same tree as the
// full /proc scan (a shell with two children, one of which has a child of its own).
func TestDescendantsChildrenFilesMatchScan(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 60 & sh -c 'sleep 60 & wait' & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, as a postmaster's
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = KillGroup(cmd.Process.Pid); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	var byChildren, byScan []int
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		byChildren, ok = descendantsByChildren(pid)
		if !ok {
			t.Fatal("this kernel has /proc/<pid>/task/<tid>/children; the walk must use it")
		}
		byScan = descendantsByScan(pid)
		slices.Sort(byChildren)
		slices.Sort(byScan)
		if len(byScan) == 3 && slices.Equal(byChildren, byScan) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children files %v, scan %v: want the same 3 processes", byChildren, byScan)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := Descendants(pid); len(got) != 3 {
		t.Fatalf("Descendants = %v", got)
	}
}
