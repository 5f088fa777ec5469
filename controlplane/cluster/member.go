package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/capacity"
	"github.com/borealisdb/borealis/controlplane/cgroup"
	"github.com/borealisdb/borealis/controlplane/scaling"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// StartTimeout bounds one node start (crash recovery included) on a loaded machine.
const StartTimeout = 90 * time.Second

// member is one node's runtime side. Its record lives in Cluster.rec (under Cluster.mu); the
// node and the poll connection are touched only by the cluster's run goroutine, except
// stats (under statsMu).
type member struct {
	c  *Cluster
	id string

	node      *pgproc.Node
	nextTry   time.Time
	failures  int
	pollConn  *pgx.Conn
	agentSeen *bool
	// paramsApplied is the cluster's paramGen this node carries; paramsNextTry backs off a
	// failed application (paramgroups.go).
	paramsApplied atomic.Uint64
	paramsNextTry time.Time
	// lastErr is why the last start failed ("" after a success), for held clients.
	lastErr string
	// startNice, when below 0 (a resume), is the CPU priority the next start runs at until
	// the cluster ends the boost (resumeboost.go).
	startNice int
	// cgBoost says how the last resume's start ran in its cgroup ("" when it was not
	// boosted there), for the cluster.resumed event (resumeboost.go).
	cgBoost string
	// onReady, when set (by a resume), is called as soon as a start's postmaster accepts
	// connections and its limits are set, before the start is recorded.
	onReady func()
	// abandoned waits for the processes of a restart in place given up at the grace
	// deadline (failover_restart.go); run goroutine only.
	abandoned func() error

	// pid mirrors node.PID() for readers outside the run goroutine.
	pid atomic.Int64

	statsMu      sync.Mutex
	stats        memberStats
	lastDecision string

	// Capacity (run goroutine only): the node's cgroup, the settings its postmaster started
	// with, the CPU history, the decision state and a change waiting for a scaling point.
	group      *cgroup.Group
	enforceErr string // under statsMu
	applied    []capacity.Setting
	cpu        cpuWindow
	oomSeen    int64
	scaleState scaling.State
	pending    *capacityChange

	// scaleMu guards what other goroutines see or ask: a manual request and the pending view.
	scaleMu     sync.Mutex
	request     *CapacityInput
	pendingView *capacityChange
}

func (mb *member) record() store.Member {
	mb.c.mu.Lock()
	defer mb.c.mu.Unlock()
	return *mb.c.memberRec(mb.id)
}

func (mb *member) isWriter() bool { return mb.record().Writer }
func (mb *member) status() string { return mb.record().Status }

// update changes the member's record and persists the cluster.
func (mb *member) update(f func(r *store.Member)) {
	mb.c.mu.Lock()
	defer mb.c.mu.Unlock()
	f(mb.c.memberRec(mb.id))
	_ = mb.c.saveLocked()
}

func (mb *member) setStatus(status string) { mb.update(func(r *store.Member) { r.Status = status }) }

func (mb *member) event(typ, format string, args ...any) {
	mb.c.m.event(mb.c.rec.Name, mb.id, typ, fmt.Sprintf(format, args...))
}

func (mb *member) config(rec store.Member) pgproc.Config {
	// Nodes outlive the control plane (no parent-death signal) so a restarted one adopts them.
	// The cluster's directory (data, sockets, logs) is private to the nodes' user.
	// Clients reach nodes over TCP with SCRAM (relayed by the router); the control plane uses
	// the Unix socket in that directory, which only trusts.
	cfg := pgproc.Config{DataDir: rec.DataDir, Port: rec.Port, DieWithParent: false, DirMode: clusterDirMode,
		HostAuth: "scram-sha-256", StartNice: mb.startNice}
	if mb.startNice < 0 && mb.group != nil && mb.group.CPUBoosted() {
		// A resume's server starts in its boosted cgroup (resumeboost.go).
		g := mb.group
		cfg.OnLaunch = func(pid int) { _ = g.Attach(pid) } // enforce at ready repeats it and reports
	}
	return cfg
}

// ensure brings the member to "available": create it, adopt a running server, or restart a
// dead one. Failures back off (1 s doubling to 30 s) and are retried on later ticks.
func (mb *member) ensure() {
	if mb.node != nil && mb.node.Running() {
		return
	}
	rec := mb.record()
	// A writer that does not restart within the grace period of its failure is failed over
	// instead: the restart gets what is left of it, and nothing on its way waits on the disk
	// (failover_restart.go).
	deadline, bounded := mb.c.restartDeadline(rec)
	bounded = bounded && mb.node != nil && rec.Created && !needsRejoin(rec)
	if mb.node != nil && rec.Status == StatusAvailable {
		if bounded {
			mb.eventAsync("member.died", "node %s (pid %d) exited: %v; restarting in place until the end of the grace period", mb.id, mb.node.PID(), mb.node.ExitErr())
			mb.setStatusInMemory(StatusRestarting)
		} else {
			mb.event("member.died", "node %s (pid %d) exited: %v; restarting", mb.id, mb.node.PID(), mb.node.ExitErr())
			mb.setStatus(StatusRestarting)
		}
		mb.pid.Store(0)
		mb.closePoll()
		rec.Status = StatusRestarting
	}
	if time.Now().Before(mb.nextTry) {
		return
	}
	if bounded {
		if err := mb.restartWithin(rec, deadline); err != nil {
			if mb.c.ctx.Err() != nil {
				return
			}
			mb.backOff(err)
			mb.setStatusInMemory(StatusFailed)
			mb.eventAsync("member.start-failed", "node %s: %v (a reader is promoted instead)", mb.id, firstLines(err.Error(), 12))
			return
		}
		mb.failures, mb.nextTry, mb.lastErr = 0, time.Time{}, ""
		mb.pid.Store(int64(mb.node.PID()))
		mb.restartedInPlace()
		return
	}
	ctx, cancel := context.WithTimeout(mb.c.ctx, StartTimeout)
	defer cancel()
	var err error
	switch {
	case needsRejoin(rec):
		err = mb.rejoin(rec) // bounds its own steps
	case !rec.Created:
		err = mb.create(rec) // bounds its own steps
	case mb.node == nil:
		err = mb.adoptOrStart(ctx, rec)
	default:
		err = mb.start(ctx, rec, "member.restarted", "restarted node %s on port %d (pid %d)")
	}
	if err != nil {
		if mb.c.ctx.Err() != nil {
			return
		}
		delay := mb.backOff(err)
		status := StatusFailed
		if rec.Status == StatusCreating {
			status = StatusCreating
		}
		mb.setStatus(status)
		mb.event("member.start-failed", "node %s: %v (retrying in %s)", mb.id, firstLines(err.Error(), 12), delay)
		return
	}
	mb.failures, mb.nextTry, mb.lastErr = 0, time.Time{}, ""
	mb.pid.Store(int64(mb.node.PID()))
	mb.setStatus(StatusAvailable)
}

// backOff records a failed start and when the next may be tried: 1 s doubling to 30 s, the
// pace of every retry of a member's start (resume's included).
func (mb *member) backOff(err error) time.Duration {
	mb.failures++
	mb.lastErr = err.Error()
	delay := min(time.Second<<min(mb.failures-1, 5), 30*time.Second)
	mb.nextTry = time.Now().Add(delay)
	return delay
}

// adoptOrStart attaches to the node's server if it is still running, else starts it.
func (mb *member) adoptOrStart(ctx context.Context, rec store.Member) error {
	node, err := pgproc.Adopt(mb.config(rec))
	if err == nil {
		if err = node.WaitReady(ctx); err == nil {
			mb.node = node
			// It runs with what was written for its recorded capacity at its last start.
			mb.applied = mb.settingsFor(rec.Writer, rec.Capacity)
			mb.enforce(rec.Capacity)
			mb.event("member.adopted", "adopted running node %s on port %d (pid %d)", mb.id, rec.Port, node.PID())
			return nil
		}
	}
	if !errors.Is(err, pgproc.ErrNotRunning) {
		return fmt.Errorf("adopting the running server: %w", err)
	}
	return mb.start(ctx, rec, "member.started", "started node %s on port %d (pid %d)")
}

func (mb *member) start(ctx context.Context, rec store.Member, typ, msg string) error {
	if mb.startNice < 0 {
		mb.prepareBoostedGroup(rec.Capacity)
	}
	node, err := pgproc.New(mb.config(rec))
	if err != nil {
		return err
	}
	want := mb.settingsFor(rec.Writer, rec.Capacity)
	if err := writeCapacityConf(rec.DataDir, want); err != nil {
		return err
	}
	if err := mb.startNode(ctx, node); err != nil {
		// A server given up on (say, still in crash recovery) must not linger half-started.
		_ = node.Fence()
		mb.endCgroupBoost()
		return err
	}
	mb.node = node
	mb.applied = want
	mb.enforce(rec.Capacity)
	if mb.onReady != nil {
		mb.onReady()
	}
	mb.event(typ, msg, mb.id, node.Port, node.PID())
	return nil
}

// nodeSettings are the writer's postgresql.conf additions; readers inherit them via the base
// backup.
func (mb *member) nodeSettings() map[string]string {
	s := map[string]string{
		"shared_preload_libraries": "'borealis'",
		"wal_level":                "replica",
		"max_wal_senders":          "20",
		"max_replication_slots":    "20",
		"hot_standby":              "on",
		"hot_standby_feedback":     "on",
		"logging_collector":        "on",
		"log_destination":          "'stderr,jsonlog'",
		"log_directory":            "'log'",
		"log_filename":             "'postgresql-%Y-%m-%d_%H%M%S.log'",
		"log_line_prefix":          "'%m [%p] '",
		// The seed's fixed logging rules (paramgroup.FixedLogging; also kept by ALTER SYSTEM).
		"log_connections":    "on",
		"log_disconnections": "on",
		"log_hostname":       "off",
		// pg_rewind needs hint bits WAL-logged to bring a failed-over writer back as a reader.
		"wal_log_hints": "on",
		// A reader whose WAL receiver lost the writer tries again after this, not after the
		// default 5 s: the failover bench saw synchronous commits on a writer restarted in
		// place wait those 5 s for a reader to come back (RTO 5.5 s after a 2 s restart).
		"wal_retrieve_retry_interval": "'200ms'",
	}
	for k, v := range mb.c.m.opts.NodeSettings {
		s[k] = v
	}
	return s
}

// create builds the member's data directory from nothing: the writer by initdb and CREATE
// EXTENSION borealis, a reader by a base backup of the writer with its own slot. Making the
// directory is bounded by progress (MakeStall), the rest by StartTimeout. A writer's directory
// that an earlier attempt made completely (initdb and its settings, madeMark) is kept: the
// retry of a start or of the SQL after it does not run initdb again.
func (mb *member) create(rec store.Member) error {
	// A half-made member from an earlier attempt: stop whatever runs there.
	if old, err := pgproc.Adopt(mb.config(rec)); err == nil {
		ctx, cancel := context.WithTimeout(mb.c.ctx, StartTimeout)
		_ = old.Stop(ctx)
		cancel()
	}
	cfg := mb.config(rec)
	if rec.Writer {
		cfg.Settings = mb.nodeSettings()
	}
	node, err := pgproc.New(cfg)
	if err != nil {
		return err
	}
	mark := madeMark(rec)
	kept := rec.Writer && fileExists(mark) && fileExists(filepath.Join(rec.DataDir, "PG_VERSION"))
	if kept {
		mb.event("member.create-resumed", "node %s: keeping the data directory an earlier attempt initialized; starting it", mb.id)
	} else {
		if err := os.Remove(mark); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.RemoveAll(rec.DataDir); err != nil {
			return err
		}
		if err := mb.makeDataDir(rec, node); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(mb.c.ctx, StartTimeout)
	defer cancel()
	if err := writeCapacityConf(rec.DataDir, mb.settingsFor(rec.Writer, rec.Capacity)); err != nil {
		return err
	}
	if err := mb.startNode(ctx, node); err != nil {
		return err
	}
	mb.node = node
	mb.enforce(rec.Capacity)
	if rec.Writer {
		if err := execOn(ctx, node, "CREATE EXTENSION IF NOT EXISTS borealis CASCADE"); err != nil {
			_ = node.Stop(ctx)
			return fmt.Errorf("creating the borealis extension (is it installed? run `make install`): %w", err)
		}
		c := mb.c
		c.mu.Lock()
		crec := c.rec
		c.mu.Unlock()
		if err := setupMasterUser(ctx, node, crec); err != nil {
			_ = node.Stop(ctx)
			return err
		}
	}
	mb.applied = mb.settingsFor(rec.Writer, rec.Capacity)
	mb.update(func(r *store.Member) { r.Created = true })
	_ = os.Remove(mark)
	role := "reader"
	if rec.Writer {
		role = "writer"
	}
	mb.event("member.created", "created %s %s on port %d (pid %d)", role, mb.id, node.Port, node.PID())
	return nil
}

// makeDataDir makes the member's data directory, bounded by progress (MakeStall): the writer's
// by initdb (then madeMark), a reader's by a base backup of the writer with its own slot.
func (mb *member) makeDataDir(rec store.Member, node *pgproc.Node) error {
	ctx, cancel := untilStalled(mb.c.ctx, rec.DataDir, MakeStall, 5*time.Second)
	defer cancel()
	if rec.Writer {
		if err := node.Init(ctx); err != nil {
			return stallErr(ctx, err)
		}
		return os.WriteFile(madeMark(rec), nil, 0o600)
	}
	writer := mb.c.writerNode()
	if writer == nil {
		return errors.New("the writer is not running")
	}
	slot := slotName(rec.ID)
	// A slot left by an earlier attempt would make pg_basebackup -C fail.
	_ = execOn(ctx, writer, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '"+slot+"' AND NOT active")
	if err := pgproc.BaseBackup(ctx, writer, node, slot); err != nil {
		return stallErr(ctx, err)
	}
	if w, ok := mb.c.writerRec(); ok {
		// Named in primary_conninfo so synchronous_standby_names can list it.
		if err := node.SetAutoConf(map[string]string{"primary_conninfo": pgproc.Quote(mb.c.primaryConninfo(w, rec.ID))}); err != nil {
			return err
		}
	}
	return nil
}

// madeMark is the file, beside the member's data directory, that says initdb finished and its
// settings were written: a later attempt may start the directory instead of making it again.
func madeMark(rec store.Member) string { return rec.DataDir + ".made" }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// slotName is the writer's replication slot for a reader (slot names allow [a-z0-9_]).
func slotName(id string) string { return strings.ReplaceAll(id, "-", "_") }

func (c *Cluster) writerNode() *pgproc.Node {
	for _, mb := range c.members {
		if mb.isWriter() && mb.node != nil && mb.node.Running() {
			return mb.node
		}
	}
	return nil
}

// stop shuts the node down cleanly, records it stopped and removes its cgroup.
func (mb *member) stop(ctx context.Context) {
	mb.stopKeepingGroup(ctx)
	mb.removeGroup()
}

// stopKeepingGroup is stop for a pause: the empty cgroup stays for the resume, which would
// otherwise wait for the kernel to make it again (mkdir of a memory cgroup took up to 0.5 s
// on this host).
func (mb *member) stopKeepingGroup(ctx context.Context) {
	if mb.node != nil && mb.node.Running() {
		if err := mb.node.Stop(ctx); err != nil {
			mb.event("member.stop-failed", "%v", err)
		}
	}
	mb.pid.Store(0)
	mb.setStatus(StatusStopped)
	mb.endCgroupBoost()
}

// reloadOn makes the node re-read its configuration and returns once the reload is in
// effect for every session. pg_reload_conf() only signals the postmaster, which reloads and then
// signals each backend, newest first; each backend applies it before its next command. Returning
// at pg_reload_conf() let a client's SHOW right after a "changed in place" event read the old
// value (CI, TestModifyCurrentCapacity). So: wait for this session's own pg_conf_load_time() to
// move (the postmaster has reloaded and started signalling), then open one more connection. The
// postmaster forks it only from its main loop, after the signal handler that sends SIGHUP to every
// older backend has returned; waiting for the first step alone still failed in 2 of 8 runs of
// TestReloadOnTakesEffect, because this session, the newest, is signalled first.
func reloadOn(ctx context.Context, node *pgproc.Node) error {
	conn, err := pgx.Connect(ctx, node.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var before time.Time
	if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	for {
		var done bool
		if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time() > $1", before).Scan(&done); err != nil {
			return err
		}
		if done {
			after, err := pgx.Connect(ctx, node.DSN("postgres"))
			if err != nil {
				return err
			}
			return after.Close(context.Background())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the reload did not take effect: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func execOn(ctx context.Context, node *pgproc.Node, sql string, args ...any) error {
	return execOnDB(ctx, node, "postgres", sql, args...)
}

// execOnDB runs sql in database db as the superuser, over the node's private socket.
func execOnDB(ctx context.Context, node *pgproc.Node, db, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, node.DSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
