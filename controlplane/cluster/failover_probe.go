package cluster

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// The writer prober: a goroutine per cluster, independent of the supervision loop, that probes
// the writer every probeInterval with a fresh connection and a short timeout, feeds
// failover.Detector, marks the writer suspect for the router at the first failed probe, and
// wakes the supervision loop the moment the detector calls for a promotion. The supervision
// loop stays the only one that acts (restart, fence, promote): the prober only observes.
//
// Why a goroutine of its own: the supervision loop also samples every node, applies parameter
// groups, guards synchronous mode and scales, each with its own timeouts. A writer that froze
// while the loop was in one of those (a poll waits up to pollTimeout on its connection) was
// first probed seconds later. The loop's own work on the writer is cancelled when the prober
// first sees it fail (writerOpCtx), so the loop is free to act when the decision comes.
//
// The run goroutine publishes what to probe (publishProbeTarget: the writer's node and the
// readers' nodes, which only it may read from the members); a change of writer or of its node
// (a restart, a promotion, a resume) starts the detector afresh, and a decision made for an
// earlier target is never acted on.

// probeInterval is how often the prober starts a probe of the writer; a probe that failed
// after its timeout is followed by the next one at once.
const probeInterval = 250 * time.Millisecond

// probeApplicationName names the prober's sessions (left out of the nodes' connection counts).
const probeApplicationName = "borealis-probe"

// probeMinFailures is how many failed probes in a row a running writer needs before it is
// promoted away (failover.Detector.MinFailures).
const probeMinFailures = 3

// writerProbeTimeout bounds one probe of the writer: a quarter of the grace period, 300 ms to
// 1 s, so that the grace period holds at least about four probes.
func writerProbeTimeout(g time.Duration) time.Duration {
	return min(time.Second, max(g/4, 300*time.Millisecond))
}

// writerProber is the prober's state; everything is under mu. Lock order: mu, then c.mu.
type writerProber struct {
	mu sync.Mutex
	// What to probe, published by the run goroutine.
	writerID string
	node     *pgproc.Node
	readers  map[string]*pgproc.Node
	gen      uint64 // bumped when the writer or its node changes
	det      failover.Detector
	dec      failover.Decision
	decGen   uint64 // the gen dec was made for
	// tli is the writer's timeline as its last successful probe saw it (0: unknown).
	tli uint32
	// wctx is the context of the run goroutine's work on the writer; cancelled when the
	// writer turns suspect, renewed when it is healthy again or replaced.
	wctx    context.Context
	wcancel context.CancelFunc
	// wake tells the run goroutine that a decision calls for it (cap 1).
	wake chan struct{}
	// changed tells the prober that the target changed (cap 1).
	changed chan struct{}
	// conns are the prober's own connections to the readers (WAL receiver checks).
	conns map[string]*pgx.Conn
	// kept is the prober's own session on the writer (kept for keptNode): whether it still
	// answers tells a slow or stuck postmaster from a frozen or dead server.
	kept     *pgx.Conn
	keptNode *pgproc.Node
	// late is the probe of the current failure left to go on past the probe timeout (prober
	// goroutine only; nil if none): its answer tells a slow writer from a hung one.
	late *lateProbe
	// follow are the readers' follow watches and repairs the readers they gave up on, with
	// why, for the run goroutine (failover_follow.go).
	follow  map[string]*failover.FollowWatch
	repairs map[string]string
}

func (p *writerProber) init(parent context.Context) {
	p.wake = make(chan struct{}, 1)
	p.changed = make(chan struct{}, 1)
	p.conns = map[string]*pgx.Conn{}
	p.wctx, p.wcancel = context.WithCancel(parent)
}

// renewLocked gives the run goroutine a live context for its work on the writer.
func (p *writerProber) renewLocked(parent context.Context) {
	if p.wctx.Err() != nil {
		p.wctx, p.wcancel = context.WithCancel(parent)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// writerOpCtx is the parent context for the run goroutine's queries to the writer (polls,
// the synchronous-mode guard, settings): cancelled as soon as the prober finds the writer
// failing, so that the loop never sits in a timeout on a frozen writer.
func (c *Cluster) writerOpCtx() context.Context {
	p := &c.fo.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wctx
}

// opCtx is the parent context for queries to mb: writerOpCtx for the writer.
func (mb *member) opCtx() context.Context {
	if mb.isWriter() {
		return mb.c.writerOpCtx()
	}
	return mb.c.ctx
}

// publishProbeTarget tells the prober what to probe; run goroutine only. A new writer or a new
// node of it starts the detector afresh (and clears the router's hold).
func (c *Cluster) publishProbeTarget() {
	var id string
	var node *pgproc.Node
	readers := map[string]*pgproc.Node{}
	for _, mb := range c.members {
		switch {
		case mb.isWriter():
			id, node = mb.id, mb.node
		case mb.node != nil:
			readers[mb.id] = mb.node
		}
	}
	p := &c.fo.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readers = readers
	if id == p.writerID && node == p.node {
		return
	}
	p.writerID, p.node = id, node
	p.gen++
	p.det.Reset()
	p.dec = failover.Decision{}
	p.tli = 0
	p.renewLocked(c.ctx)
	c.setSuspect(false)
	signal(p.changed)
}

// probeDecision is the detector's latest decision for the current target.
func (c *Cluster) probeDecision() (failover.Decision, bool) {
	p := &c.fo.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dec, p.decGen == p.gen && p.node != nil
}

// promotionPending reports that the detector calls for a promotion the loop has not acted on:
// the loop then leaves the rest of its round (polls of the readers, settings) for later and
// goes back to its wait, where the prober's wake-up is pending.
func (c *Cluster) promotionPending() bool {
	dec, ok := c.probeDecision()
	if !ok || dec.Action != failover.Promote || time.Now().Before(c.fo.retryAt) || len(c.readerRecs()) == 0 {
		return false
	}
	if mode, _ := c.failoverSettings(); mode == failover.Synchronous {
		if ok, _ := c.fo.sync.guard.PromotionAllowed(); !ok {
			return false // watchWriter says why; the round goes on
		}
	}
	signal(c.fo.probe.wake)
	return true
}

// observeLocally feeds the detector what the run goroutine sees without any I/O that could
// wait (the process exited, the data directory is gone), so that a restart in place is
// bounded from the exit itself, not from the prober's next round.
func (c *Cluster) observeLocally(running, intact bool, g time.Duration) {
	p := &c.fo.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.node == nil {
		return
	}
	now := time.Now()
	c.setDetectorLocked(g)
	p.dec, p.decGen = p.det.Observe(failover.Observation{At: now, Ended: now, Running: running, DataIntact: intact}), p.gen
	c.setSuspect(p.dec.Action == failover.Promote)
}

func (c *Cluster) setDetectorLocked(g time.Duration) {
	c.fo.probe.det.Grace = g
	c.fo.probe.det.MinFailures = probeMinFailures
}

// detectorSince is when the writer's current failure began (zero when healthy).
func (c *Cluster) detectorSince() time.Time {
	p := &c.fo.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.det.Since()
}

// writerTimeline is the writer's timeline as its last successful probe saw it (0: unknown).
func (c *Cluster) writerTimeline() uint32 {
	p := &c.fo.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tli
}

// probeScope says whether the writer is to be judged now, with the grace period and the
// writer's data directory: not while the cluster is being created, deleted, paused, stopped,
// resumed or failed over, nor while the writer is restarted on purpose (reboot, capacity).
func (c *Cluster) probeScope() (active bool, g time.Duration, dataDir string) {
	c.life.mu.Lock()
	quiet := time.Now().Before(c.life.quietUntil)
	c.life.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if quiet || c.rec.Paused || c.rec.Stopped {
		return false, 0, ""
	}
	switch c.rec.Status {
	case StatusCreating, StatusDeleting, StatusStopping, StatusStopped, StatusPaused, StatusResuming, StatusFailingOver:
		return false, 0, ""
	}
	for _, r := range c.rec.Members {
		if r.Writer {
			if !r.Created || (r.Status != StatusAvailable && r.Status != StatusRestarting && r.Status != StatusFailed) {
				return false, 0, ""
			}
			return true, grace(c.rec), r.DataDir
		}
	}
	return false, 0, ""
}

// runProber is the prober goroutine; it returns when the cluster's context ends.
func (c *Cluster) runProber(done chan<- struct{}) {
	defer close(done)
	p := &c.fo.probe
	defer func() {
		if p.kept != nil {
			p.kept.Close(context.Background())
			p.kept = nil
		}
		if p.late != nil {
			p.late.cancel()
			p.late = nil
		}
		for id, conn := range p.conns {
			if conn != nil {
				conn.Close(context.Background())
			}
			delete(p.conns, id)
		}
	}()
	trace := os.Getenv("BOREALIS_PROBE_TRACE") != ""
	for {
		start := time.Now()
		c.probeOnce()
		if trace {
			p.mu.Lock()
			dec := p.dec
			p.mu.Unlock()
			c.m.opts.Logf("probe trace: round %s..%s took %s: %s since %s: %s", start.Format("15:04:05.000"), time.Now().Format("15:04:05.000"),
				time.Since(start).Round(time.Millisecond), dec.Action, dec.Since.Format("15:04:05.000"), dec.Reason)
		}
		wait := max(probeInterval-time.Since(start), 10*time.Millisecond)
		select {
		case <-c.ctx.Done():
			return
		case <-p.changed:
		case <-time.After(wait):
		}
	}
}

// probeOnce observes the current target once and records the detector's decision.
func (c *Cluster) probeOnce() {
	p := &c.fo.probe
	active, g, dataDir := c.probeScope()
	p.mu.Lock()
	id, node, gen := p.writerID, p.node, p.gen
	readers := p.readers
	if !active || node == nil {
		// Nothing to judge: forget any failure, so that none is acted on later.
		if !p.det.Since().IsZero() || p.dec.Action != failover.None {
			p.det.Reset()
			p.dec = failover.Decision{}
			c.setSuspect(false)
		}
		p.renewLocked(c.ctx)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	obs := c.observe(id, node, dataDir, readers, g)
	if c.ctx.Err() != nil {
		return // shutting down: failed probes say nothing about the writer
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != gen {
		return // the writer changed meanwhile: this observation is about the old one
	}
	if obs.tli > 0 {
		p.tli = obs.tli
	}
	c.watchFollowersLocked(obs)
	c.setDetectorLocked(g)
	prev := p.dec.Action
	dec := p.det.Observe(obs.Observation)
	p.dec, p.decGen = dec, gen
	suspect := dec.Action == failover.Promote || (!dec.Since.IsZero() && obs.Running && obs.Probe != failover.ProbeOK)
	if suspect {
		p.wcancel()
	} else {
		p.renewLocked(c.ctx)
	}
	c.setSuspect(suspect)
	if dec.Action == failover.Promote && prev != failover.Promote {
		signal(p.wake) // later rounds are seen on the loop's own ticks
	}
}

// observation is one round of the prober: the detector's input, and the writer's timeline.
type observation struct {
	failover.Observation
	tli uint32
	// followers are the readers' WAL receivers as seen in this round (nil: not seen).
	followers map[string]*failover.FollowObservation
}

// observe gathers one observation of the writer: process, data directory, a fresh
// connect-and-query probe, the agent's last heartbeat and the readers' WAL receivers, the
// probes running in parallel under the probe timeout.
func (c *Cluster) observe(id string, node *pgproc.Node, dataDir string, readers map[string]*pgproc.Node, g time.Duration) observation {
	obs := observation{Observation: failover.Observation{At: time.Now(), Running: node.Running(), DataIntact: pgproc.DataIntact(dataDir)}}
	if w := c.memberByID(id); w != nil {
		w.statsMu.Lock()
		if a := w.stats.agent; a != nil && a.SampledAt != nil {
			obs.AgentSampledAt = *a.SampledAt
		}
		w.statsMu.Unlock()
	}
	var lateTLI uint32
	obs.LateAnswer, lateTLI = c.lateAnswer(node)
	ctx, cancel := context.WithTimeout(c.ctx, writerProbeTimeout(g))
	defer cancel()
	var wg sync.WaitGroup
	if obs.Running && obs.DataIntact {
		wg.Add(2)
		go func() {
			defer wg.Done()
			obs.Probe, obs.ProbeError, obs.tli = c.probeWriter(ctx, node, g)
		}()
		go func() {
			defer wg.Done()
			obs.SessionAlive = c.keptSessionAnswers(ctx, node)
		}()
	}
	recs := c.readerRecs()
	obs.Readers = len(recs)
	streaming := make([]bool, len(recs))
	// looks are the readers' WAL receivers, for the follow watch (failover_follow.go).
	looks := make([]failover.FollowObservation, len(recs))
	looked := make([]bool, len(recs))
	conns := make([]*pgx.Conn, len(recs))
	p := &c.fo.probe
	for i, r := range recs {
		rn := readers[r.ID]
		conns[i] = p.conns[r.ID] // the prober's own map: only this goroutine touches it
		if rn == nil || !rn.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			conn := conns[i]
			if conn == nil {
				cfg, err := pgx.ParseConfig(rn.DSN("postgres"))
				if err != nil {
					return
				}
				cfg.RuntimeParams["application_name"] = probeApplicationName
				if conn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
					return
				}
			}
			var tli int64
			err = conn.QueryRow(ctx, `SELECT coalesce((SELECT status = 'streaming' AND
				last_msg_receipt_time > now() - make_interval(secs => $1) FROM pg_stat_wal_receiver), false),
				coalesce((SELECT status FROM pg_stat_wal_receiver), ''),
				coalesce((SELECT received_tli::bigint FROM pg_stat_wal_receiver), 0)`,
				g.Seconds()).Scan(&streaming[i], &looks[i].Status, &tli)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
			} else {
				looks[i].ReceivedTimeline, looked[i] = uint32(tli), true
			}
			conns[i] = conn
		}()
	}
	wg.Wait()
	obs.Ended = time.Now()
	if obs.tli == 0 {
		obs.tli = lateTLI
	}
	if obs.Running {
		obs.ProcState = procState(node.PID())
	}
	seen := make(map[string]bool, len(recs))
	for i, s := range streaming {
		p.conns[recs[i].ID] = conns[i]
		seen[recs[i].ID] = s
		if s {
			obs.ReadersStreaming++
		}
	}
	c.mu.Lock()
	c.fo.sync.streaming = seen
	c.mu.Unlock()
	obs.followers = make(map[string]*failover.FollowObservation, len(recs))
	for i, r := range recs {
		obs.followers[r.ID] = nil
		if looked[i] {
			looks[i].At = obs.Ended
			obs.followers[r.ID] = &looks[i]
		}
	}
	return obs
}

// lateProbe is a probe of the writer that outlived the probe timeout and goes on, up to
// failover.AliveLimit from its start: one at a time, the first of a failure. On a machine short
// of CPU a new session can take longer than the probe timeout (the postmaster's fork, the
// backend's start-up and the prober itself wait for a CPU), and every probe fails although the
// writer serves its clients; the detector then saw a writer that had taken no new session for
// AliveLimit and promoted it away. A writer that answers late is alive
// (failover.Observation.LateAnswer); one whose postmaster hangs never answers.
type lateProbe struct {
	node   *pgproc.Node
	began  time.Time
	done   chan lateOutcome // cap 1
	cancel context.CancelFunc
}

type lateOutcome struct {
	res failover.ProbeResult
	tli uint32
	at  time.Time
}

// probeWriter probes the writer's node within ctx, the probe timeout. If no late probe is
// pending, the probe is one that may outlive ctx (it goes on as the late probe): its answer
// within ctx is used as any probe's. Prober goroutine only (observe's probe).
func (c *Cluster) probeWriter(ctx context.Context, node *pgproc.Node, g time.Duration) (failover.ProbeResult, string, uint32) {
	p := &c.fo.probe
	dsn := node.DSN("postgres")
	if p.late != nil {
		return probe(ctx, dsn)
	}
	began := time.Now()
	lctx, lcancel := context.WithTimeout(c.ctx, failover.AliveLimit(g))
	done := make(chan lateOutcome, 1)
	type result struct {
		res failover.ProbeResult
		msg string
		tli uint32
	}
	first := make(chan result, 1)
	go func() {
		res, msg, tli := probe(lctx, dsn)
		first <- result{res, msg, tli}
		done <- lateOutcome{res: res, tli: tli, at: time.Now()}
	}()
	var r result
	select {
	case r = <-first:
	case <-ctx.Done():
		select {
		case r = <-first: // answered while this goroutine waited for a CPU
		default:
			p.late = &lateProbe{node: node, began: began, done: done, cancel: lcancel}
			return failover.ProbeFailed, "no answer within the probe timeout (" + writerProbeTimeout(g).String() + "; a probe goes on)", 0
		}
	}
	lcancel()
	return r.res, r.msg, r.tli
}

// lateAnswer collects the late probe's outcome: how long after its start it was answered (0
// if it was not, or not yet). A late probe of another node is dropped. Prober goroutine only.
func (c *Cluster) lateAnswer(node *pgproc.Node) (time.Duration, uint32) {
	p := &c.fo.probe
	l := p.late
	if l == nil {
		return 0, 0
	}
	if l.node != node {
		l.cancel()
		p.late = nil
		return 0, 0
	}
	select {
	case o := <-l.done:
		l.cancel()
		p.late = nil
		if o.res == failover.ProbeOK {
			return max(o.at.Sub(l.began), time.Nanosecond), o.tli
		}
	default:
	}
	return 0, 0
}

// keptSessionAnswers runs a query on the prober's kept session on the writer's node (opened
// if there is none): true if it answered within ctx. Prober goroutine only.
func (c *Cluster) keptSessionAnswers(ctx context.Context, node *pgproc.Node) bool {
	p := &c.fo.probe
	if p.kept != nil && p.keptNode != node {
		p.kept.Close(context.Background())
		p.kept = nil
	}
	if p.kept == nil {
		cfg, err := pgx.ParseConfig(node.DSN("postgres"))
		if err != nil {
			return false
		}
		cfg.RuntimeParams["application_name"] = probeApplicationName
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return false
		}
		p.kept, p.keptNode = conn, node
	}
	var one int
	if err := p.kept.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		p.kept.Close(context.Background())
		p.kept = nil
		return false
	}
	return true
}

// procState is the state letter of /proc/<pid>/stat (0 if it cannot be read): 'T' for a
// stopped process, 'R', 'S', 'D' for one that runs or waits (failover.Observation.ProcState).
func procState(pid int) byte {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses, so the last ')' ends it.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return 0
	}
	return data[i+2]
}
