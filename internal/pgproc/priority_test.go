package pgproc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// autogroupNice reads the nice value of pid's scheduler autogroup ("/autogroup-N nice V"); ok
// is false when the kernel has no autogroups or they are turned off
// (kernel.sched_autogroup_enabled=0, where the scheduler ignores them and the boost leaves
// them alone: the per-process nice values are what count then).
func autogroupNice(t *testing.T, pid int) (int, bool) {
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "autogroup"))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	v, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		t.Fatalf("autogroup of %d: %q", pid, b)
	}
	return v, true
}

// TestStartNiceBoostsAndRestores starts a real server with StartNice (as root, as CI runs;
// unprivileged, it checks the fallback instead): the postmaster leads
// its own session, it and the processes it forks run at the raised priority, as does its
// autogroup; RestoreNice puts all of them back at the caller's nice value (the autogroup at
// 0), and a backend forked later inherits it.
func TestStartNiceBoostsAndRestores(t *testing.T) {
	root := testRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base, err := Nice(0) // 19 under `nice -n 19 go test`
	if err != nil {
		t.Fatal(err)
	}
	// OnLaunch sees the postmaster before it has forked anything (the cluster puts it in its
	// cgroup there).
	launched, kidsAtLaunch := 0, -1
	n, err := New(Config{DataDir: filepath.Join(root, "data"), StartNice: -5, DieWithParent: true,
		OnLaunch: func(pid int) { launched, kidsAtLaunch = pid, len(Descendants(pid)) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	if launched != n.PID() || kidsAtLaunch != 0 {
		t.Fatalf("OnLaunch got pid %d with %d children; want the postmaster %d with none", launched, kidsAtLaunch, n.PID())
	}
	if os.Geteuid() != 0 {
		// Without CAP_SYS_NICE the start still succeeds, at the caller's priority, and says why.
		if n.Boosted || n.BoostErr == nil {
			t.Fatalf("unprivileged start: Boosted %v, BoostErr %v; want false and the reason", n.Boosted, n.BoostErr)
		}
		if v, err := Nice(n.PID()); err != nil || v != base {
			t.Fatalf("unprivileged start: postmaster at nice %d (%v), want the caller's %d", v, err, base)
		}
		return
	}
	if !n.Boosted || n.BoostErr != nil {
		t.Fatalf("Boosted %v, BoostErr %v", n.Boosted, n.BoostErr)
	}
	pid := n.PID()
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// After the command's closing parenthesis: state, ppid, pgrp, session.
	if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); f[3] != strconv.Itoa(pid) {
		t.Fatalf("postmaster %d is in session %s, want its own", pid, f[3])
	}
	kids := Descendants(pid)
	if len(kids) == 0 {
		t.Fatal("no processes under the postmaster")
	}
	for _, p := range append([]int{pid}, kids...) {
		if v, err := Nice(p); err == nil && v != -5 {
			t.Fatalf("process %d at nice %d during the boost, want -5", p, v)
		}
	}
	// Each child leads its own session (PostgreSQL calls setsid in every child), so each has
	// an autogroup of its own, which the boost raises too, a few milliseconds after its fork.
	for _, p := range append([]int{pid}, kids...) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, ok := autogroupNice(t, p)
			if !ok || v == -5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("process %d's autogroup at nice %d during the boost, want -5", p, v)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	if got := n.RestoreNice(); got < 2 {
		t.Fatalf("RestoreNice changed %d processes, want the postmaster and its children", got)
	}
	for _, p := range append([]int{pid}, Descendants(pid)...) {
		tids, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(p), "task", "[0-9]*"))
		for _, tp := range tids {
			tid, _ := strconv.Atoi(filepath.Base(tp))
			if v, err := Nice(tid); err == nil && v != base {
				t.Fatalf("thread %d of process %d at nice %d after RestoreNice, want %d", tid, p, v, base)
			}
		}
	}
	for _, p := range append([]int{pid}, Descendants(pid)...) {
		if v, ok := autogroupNice(t, p); ok && v != 0 {
			t.Fatalf("process %d's autogroup at nice %d after RestoreNice, want 0", p, v)
		}
	}
	if n.RestoreNice() != 0 {
		t.Fatal("a second RestoreNice changed processes")
	}
	conn, err := pgx.Connect(ctx, n.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	if v, err := Nice(backend); err != nil || v != base {
		t.Fatalf("a backend forked after RestoreNice at nice %d (%v), want %d", v, err, base)
	}
	if v, ok := autogroupNice(t, backend); ok && v != 0 {
		t.Fatalf("a backend forked after RestoreNice has its autogroup at nice %d, want 0", v)
	}
}
