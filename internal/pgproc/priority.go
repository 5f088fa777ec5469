package pgproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// boost gives a just-launched postmaster (a session leader, see Start) the nice value nice:
// its session's autogroup, which is what the scheduler weighs against other sessions, and its
// own thread, which the processes it forks inherit. Every process the postmaster forks makes
// itself a session leader too (PostgreSQL's InitPostmasterChild calls setsid), so each gets
// an autogroup of its own at nice 0; boostChildren raises those until RestoreNice.
func (n *Node) boost(pid, nice int) error {
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice); err != nil {
		return err
	}
	if err := setAutogroupNice(pid, nice); err != nil {
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, n.baseNice) // no half boost
		return err
	}
	n.boostStop, n.boostDone = make(chan struct{}), make(chan struct{})
	go boostChildren(pid, nice, n.boostStop, n.boostDone)
	return nil
}

// boostChildren raises the autogroup of each new child of postmaster pid, once the child has
// made itself a session leader, until stop is closed or the postmaster is gone. It reads the
// kernel's list of the postmaster's children every 2 ms: a backend gets the boost within
// milliseconds of its fork, before its authentication and first query.
func boostChildren(pid, nice int, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	list := filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children")
	raised := map[int]bool{}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		b, err := os.ReadFile(list)
		if err != nil {
			return // the postmaster is gone (or the kernel has no children lists)
		}
		for _, f := range strings.Fields(string(b)) {
			child, err := strconv.Atoi(f)
			if err != nil || raised[child] {
				continue
			}
			if sessionLeader(child) {
				raised[child] = true
				_ = setAutogroupNice(child, nice)
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// sessionLeader reports whether process pid leads its own session (has called setsid).
func sessionLeader(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:]) // state, ppid, pgrp, session, ...
	return len(f) > 3 && f[3] == strconv.Itoa(pid)
}

// setAutogroupNice sets the nice value of the scheduler autogroup of pid's session. A kernel
// without autogroups (no /proc/PID/autogroup) or with them turned off has nothing to set.
func setAutogroupNice(pid, nice int) error {
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err != nil || len(b) == 0 || b[0] == '0' {
		return nil
	}
	path := filepath.Join("/proc", strconv.Itoa(pid), "autogroup")
	if err := os.WriteFile(path, []byte(strconv.Itoa(nice)), 0); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// RestoreNice ends a StartNice boost: every thread of the postmaster and of each process it
// has forked goes back to the caller's nice value at Start, and processes forked later
// inherit that; the server's session keeps an autogroup of its own at nice 0, the weight of
// any other session (as a server started by pg_ctl has). It is a no-op when the start was
// not boosted, and returns how many processes it changed.
func (n *Node) RestoreNice() int {
	if !n.Boosted {
		return 0
	}
	n.Boosted = false
	if n.boostStop != nil {
		close(n.boostStop)
		<-n.boostDone
		n.boostStop, n.boostDone = nil, nil
	}
	pid := n.PID()
	if pid == 0 || !n.Running() {
		return 0
	}
	changed := 0
	// The postmaster first: a backend it forks while the others are changed gets the new value.
	for _, p := range append([]int{pid}, Descendants(pid)...) {
		_ = setAutogroupNice(p, 0) // each child leads its own session (see boost)
		if setThreadsNice(p, n.baseNice) {
			changed++
		}
	}
	return changed
}

// setThreadsNice sets the nice value of every thread of process pid (on Linux a nice value
// belongs to a thread, and a backend that loaded the Go engine has several).
func setThreadsNice(pid, nice int) bool {
	tids, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "[0-9]*"))
	if len(tids) == 0 {
		return syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice) == nil
	}
	ok := false
	for _, t := range tids {
		if tid, err := strconv.Atoi(filepath.Base(t)); err == nil && syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice) == nil {
			ok = true
		}
	}
	return ok
}

// Nice is the nice value of process (or thread) pid; 0 means the calling thread.
func Nice(pid int) (int, error) {
	// The raw getpriority system call returns 20 - nice on Linux.
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, pid)
	if err != nil {
		return 0, err
	}
	return 20 - p, nil
}
