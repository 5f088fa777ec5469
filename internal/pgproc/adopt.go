package pgproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/borealisdb/borealis/internal/safefile"
)

// ErrNotRunning is returned by Adopt when no live postmaster owns the data directory.
var ErrNotRunning = errors.New("no running postmaster")

// Adopt attaches to a postmaster already running on cfg.DataDir (started by an earlier process,
// e.g. a control plane that was restarted), found through postmaster.pid and checked to be alive.
// The returned Node supports Running, Exited, PID, Stop and Kill9 like one this process started;
// because the postmaster is not our child, its exit is noticed by polling.
func Adopt(cfg Config) (*Node, error) {
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	pid, port, err := ReadPostmasterPID(n.DataDir)
	if err != nil {
		return nil, err
	}
	if !processAlive(pid) {
		return nil, fmt.Errorf("%w on %s (stale postmaster.pid names pid %d)", ErrNotRunning, n.DataDir, pid)
	}
	if port != 0 && n.Port != port {
		return nil, fmt.Errorf("postmaster %d on %s listens on port %d, not the expected %d", pid, n.DataDir, port, n.Port)
	}
	n.adoptedPID = pid
	n.done = make(chan struct{})
	go func() {
		for processAlive(pid) {
			time.Sleep(200 * time.Millisecond)
		}
		n.err = fmt.Errorf("adopted postmaster %d exited", pid)
		close(n.done)
	}()
	return n, nil
}

// ReadPostmasterPID returns the pid and port recorded in dataDir/postmaster.pid.
func ReadPostmasterPID(dataDir string) (pid, port int, err error) {
	// The caller may be root and the file is in the server user's directory: no links, no FIFOs.
	f, err := safefile.Open(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, fmt.Errorf("%w on %s (no postmaster.pid)", ErrNotRunning, dataDir)
		}
		return 0, 0, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(lines) < 4 {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 1 {
		return 0, 0, fmt.Errorf("%w on %s (empty postmaster.pid)", ErrNotRunning, dataDir)
	}
	pid, err = strconv.Atoi(lines[0])
	if err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("malformed postmaster.pid in %s: %q", dataDir, lines[0])
	}
	if len(lines) >= 4 {
		port, _ = strconv.Atoi(lines[3])
	}
	return pid, port, nil
}

// processAlive reports whether pid is a live (not zombie) postgres process. The name check
// guards against a recycled pid; the state check against an unreaped orphan.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...
	s := string(stat)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open || close+2 >= len(s) {
		return false
	}
	comm, state := s[open+1:close], s[close+2]
	return (comm == "postgres" || comm == "postmaster") && state != 'Z' && state != 'X'
}

// signal sends sig to the postmaster, whether this process started it or adopted it.
func (n *Node) signal(sig syscall.Signal) error {
	if n.cmd != nil && n.cmd.Process != nil {
		return n.cmd.Process.Signal(sig)
	}
	if n.adoptedPID > 0 {
		return syscall.Kill(n.adoptedPID, sig)
	}
	return fmt.Errorf("postgres for %s was not started or adopted here", n.DataDir)
}

// waitExited waits for the postmaster to exit or ctx to end.
func (n *Node) waitExited(ctx context.Context) error {
	select {
	case <-n.Exited():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
