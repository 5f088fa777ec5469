package pgproc

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunCtxCancelKillsChildren: cancelling a command run by runCtx ends its children too,
// and runCtx returns at once. A shell's background sleep stands in for pg_basebackup's WAL
// streamer: with only the command killed, the sleep kept the output pipe open and runCtx
// waited for it (300 s here; a cancelled clone's streamer held its slot for over 12 minutes).
func TestRunCtxCancelKillsChildren(t *testing.T) {
	cmd, err := serverUserCommand("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	out, err := runCtx(ctx, cmd)
	if err == nil {
		t.Fatalf("runCtx returned no error for a cancelled command (output %q)", out)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("runCtx took %v after its context ended: a child kept it waiting", took)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("the shell printed %q, not its child's pid", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			break // gone (reaped by init)
		}
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(b), ") Z ") {
			break // a zombie: dead, waiting for init to reap it
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command's child %d (sleep 300) outlived the cancel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
