package pgproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/borealisdb/borealis/internal/safefile"
)

// KillGroup kills the postmaster and every process under it with SIGKILL — every backend,
// WAL sender and worker, even stopped (SIGSTOP) ones — and waits until they are gone. This is
// how a failed-over writer is fenced: a stopped postmaster's backends would otherwise go on
// committing for the sessions they already serve, and a backend frozen mid-commit could
// acknowledge it once thawed.
//
// PostgreSQL's children call setsid() (each is its own process group, so the postmaster can
// signal a child's own children), so the postmaster's process group holds the postmaster
// alone: the children are found by parent. The postmaster is stopped first so that it forks
// nothing more while they are listed, then all of them get SIGKILL.
func KillGroup(pid int) error {
	return waitTreeGone(pid, killTree(pid))
}

// killTree is KillGroup's first half: the postmaster stopped, every process under it and the
// postmaster itself sent SIGKILL. It returns the processes that were under it.
func killTree(pid int) []int {
	if pid <= 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	tree := Descendants(pid)
	for _, c := range tree {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return tree
}

// waitTreeGone is KillGroup's second half: it waits until the postmaster's group and every
// process of tree are gone.
func waitTreeGone(pid int, tree []int) error {
	if pid <= 0 {
		return nil
	}
	if !waitGroupGone(pid, 30*time.Second) {
		return fmt.Errorf("process group %d is still alive 30 s after SIGKILL", pid)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range tree {
		for liveProcess(c) {
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d of the postmaster %d is still alive 30 s after SIGKILL", c, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Descendants lists the processes under pid (children, their children, ...), from /proc.
//
// It reads each process's /proc/<pid>/task/<tid>/children (a few files, where the kernel has
// them), not every process's stat: on a machine running a few hundred processes under load,
// the full scan took a noticeable part of a failover's fencing. The kernel documents the
// children files as exact only for stopped processes; the postmaster is stopped before its
// tree is listed (killTree), and PostgreSQL's processes are all its children.
func Descendants(pid int) []int {
	if out, ok := descendantsByChildren(pid); ok {
		return out
	}
	return descendantsByScan(pid)
}

// descendantsByChildren walks the children files; false when the kernel has none.
func descendantsByChildren(pid int) ([]int, bool) {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		if err != nil {
			if p == pid {
				return nil, false
			}
			continue // gone meanwhile
		}
		for _, t := range tasks {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/children")
			if err != nil {
				if p == pid && errors.Is(err, os.ErrNotExist) {
					return nil, false
				}
				continue
			}
			for _, f := range strings.Fields(string(data)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out, true
}

// descendantsByScan builds the process tree from every process's stat.
func descendantsByScan(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:]) // state, ppid, ...
		self, err1 := strconv.Atoi(strings.TrimSpace(s[:strings.IndexByte(s, ' ')]))
		if len(fields) < 2 || err1 != nil || fields[0] == "Z" {
			continue
		}
		if pp, err := strconv.Atoi(fields[1]); err == nil {
			children[pp] = append(children[pp], self)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// liveProcess reports whether pid exists and is not a zombie.
func liveProcess(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// Fence kills the node's server and all its processes (see KillGroup), whether this process
// started it, adopted it, or only its postmaster.pid names it, and waits until they are gone.
func (n *Node) Fence() error { return n.Kill()() }

// Kill is Fence in two steps: it sends SIGKILL to the node's server and every process under
// it and returns at once, with a function that waits until they are all gone (and reports
// any that would not die). From the moment Kill returns none of those processes executes
// another instruction of its own (SIGKILL is not caught, and a stopped process is woken only
// to exit), so a failed-over writer can acknowledge nothing more, though its processes may
// still be exiting; a failover promotes a reader meanwhile and waits before announcing.
func (n *Node) Kill() (wait func() error) {
	type killed struct {
		pid  int
		tree []int
	}
	var ks []killed
	// A postmaster this Node started and already reaped is gone: its pid may be reused.
	if pid := n.PID(); pid > 0 && (n.cmd == nil || n.Running()) {
		ks = append(ks, killed{pid, killTree(pid)})
	}
	if pid, _, err := ReadPostmasterPID(n.DataDir); err == nil && processAlive(pid) {
		ks = append(ks, killed{pid, killTree(pid)})
	}
	return func() error {
		var errs []error
		for _, k := range ks {
			errs = append(errs, waitTreeGone(k.pid, k.tree))
		}
		if n.done != nil {
			select {
			case <-n.done:
			case <-time.After(10 * time.Second):
				errs = append(errs, fmt.Errorf("postmaster of %s not reaped after SIGKILL", n.DataDir))
			}
		}
		return errors.Join(errs...)
	}
}

// DataIntact reports whether dataDir still holds a usable cluster (PG_VERSION and
// global/pg_control present).
func DataIntact(dataDir string) bool {
	for _, f := range []string{"PG_VERSION", "global/pg_control"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			return false
		}
	}
	return true
}

// ControlData runs pg_controldata on dataDir and returns its fields by name.
func ControlData(ctx context.Context, dataDir string) (map[string]string, error) {
	cmd, err := Command("pg_controldata", "-D", dataDir)
	if err != nil {
		return nil, err
	}
	out, err := runCtx(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("pg_controldata %s: %w\n%s", dataDir, err, out)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return fields, nil
}

// appendServerFile appends data to a file inside a data directory (created if missing, owned
// by the server user), refusing rather than following a link planted there.
func appendServerFile(path string, data []byte) error {
	f, err := safefile.OpenAppend(path, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if cred, err := credential(); err != nil {
		return err
	} else if cred != nil {
		if err := f.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Close()
}

// MarkStandby creates standby.signal in the stopped server's data directory, so it starts as
// a standby.
func (n *Node) MarkStandby() error {
	return appendServerFile(filepath.Join(n.DataDir, "standby.signal"), nil)
}

// Rewind runs pg_rewind to make the stopped server n a copy of the running source (a libpq
// connection string) from their point of divergence. A target that was not shut down cleanly
// first goes through crash recovery in single-user mode (pg_rewind does that itself).
func (n *Node) Rewind(ctx context.Context, source string) (string, error) {
	cmd, err := Command("pg_rewind", "--target-pgdata", n.DataDir, "--source-server", source, "--progress")
	if err != nil {
		return "", err
	}
	cmd.Dir = "/"
	out, err := runCtx(ctx, cmd)
	if err != nil {
		return string(out), fmt.Errorf("pg_rewind of %s: %w\n%s", n.DataDir, err, out)
	}
	return string(out), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ReplicationConninfo is the primary_conninfo a standby uses to stream from n, naming itself
// appName (what synchronous_standby_names lists): the same path BaseBackup takes — TCP on
// 127.0.0.1, or n's private socket when TCP needs a password.
func (n *Node) ReplicationConninfo(appName string) string {
	host := "127.0.0.1"
	if n.HostAuth != "" {
		host = n.SocketDir
	}
	return fmt.Sprintf("host=%s port=%d user=postgres application_name=%s", quoteConnValue(host), n.Port, quoteConnValue(appName))
}

// quoteConnValue quotes a libpq connection-string value.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
