package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestUntilStalled: work that keeps changing its directory (a file added, grown, or only
// rewritten) is not stopped however long it runs; a directory left alone for the stall is,
// with a cause that names it; and the parent's end ends it.
func TestUntilStalled(t *testing.T) {
	const stall, every = 3 * time.Second, 50 * time.Millisecond // generous: a starved test must not look stalled
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := untilStalled(context.Background(), dir, stall, every)
	defer cancel()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "wal")
	start, lastChange := time.Now(), time.Now()
	for i := 0; time.Since(start) < 2*stall; i++ {
		// Before the write: the watcher can see the change before this goroutine runs again.
		lastChange = time.Now()
		var err error
		switch i % 3 {
		case 0:
			err = os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), nil, 0o600) // a new file
		case 1:
			err = os.WriteFile(f, make([]byte, i), 0o600) // a file that grows
		case 2:
			later := time.Now().Add(time.Duration(i) * time.Second)
			err = os.Chtimes(f, later, later) // same size, rewritten
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(stall / 30)
		if ctx.Err() != nil {
			t.Fatalf("stopped after %s although the directory changed every %s: %v", time.Since(start), stall/30, context.Cause(ctx))
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(stall + 10*time.Second):
		t.Fatalf("not stopped %s after the directory stopped changing (stall %s)", time.Since(lastChange), stall)
	}
	if waited := time.Since(lastChange); waited < stall {
		t.Fatalf("stopped %s after the last change, before the stall (%s)", waited, stall)
	}
	err := stallErr(ctx, context.Canceled)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "no progress in "+dir) {
		t.Fatalf("stall error %q: should wrap the error and name the directory", err)
	}
	if err := stallErr(ctx, nil); err != nil {
		t.Fatalf("stallErr of no error: %v", err)
	}

	parent, end := context.WithCancel(context.Background())
	ctx, cancel = untilStalled(parent, t.TempDir(), time.Hour, every)
	defer cancel()
	end()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the parent's end did not end the stall context")
	}
	if err := stallErr(ctx, context.Canceled); err.Error() != context.Canceled.Error() {
		t.Fatalf("a parent's cancel reported as %q", err)
	}
}

// TestCreateRetryKeepsInitializedWriter: the new writer's first start fails (its socket's
// lock file is held by another live process, made right after Create returns, while initdb
// runs) and the retry starts the data directory initdb made instead of wiping it and running
// initdb again; the cluster then comes up with its master user. (It took the writer's TCP port
// until 0dc7db9, since when a node whose port is taken moves to a free one and starts at once.)
func TestCreateRetryKeepsInitializedWriter(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManager(t, newHome(t))
	seq := lastSeq(t, m)
	d, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "keep", Readers: 0})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := m.mustCluster(t, "keep").writerRec()
	// PostgreSQL refuses to start while its Unix socket's lock file names a live process of
	// its own user other than itself or its parents ("lock file ... already exists"; another
	// user's pid, which it cannot signal, it takes for a stale file). The directory is made,
	// with its owner, as the creation begins, before initdb.
	var dir os.FileInfo
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if dir, err = os.Stat(SocketDir(rec)); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the writer's socket directory: %v", err)
		}
	}
	holder := exec.Command("sleep", "600")
	if st := dir.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() {
		holder.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: st.Uid, Gid: st.Gid}}
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	lock := filepath.Join(SocketDir(rec), fmt.Sprintf(".s.PGSQL.%d.lock", d.DBClusterMembers[0].Port))
	if err := os.WriteFile(lock, []byte(strconv.Itoa(holder.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatalf("holding the writer's socket lock before its first start: %v", err)
	}
	waitFor(t, "the writer's first start to fail on its held socket lock", 3*time.Minute, func() bool {
		return eventAfter(t, m, "keep", "member.start-failed", seq) != nil
	})
	if e := eventAfter(t, m, "keep", "member.start-failed", seq); !strings.Contains(e.Message, "already exists") {
		t.Fatalf("the start failed for another reason than the held lock: %s", e.Message)
	}
	ino := func() uint64 {
		st, err := os.Stat(filepath.Join(rec.DataDir, "PG_VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	before := ino()
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := m.WaitAvailable(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	if eventAfter(t, m, "keep", "member.create-resumed", seq) == nil {
		t.Fatal("no member.create-resumed: the retry did not keep the initialized directory")
	}
	if after := ino(); after != before {
		t.Fatalf("PG_VERSION inode %d -> %d: the retry ran initdb again", before, after)
	}
	if _, err := os.Stat(madeMark(rec)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the made mark outlived the creation: %v", err)
	}
	c := connectTo(t, m.mustDescribe(t, "keep").Endpoint)
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the master user through the endpoint: %v", err)
	}
}
