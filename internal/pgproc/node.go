package pgproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/safefile"
)

// Config describes one PostgreSQL server.
type Config struct {
	// DataDir is the cluster directory. Its parent must exist.
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// SocketDir holds the Unix socket; empty means DataDir's parent.
	SocketDir string
	// LogFile receives the server's stderr; empty means DataDir + ".log".
	LogFile string
	// Settings are written to postgresql.conf at Init (and to a standby's at BaseBackup).
	Settings map[string]string
	// DirMode is the mode of DataDir's parent (and SocketDir), which the server user owns;
	// 0 means 0755. A control plane keeps its nodes' directories private (0700).
	DirMode os.FileMode
	// HostAuth is the pg_hba method for TCP connections made at Init ("" means trust, as
	// tests want). When set, Unix-socket connections stay trusted — the socket directory is
	// the private path of whoever runs the server — and DSN, WaitReady and BaseBackup use it.
	HostAuth string
	// StartNice, when below 0, is the CPU priority (nice value) the server gets right after the
	// postmaster is launched, for its own session's scheduler autogroup and for the
	// postmaster, whose children inherit it, until RestoreNice. A start that clients wait for
	// (a resume) uses it so that its CPU is not shared out evenly with everything else on a
	// busy machine. It needs CAP_SYS_NICE (root); without it the start runs at the caller's
	// priority and BoostErr says why.
	StartNice int
	// OnLaunch, when set, is called with the postmaster's pid right after it is launched,
	// before it has forked anything: a caller that puts the server in a cgroup does it here,
	// so that every child is born inside and nothing has to be moved (with its memory
	// charges) once the server is ready. It must be quick.
	OnLaunch func(pid int)
	// DieWithParent asks the kernel to stop the server (SIGQUIT) when the calling thread dies.
	// Tests want it; a control plane that must adopt running servers after a restart does not.
	DieWithParent bool
}

// Node is one PostgreSQL server process (the postmaster).
type Node struct {
	Config
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// adoptedPID is the postmaster's pid when Adopt attached to a server started elsewhere.
	adoptedPID int
	// Launched is when Start forked the postmaster, Ready when WaitReady last saw it accept
	// connections: the start-up's own time, for the phase breakdown of a resume.
	Launched, Ready time.Time
	// Boosted is true while the postmaster runs at StartNice; BoostErr is why it could not.
	Boosted  bool
	BoostErr error
	// baseNice is the caller's nice value at Start, which RestoreNice returns the threads to.
	baseNice int
	// boostStop ends the boost's watch of new children; boostDone is closed when it has.
	boostStop, boostDone chan struct{}
	// logOffset is the size of LogFile when Start launched the postmaster: this start's lines
	// follow it (startLog).
	logOffset int64
}

// New returns a Node for cfg, filling defaults. It starts nothing.
func New(cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("pgproc: Config.DataDir is required")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	if cfg.Port == 0 {
		if cfg.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if cfg.SocketDir == "" {
		cfg.SocketDir = filepath.Dir(cfg.DataDir)
	}
	if cfg.LogFile == "" {
		cfg.LogFile = cfg.DataDir + ".log"
	}
	if cfg.DirMode == 0 {
		cfg.DirMode = 0o755
	}
	return &Node{Config: cfg}, nil
}

// Init runs initdb (trust authentication for local connections; the dev and test clusters
// are reachable from this machine only) and appends Settings to postgresql.conf.
func (n *Node) Init(ctx context.Context) error {
	if err := PrepareDir(filepath.Dir(n.DataDir), n.DirMode); err != nil {
		return err
	}
	cmd, err := Command("initdb", append([]string{"-D", n.DataDir}, InitdbFlags(n.HostAuth)...)...)
	if err != nil {
		return err
	}
	if out, err := runCtx(ctx, cmd); err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", n.DataDir, err, out)
	}
	return n.configure()
}

// InitdbFlags are Init's initdb arguments besides the data directory, for a node with hostAuth
// (Config.HostAuth): a cache of initdb's output (InitFrom's template) is keyed by them.
func InitdbFlags(hostAuth string) []string {
	auth := []string{"-A", "trust"}
	if hostAuth != "" {
		auth = []string{"--auth-local=trust", "--auth-host=" + hostAuth}
	}
	return append(append([]string{"-U", "postgres"}, auth...), "--no-instructions", "-E", "UTF8", "--locale=C.UTF-8")
}

// InitFrom makes DataDir a copy of template, a data directory that Init made for a node with
// the same HostAuth and that no server runs on, then writes what Init writes: the same result
// as Init without running initdb again (test harnesses start many servers; a copy costs a
// fraction of an initdb). The copy shares template's database system identifier.
func (n *Node) InitFrom(ctx context.Context, template string) error {
	if err := PrepareDir(filepath.Dir(n.DataDir), n.DirMode); err != nil {
		return err
	}
	if _, err := os.Stat(n.DataDir); err == nil {
		return fmt.Errorf("copying %s into %s: the data directory already exists", template, n.DataDir)
	}
	cmd, err := serverUserCommand("/bin/cp", "-a", "--", template, n.DataDir)
	if err != nil {
		return err
	}
	if out, err := runCtx(ctx, cmd); err != nil {
		return fmt.Errorf("copying the data directory %s into %s: %w\n%s", template, n.DataDir, err, out)
	}
	return n.configure()
}

// configure appends Init's settings to postgresql.conf: the node's address and socket, fsync,
// and Settings.
func (n *Node) configure() error {
	settings := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": quote(n.SocketDir),
		"fsync":                   "on",
	}
	for k, v := range n.Settings {
		settings[k] = v
	}
	return n.AppendSettings(settings)
}

// AppendSettings adds lines to postgresql.conf; later lines win, so this also overrides.
func (n *Node) AppendSettings(settings map[string]string) error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# set by borealis\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	// The data directory belongs to the server user: never follow a link planted there.
	f, err := safefile.OpenAppend(filepath.Join(n.DataDir, "postgresql.conf"), 0o600)
	if err != nil {
		return fmt.Errorf("opening postgresql.conf: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return err
}

// quote makes a postgresql.conf string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Quote is quote for callers that build Settings.
func Quote(s string) string { return quote(s) }

// Start launches the postmaster and waits until it accepts connections or ctx ends.
func (n *Node) Start(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("pgproc: server on port %d is already running", n.Port)
	}
	if err := PrepareDir(n.SocketDir, n.DirMode); err != nil {
		return err
	}
	logf, err := openLog(n.LogFile)
	if err != nil {
		return err
	}
	cmd, err := Command("postgres", "-D", n.DataDir, "-p", strconv.Itoa(n.Port), "-k", n.SocketDir)
	if err != nil {
		logf.Close()
		return err
	}
	if n.StartNice < 0 {
		// A boosted server leads its own session, as pg_ctl starts one: the scheduler's
		// autogroups (sched_autogroup_enabled, on by default) weigh sessions against each
		// other whatever their processes' nice values, so only a session of its own can be
		// raised without raising its caller. Otherwise it stays in its caller's session and
		// CPU share (a `nice`d test keeps its servers niced).
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid = true
	}
	if n.DieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if fi, err := logf.Stat(); err == nil {
		n.logOffset = fi.Size()
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting postgres for %s: %w", n.DataDir, err)
	}
	n.cmd = cmd
	n.Launched = time.Now()
	n.adoptedPID = 0
	n.Boosted, n.BoostErr = false, nil
	n.baseNice, _ = Nice(0)
	if n.OnLaunch != nil {
		n.OnLaunch(cmd.Process.Pid)
	}
	if n.StartNice < 0 {
		// The postmaster has only just exec'd: everything it forks from here on inherits this.
		if err := n.boost(cmd.Process.Pid, n.StartNice); err != nil {
			n.BoostErr = fmt.Errorf("raising the start-up's CPU priority to nice %d: %w", n.StartNice, err)
		} else {
			n.Boosted = true
		}
	}
	n.done = make(chan struct{})
	go func() {
		n.err = cmd.Wait()
		logf.Close()
		close(n.done)
	}()
	return n.WaitReady(ctx)
}

// openLog opens the server log for appending, readable by the caller and writable by the
// server user. It lives in a directory the server user can write, so a link planted there is
// refused rather than followed (the caller may be root).
func openLog(path string) (*os.File, error) {
	f, err := safefile.OpenAppend(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening server log %s: %w", path, err)
	}
	return f, nil
}

// WaitReady waits until the server accepts connections, exits, or ctx ends.
//
// It watches the status line of postmaster.pid, which the postmaster sets to "ready" once it
// accepts connections (a primary out of recovery, a hot standby once consistent), as `pg_ctl
// -w` does, but every 5 ms instead of pg_ctl's 100 ms, and without forking a backend per try.
// Where the file cannot be read (or names another process), it falls back to connecting, at
// most every 100 ms.
func (n *Node) WaitReady(ctx context.Context) error {
	var err error
	lastConnect := time.Time{}
	for {
		ready, ferr := n.pidFileReady()
		if ready {
			n.Ready = time.Now()
			return nil
		}
		if ferr != nil && time.Since(lastConnect) >= 100*time.Millisecond {
			lastConnect = time.Now()
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			conn, cerr := pgx.Connect(pctx, n.DSN("postgres"))
			cancel()
			if cerr == nil {
				conn.Close(ctx)
				n.Ready = time.Now()
				return nil
			}
			err = cerr
		} else if ferr == nil {
			err = errors.New("postmaster.pid does not say ready yet")
		}
		select {
		case <-n.Exited():
			return n.startFailure(true, "")
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", n.startFailure(false, fmt.Sprintf("%v (last error: %v)", ctx.Err(), err)), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// pidFileReady reports whether postmaster.pid names this node's postmaster with status
// "ready". An error means the file cannot tell (unreadable, or written by another process,
// say a stale file from before a crash that the new postmaster has not replaced yet, which
// is not an error worth a connect: that only happens in the first moments).
func (n *Node) pidFileReady() (bool, error) {
	f, err := safefile.Open(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // not written yet
		}
		return false, err
	}
	defer f.Close()
	var buf [1024]byte
	k, _ := io.ReadFull(f, buf[:])
	lines := strings.Split(string(buf[:k]), "\n")
	if len(lines) < 8 {
		return false, nil // the postmaster writes the status line last
	}
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return false, nil
	}
	if want := n.PID(); want != 0 && pid != want {
		return false, nil
	}
	if want := n.PID(); want == 0 {
		return false, errors.New("no postmaster pid to compare postmaster.pid with")
	}
	return strings.TrimSpace(lines[7]) == "ready", nil
}

// Exited is closed when the postmaster started by this Node has exited.
func (n *Node) Exited() <-chan struct{} {
	if n.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return n.done
}

// ExitErr is the postmaster's exit status once Exited is closed.
func (n *Node) ExitErr() error { return n.err }

// Running reports whether the postmaster started by this Node is still alive.
func (n *Node) Running() bool {
	select {
	case <-n.Exited():
		return false
	default:
		return true
	}
}

// PID is the postmaster's process id, or 0 when this Node did not start one.
func (n *Node) PID() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return n.adoptedPID
	}
	return n.cmd.Process.Pid
}

// Stop shuts the server down with a fast shutdown (SIGINT), then SIGKILL if it is still up
// when ctx ends.
func (n *Node) Stop(ctx context.Context) error {
	if !n.Running() {
		return nil
	}
	_ = n.signal(syscall.SIGINT)
	if n.waitExited(ctx) == nil {
		return nil
	}
	_ = n.signal(syscall.SIGKILL)
	<-n.Exited()
	return fmt.Errorf("postgres for %s did not stop in time and was killed", n.DataDir)
}

// Kill9 kills the postmaster with SIGKILL, as a crash would, and waits for it to be gone.
// Its backends notice the postmaster's death and exit on their own.
//
// It returns once the postmaster's children are gone too: they exit when they notice the
// postmaster died, and until they have, a restart fails with "pre-existing shared memory
// block is still in use". A child still there after 30 s is killed as well. Then it waits for
// the server's shared memory segment to lose its last attachment (shm.go says why).
func (n *Node) Kill9() error {
	if !n.Running() {
		return fmt.Errorf("postgres for %s is not running", n.DataDir)
	}
	group := n.PID()
	if group == 0 {
		group = n.adoptedPID
	}
	shm := recordedShmID(n.DataDir)
	if err := n.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-n.Exited()
	if !waitGroupGone(group, 30*time.Second) {
		_ = syscall.Kill(-group, syscall.SIGKILL)
		if !waitGroupGone(group, 10*time.Second) {
			return fmt.Errorf("children of the killed postmaster %d of %s are still running", group, n.DataDir)
		}
	}
	if !waitShmDetached(shm, 30*time.Second) {
		return fmt.Errorf("the killed postmaster's shared memory segment %d of %s is still attached after 30 s (see /proc/sysvipc/shm)", shm, n.DataDir)
	}
	return nil
}

// waitGroupGone waits until no live (non-zombie) process is left in process group pgid. The
// servers run in their own group (Setpgid), so that group is the postmaster and its children.
func waitGroupGone(pgid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if !groupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive reports whether a process other than a zombie is in process group pgid.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, pgrp, ...
		rest := string(data)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if g, err := strconv.Atoi(fields[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}

// DSN is a connection string for database db as the superuser postgres: over TCP on
// 127.0.0.1, or through the Unix socket when TCP needs a password (HostAuth).
func (n *Node) DSN(db string) string {
	if n.HostAuth != "" {
		return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", db, url.QueryEscape(n.SocketDir), n.Port)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", n.Port, db)
}

// LogTail returns the last lines of the server log.
func (n *Node) LogTail(lines int) string {
	data, err := readFrom(n.LogFile, 0)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return lastLines(data, lines)
}

// runCtx runs cmd to completion, killing it when ctx ends, and returns its combined output.
func runCtx(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-ctx.Done():
		// The whole process group, not just the command: pg_basebackup -X stream forks a
		// WAL streamer and initdb runs postgres, and a child left alive keeps the output
		// pipe open, so Wait would not return until it ended by itself (a cancelled clone's
		// orphaned streamer kept its replication slot busy for over 12 minutes).
		killTree(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), ctx.Err()
	}
}
