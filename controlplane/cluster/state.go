package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/borealisdb/borealis/controlplane/router"
)

// StateError is an operation the cluster's current status does not allow (HTTP 409,
// InvalidDBClusterStateFault as Aurora).
type StateError struct{ msg string }

func (e *StateError) Error() string { return e.msg }

// Statuses of the cluster lifecycle (pause, resume, stop, start, reboot).
const (
	StatusPaused    = "paused"
	StatusResuming  = "resuming"
	StatusStopping  = "stopping"
	StatusRebooting = "rebooting"
	// StatusIncompatibleNetwork is a cluster whose nodes run but whose endpoints could not be
	// opened (the port is taken); Aurora uses the same word for an unreachable instance.
	StatusIncompatibleNetwork = "incompatible-network"
)

// lifecycle is the part of a Cluster that pauses, resumes, stops, starts and reboots it. Every
// change of node processes runs on the cluster's run goroutine: API calls queue an operation
// and kick the loop; the router's wake on a paused cluster kicks it too.
type lifecycle struct {
	kick chan struct{} // wakes the run loop before its next tick

	mu             sync.Mutex
	ops            []func()
	resumeWanted   bool
	resumeStarted  time.Time
	availableSince time.Time
	lastDecision   string
	// quietUntil is the end of the moment after a resume when the loop leaves the node alone
	// (no poll connection, no reader start): its CPU is the first clients' (resumeQuiet).
	quietUntil time.Time
}

// resumeQuiet is how long after a resume the supervision loop waits before polling the writer
// and starting the readers, so that they do not compete for the CPU with the first queries of
// the clients that woke the cluster (on 2 cores a reader's start-up doubles the first query's
// time). The readers follow in the background after it.
const resumeQuiet = time.Second

func (l *lifecycle) init() { l.kick = make(chan struct{}, 1) }

func (c *Cluster) kickLoop() {
	select {
	case c.life.kick <- struct{}{}:
	default:
	}
}

// enqueue runs op on the run goroutine at its next step.
func (c *Cluster) enqueue(op func()) {
	c.life.mu.Lock()
	c.life.ops = append(c.life.ops, op)
	c.life.mu.Unlock()
	c.kickLoop()
}

// requestResume is the router's wake function while paused: the first client held wakes it.
func (c *Cluster) requestResume() {
	c.life.mu.Lock()
	if !c.life.resumeWanted {
		c.life.resumeWanted = true
		c.life.resumeStarted = time.Now()
	}
	c.life.mu.Unlock()
	c.kickLoop()
}

func (c *Cluster) flags() (paused, stopped bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Paused, c.rec.Stopped
}

// restoreLifecycle sets the router's gate for a cluster recorded paused or stopped (at start).
func (c *Cluster) restoreLifecycle() {
	paused, stopped := c.flags()
	switch {
	case stopped:
		c.router.Refuse(c.stoppedReason())
	case paused:
		c.router.HoldAndWake(c.resumingReason(), c.requestResume)
	}
}

func (c *Cluster) stoppedReason() string {
	return fmt.Sprintf("the DB cluster is stopped; start it with `borealis cluster start --name %s`", c.rec.Name)
}

func (c *Cluster) resumingReason() string {
	return fmt.Sprintf("cluster %s is resuming from pause and did not become available in time", c.rec.Name)
}

// step is one turn of the run loop: queued operations, then what the recorded state asks for.
func (c *Cluster) step() {
	c.life.mu.Lock()
	ops := c.life.ops
	c.life.ops = nil
	c.life.mu.Unlock()
	for _, op := range ops {
		if c.ctx.Err() != nil {
			return
		}
		op()
	}
	paused, stopped := c.flags()
	switch {
	case stopped:
		return
	case paused:
		c.life.mu.Lock()
		want := c.life.resumeWanted
		c.life.mu.Unlock()
		if want {
			c.resumeStep()
		}
		return
	}
	c.life.mu.Lock()
	quiet := time.Now().Before(c.life.quietUntil)
	c.life.mu.Unlock()
	if quiet {
		return
	}
	c.endStartBoost()
	before := c.status()
	c.superviseOnce()
	if after := c.status(); after == StatusAvailable && before != StatusAvailable {
		c.life.mu.Lock()
		c.life.availableSince = time.Now()
		c.life.mu.Unlock()
	}
	c.maybePause()
}

func (c *Cluster) status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Status
}

// pauseObservation gathers what DecidePause needs.
func (c *Cluster) pauseObservation(now time.Time) PauseObservation {
	c.mu.Lock()
	o := PauseObservation{Now: now, Status: c.rec.Status, AutoPause: c.rec.Scaling.AutoPause,
		SecondsUntilAutoPause: c.rec.Scaling.SecondsUntilAutoPause}
	c.mu.Unlock()
	for _, s := range c.router.Stats() {
		o.Connections += s.Active
	}
	o.HeldClients = c.router.HeldClients()
	c.life.mu.Lock()
	o.LastActivity = c.life.availableSince
	c.life.mu.Unlock()
	if la := c.router.LastActivity(); la.After(o.LastActivity) {
		o.LastActivity = la
	}
	return o
}

func (c *Cluster) maybePause() {
	d := DecidePause(c.pauseObservation(time.Now()))
	if !d.Pause {
		return
	}
	c.pause(d.Reason)
}

// pause holds new clients (the first one wakes a resume), stops every node cleanly (a fast
// shutdown ends with a checkpoint), and records the cluster paused at capacity 0.
func (c *Cluster) pause(why string) {
	name := c.rec.Name
	c.router.HoldAndWake(c.resumingReason(), c.requestResume)
	// A client that got through just before the hold keeps the cluster up.
	o := c.pauseObservation(time.Now())
	if o.Connections > o.HeldClients {
		c.router.Release()
		return
	}
	c.m.event(name, "", "cluster.pausing", fmt.Sprintf("pausing cluster %s: %s", name, why))
	ctx, cancel := context.WithTimeout(c.ctx, StartTimeout)
	defer cancel()
	for i := len(c.members) - 1; i >= 0; i-- { // readers first
		c.members[i].closePoll()
		c.members[i].stopKeepingGroup(ctx)
	}
	c.mu.Lock()
	c.rec.Paused = true
	c.rec.Status = StatusPaused
	_ = c.saveLocked()
	c.mu.Unlock()
	c.m.event(name, "", "cluster.paused", "The DB cluster is paused.")
}

// resumeStep starts the writer of a paused cluster and lets the held clients through once it
// accepts connections; readers follow on later turns of the loop. A failure answers the held
// clients with the cause, and the member's back-off paces the retries.
func (c *Cluster) resumeStep() {
	name := c.rec.Name
	t0 := time.Now()
	var writer *member
	for _, mb := range c.members {
		if mb.isWriter() {
			writer = mb
		}
	}
	if writer == nil {
		return
	}
	// The postmaster starts while the status and event are recorded (two fsyncs); the held
	// clients are let through as soon as it is ready, before the store records that.
	marked := make(chan struct{})
	go func() {
		defer close(marked)
		if c.status() == StatusPaused {
			c.setStatus(StatusResuming)
			c.m.event(name, "", "cluster.resuming", "The DB cluster is resuming.")
		}
	}()
	var released time.Time
	writer.onReady = func() {
		// Recorded long since, as a rule (it ran while the postmaster started); waiting here
		// keeps its save, made under c.mu, from stalling the released clients' Writer() calls,
		// and the member's events after the cluster's.
		<-marked
		c.mu.Lock()
		c.memberRec(writer.id).Status = StatusAvailable // Writer() hands out its address now
		c.mu.Unlock()
		c.router.Release()
		released = time.Now()
	}
	t1 := time.Now()
	writer.startNice, writer.cgBoost = resumeStartNice, ""
	writer.ensure()
	writer.onReady, writer.startNice = nil, 0
	<-marked
	t2 := time.Now()
	if writer.status() != StatusAvailable {
		if writer.lastErr != "" {
			c.router.Fail(fmt.Sprintf("cluster %s could not resume: %s", name, firstLines(writer.lastErr, 3)))
		}
		return
	}
	c.router.Release() // a no-op when onReady released them
	if released.IsZero() {
		released = time.Now()
	}
	c.life.mu.Lock()
	took := released.Sub(c.life.resumeStarted)
	ph := resumePhases{Wake: t0.Sub(c.life.resumeStarted), Ensure: released.Sub(t1), Recorded: t2.Sub(released)}
	c.life.resumeWanted = false
	c.life.availableSince = time.Now()
	quiet := resumeQuiet
	if q := c.m.opts.ResumeQuiet; q > 0 {
		quiet = q
	}
	c.life.quietUntil = time.Now().Add(quiet)
	c.life.mu.Unlock()
	if n := writer.node; n != nil && !n.Launched.IsZero() && n.Ready.After(n.Launched) && !n.Launched.Before(t1) {
		ph.BeforeFork, ph.Postgres, ph.AfterReady = n.Launched.Sub(t1), n.Ready.Sub(n.Launched), released.Sub(n.Ready)
		ph.Boost = fmt.Sprintf("start-up CPU priority nice %d", resumeStartNice)
		if n.BoostErr != nil {
			ph.Boost = "start-up at normal CPU priority: " + n.BoostErr.Error()
		}
		if writer.cgBoost != "" {
			ph.Boost += "; " + writer.cgBoost
		}
	}
	c.mu.Lock()
	c.rec.Paused = false
	_ = c.saveLocked()
	c.mu.Unlock()
	c.m.event(name, "", "cluster.resumed", fmt.Sprintf("The DB cluster is resumed. The writer accepted connections %.2f s after the first client connected (%s).", took.Seconds(), ph))
}

// resumePhases is where a resume's time went, from the first held client to the clients'
// release, for the cluster.resumed event.
type resumePhases struct {
	Wake       time.Duration // first client held → the run loop picks the resume up
	Ensure     time.Duration // → held clients let through, as below
	BeforeFork time.Duration // of Ensure: capacity.conf written, command prepared
	Postgres   time.Duration // of Ensure: postmaster forked → postmaster.pid says ready
	AfterReady time.Duration // of Ensure: cgroup limits, clients let through
	Recorded   time.Duration // after the release: status, events and the store's fsyncs
	Boost      string        // the start-up's CPU priority (resumeboost.go)
}

func (p resumePhases) String() string {
	f := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	s := fmt.Sprintf("wake %s, start %s = before fork %s + postgres %s + after ready %s; recorded after the release %s",
		f(p.Wake), f(p.Ensure), f(p.BeforeFork), f(p.Postgres), f(p.AfterReady), f(p.Recorded))
	if p.Boost != "" {
		s += "; " + p.Boost
	}
	return s
}

// privateAddr maps a node's router address to the control plane's trusted path to the same
// node, the Unix socket in the cluster's private directory (local connections are trusted;
// only the nodes' OS user and the control plane can enter it): moved sessions open their new
// backend there. A socket path too long for sun_path leaves the address as it is.
func (c *Cluster) privateAddr(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rec.Members {
		sock := filepath.Join(filepath.Dir(r.DataDir), ".s.PGSQL."+strconv.Itoa(r.Port))
		if (addr == backendAddr(r) || strings.HasSuffix(addr, ":"+strconv.Itoa(r.Port))) && len(sock) < 100 {
			return sock
		}
	}
	return addr
}

// Stop stops a cluster as `aws rds stop-db-cluster`: clients are refused until Start, every
// node is shut down cleanly. It returns at once with status "stopping".
func (m *Manager) Stop(name string) (Description, error) {
	c, err := m.get(name)
	if err != nil {
		return Description{}, err
	}
	c.mu.Lock()
	if c.rec.Stopped || c.rec.Status == StatusStopping {
		c.mu.Unlock()
		return Description{}, &StateError{fmt.Sprintf("cluster %s is already %s", name, c.rec.Status)}
	}
	if c.rec.Status == StatusCreating || c.rec.Status == StatusDeleting {
		c.mu.Unlock()
		return Description{}, &StateError{fmt.Sprintf("cluster %s is %s; it cannot be stopped now", name, c.rec.Status)}
	}
	c.rec.Status = StatusStopping
	_ = c.saveLocked()
	c.mu.Unlock()
	m.event(name, "", "cluster.stopping", "DB cluster is being stopped.")
	c.enqueue(func() {
		c.router.Refuse(c.stoppedReason())
		ctx, cancel := context.WithTimeout(c.ctx, StartTimeout)
		defer cancel()
		for i := len(c.members) - 1; i >= 0; i-- {
			c.members[i].closePoll()
			c.members[i].stop(ctx)
		}
		c.mu.Lock()
		c.rec.Stopped, c.rec.Paused = true, false
		c.rec.Status = StatusStopped
		_ = c.saveLocked()
		c.mu.Unlock()
		c.life.mu.Lock()
		c.life.resumeWanted = false
		c.life.mu.Unlock()
		m.event(name, "", "cluster.stopped", "DB cluster stopped.")
	})
	return c.Describe(), nil
}

// Start starts a stopped (or paused) cluster as `aws rds start-db-cluster`. It returns at
// once with status "starting"; clients are let through once the writer is available.
func (m *Manager) Start(name string) (Description, error) {
	c, err := m.get(name)
	if err != nil {
		return Description{}, err
	}
	c.mu.Lock()
	if !c.rec.Stopped && !c.rec.Paused {
		st := c.rec.Status
		c.mu.Unlock()
		return Description{}, &StateError{fmt.Sprintf("cluster %s is %s, not stopped", name, st)}
	}
	wasPaused := c.rec.Paused
	c.mu.Unlock()
	if wasPaused {
		c.requestResume()
		return c.Describe(), nil
	}
	// From now on new clients wait (at most the hold timeout) until the writer is available.
	c.router.Hold(fmt.Sprintf("cluster %s is starting", name))
	c.enqueue(func() {
		c.mu.Lock()
		c.rec.Stopped = false
		c.rec.Status = StatusStarting
		_ = c.saveLocked()
		c.mu.Unlock()
		m.event(name, "", "cluster.starting", "DB cluster is being started.")
		go c.releaseWhenWriterUp("cluster.started", "DB cluster started.")
	})
	c.mu.Lock()
	c.rec.Status = StatusStarting
	c.mu.Unlock()
	return c.Describe(), nil
}

// releaseWhenWriterUp releases the router once the writer is available, then records event.
func (c *Cluster) releaseWhenWriterUp(typ, msg string) {
	began := time.Now()
	for c.ctx.Err() == nil {
		if c.Writer() != "" {
			c.router.Release()
			c.m.event(c.rec.Name, "", typ, fmt.Sprintf("%s (writer available after %.2f s)", msg, time.Since(began).Seconds()))
			return
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Reboot restarts one node (the writer when instance is empty) as `aws rds
// reboot-db-instance`. New clients of the writer wait while it restarts.
func (m *Manager) Reboot(name, instance string) (Description, error) {
	c, err := m.get(name)
	if err != nil {
		return Description{}, err
	}
	c.mu.Lock()
	var target string
	for _, r := range c.rec.Members {
		if (instance == "" && r.Writer) || r.ID == instance {
			target = r.ID
		}
	}
	st := c.rec.Status
	c.mu.Unlock()
	if target == "" {
		return Description{}, fmt.Errorf("cluster %s has no instance %q: %w (see `borealis cluster describe --name %s`)", name, instance, ErrMemberNotFound, name)
	}
	if st != StatusAvailable && st != StatusDegraded {
		return Description{}, &StateError{fmt.Sprintf("cluster %s is %s; reboot needs it available", name, st)}
	}
	var mb *member
	for _, x := range c.members {
		if x.id == target {
			mb = x
		}
	}
	mb.setStatus(StatusRebooting)
	m.event(name, target, "member.rebooting", fmt.Sprintf("DB instance %s is being rebooted.", target))
	c.enqueue(func() { c.reboot(mb) })
	return c.Describe(), nil
}

// reboot restarts mb's server: a clean stop and a start of the same data directory. Its idle
// sessions are parked at a transaction boundary before the stop and moved to the restarted
// server after, so their clients see no error; sessions in a transaction, or pinned, are
// closed with a retryable error.
func (c *Cluster) reboot(mb *member) {
	began := time.Now()
	writer := mb.isWriter()
	if writer {
		c.router.Hold(fmt.Sprintf("writer %s is rebooting", mb.id))
		defer c.router.Release()
	}
	ctx, cancel := context.WithTimeout(c.ctx, StartTimeout)
	defer cancel()
	addr := backendAddr(mb.record())
	parked := c.router.Park(ctx, addr, router.MoveOptions{Reason: "node restart", ClosePinned: true})
	defer func() {
		mb.event("member.sessions-moved", "%s", movedMessage(parked.Resume(ctx, addr), "the restarted node"))
	}()
	mb.closePoll()
	if mb.node != nil && mb.node.Running() {
		if err := mb.node.Stop(ctx); err != nil {
			mb.event("member.stop-failed", "%v", err)
		}
	}
	mb.pid.Store(0)
	rec := mb.record()
	if err := mb.start(ctx, rec, "member.restarted", "restarted node %s on port %d (pid %d)"); err != nil {
		mb.lastErr = err.Error()
		mb.setStatus(StatusFailed)
		mb.event("member.reboot-failed", "DB instance %s failed to restart: %v", mb.id, err)
		return
	}
	mb.pid.Store(int64(mb.node.PID()))
	mb.setStatus(StatusAvailable)
	mb.event("member.rebooted", "DB instance %s restarted (%.2f s).", mb.id, time.Since(began).Seconds())
}
