package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/controlplane/router"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// Member status while a failed-over writer is fenced and not yet back as a reader, and the
// cluster (and old writer) status during a failover.
const (
	StatusFenced      = "fenced"
	StatusFailingOver = "failing-over"
)

// foState is the cluster's failover state; only the run goroutine touches it, except suspect
// (under c.mu) and probe (the prober, failover_probe.go, under its own lock).
type foState struct {
	retryAt  time.Time // no automatic failover before this, after one that failed
	lastNote string    // last "cannot fail over" reason recorded, so it is not repeated every tick
	// suspect is set while the writer fails its probes: the router then holds new clients
	// (Writer returns "") instead of sending them to a server that takes no sessions.
	suspect bool
	// syncApplied is the synchronous_standby_names last set on the writer (nil: unknown).
	syncApplied *string
	requests    chan failoverRequest
	probe       writerProber
	sync        syncGuardState // syncguard.go
	// events are events recorded off the critical path (eventAsync), waited for at the end.
	events sync.WaitGroup
}

type failoverRequest struct {
	target string
	done   chan error
}

// probeTimeout bounds one connect-and-query probe of the writer.
func probeTimeout(g time.Duration) time.Duration {
	return min(2*time.Second, max(g/2, 500*time.Millisecond))
}

// writerMember returns the member recorded as writer (nil if none).
func (c *Cluster) writerMember() *member {
	for _, mb := range c.members {
		if mb.isWriter() {
			return mb
		}
	}
	return nil
}

// readerRecs returns the records of the readers that could be promoted or follow a writer.
func (c *Cluster) readerRecs() []store.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []store.Member
	for _, r := range c.rec.Members {
		if !r.Writer && !r.Fenced && r.Created {
			out = append(out, r)
		}
	}
	return out
}

// watchWriter publishes the writer to the prober and acts on the detector's latest decision:
// promote a reader (restarting in place is ensure's job). It runs first on every tick of the
// run goroutine, when the prober wakes it, and right after a restart in place gave up. It
// reports whether it failed over.
func (c *Cluster) watchWriter() bool {
	c.publishProbeTarget()
	w := c.writerMember()
	if w == nil {
		return false
	}
	rec := w.record()
	c.mu.Lock()
	clusterStatus := c.rec.Status
	g := grace(c.rec)
	c.mu.Unlock()
	// Nothing to judge before the writer first ran under this control plane.
	if !rec.Created || w.node == nil || clusterStatus == StatusCreating || clusterStatus == StatusDeleting {
		return false
	}
	// What needs no I/O is seen here at once: the exit, the data directory gone.
	if running, intact := w.node.Running(), pgproc.DataIntact(rec.DataDir); !running || !intact {
		c.observeLocally(running, intact, g)
	}
	dec, ok := c.probeDecision()
	if !ok || dec.Action != failover.Promote {
		return false
	}
	if time.Now().Before(c.fo.retryAt) {
		return false
	}
	if len(c.readerRecs()) == 0 {
		c.noteOnce(fmt.Sprintf("cannot fail over (%s): the cluster has no reader; restarting the writer in place", dec.Reason))
		return false
	}
	if mode, _ := c.failoverSettings(); mode == failover.Synchronous {
		if ok, why := c.fo.sync.guard.PromotionAllowed(); !ok {
			c.noteOnce(fmt.Sprintf("cannot fail over (%s): %s; the writer is restarted in place when it can be", dec.Reason, why))
			return false
		}
	}
	if err := c.failover("", dec.Reason, dec.Since); err != nil {
		// Not again before another grace period: each attempt kills the writer.
		c.fo.retryAt = time.Now().Add(g)
		c.noteOnce(fmt.Sprintf("failover of DB cluster %s did not complete: %v", c.rec.Name, err))
		return false
	}
	return true
}

// restartDeadline bounds a restart in place of the writer when a reader could take over
// instead: the end of the grace period since the failure began. A restart that begins with
// less than a second of it left (the failure was seen late) still gets that second, so that a
// restart is tried at all. Without a reader that may be promoted the restart gets StartTimeout.
func (c *Cluster) restartDeadline(rec store.Member) (time.Time, bool) {
	if !rec.Writer || len(c.readerRecs()) == 0 {
		return time.Time{}, false
	}
	mode, g := c.failoverSettings()
	if mode == failover.Synchronous {
		if ok, _ := c.fo.sync.guard.PromotionAllowed(); !ok {
			return time.Time{}, false
		}
	}
	now := time.Now()
	since := c.detectorSince()
	if since.IsZero() {
		since = now
	}
	return maxTime(since.Add(g), now.Add(time.Second)), true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *Cluster) noteOnce(msg string) {
	if msg != c.fo.lastNote {
		c.fo.lastNote = msg
		c.m.event(c.rec.Name, "", "cluster.failover-blocked", msg)
	}
}

func (c *Cluster) setSuspect(v bool) {
	c.mu.Lock()
	was := c.fo.suspect
	c.fo.suspect = v
	c.mu.Unlock()
	if was && !v && c.router != nil {
		c.router.BackendsChanged() // held clients go to the writer now, not at their next poll
	}
}

// probe opens a new connection and runs a query that also reads the writer's timeline (0 for
// a server in recovery). A server that answers with an error is alive (ProbeBusy): only
// silence, refusal or a broken connection fail the probe.
func probe(ctx context.Context, dsn string) (failover.ProbeResult, string, uint32) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return failover.ProbeFailed, err.Error(), 0
	}
	cfg.RuntimeParams["application_name"] = probeApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		defer conn.Close(context.Background())
		var tli int64
		err = conn.QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN 0
			ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END`).Scan(&tli)
		if err == nil {
			return failover.ProbeOK, "", uint32(tli)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return failover.ProbeBusy, pe.Code + " " + pe.Message, 0
	}
	if ctx.Err() != nil {
		return failover.ProbeFailed, "no answer within " + ctxTimeout(ctx), 0
	}
	return failover.ProbeFailed, firstLines(err.Error(), 1), 0
}

func ctxTimeout(ctx context.Context) string {
	if d, ok := ctx.Deadline(); ok {
		return "the probe timeout (" + time.Until(d).Round(time.Millisecond).String() + " left)"
	}
	return "the probe timeout"
}

func (c *Cluster) memberByID(id string) *member {
	for _, mb := range c.members {
		if mb.id == id {
			return mb
		}
	}
	return nil
}

// FailoverError is a manual failover refused before anything changed.
type FailoverError struct{ Msg string }

func (e *FailoverError) Error() string { return e.Msg }

// Failover is `cluster failover` (aws rds failover-db-cluster): a clean switchover to target
// (or the reader Choose picks). The writer is shut down cleanly, the target replays all of its
// WAL, then it is promoted, so nothing committed is lost in either durability mode. Bad input
// is refused before anything changes.
func (m *Manager) Failover(ctx context.Context, name, target string) (Description, error) {
	c, err := m.get(name)
	if err != nil {
		return Description{}, err
	}
	if err := c.checkFailoverTarget(target); err != nil {
		return c.Describe(), err
	}
	req := failoverRequest{target: target, done: make(chan error, 1)}
	select {
	case c.fo.requests <- req:
	case <-ctx.Done():
		return c.Describe(), ctx.Err()
	case <-c.ctx.Done():
		return c.Describe(), errors.New("the cluster is shutting down")
	}
	select {
	case err = <-req.done:
	case <-ctx.Done():
		err = fmt.Errorf("failover still running after the request's deadline: %w (see `borealis events --cluster %s`)", ctx.Err(), name)
	}
	return c.Describe(), err
}

// checkFailoverTarget refuses a failover that cannot work, before anything changes.
func (c *Cluster) checkFailoverTarget(target string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.Status != StatusAvailable {
		return &FailoverError{fmt.Sprintf("cluster %s is %s: a failover needs it available", c.rec.Name, c.rec.Status)}
	}
	var readers []string
	for _, r := range c.rec.Members {
		if !r.Writer && !r.Fenced && r.Status == StatusAvailable {
			readers = append(readers, r.ID)
		}
	}
	if len(readers) == 0 {
		return &FailoverError{fmt.Sprintf("cluster %s has no available reader to fail over to: a failover needs at least one reader", c.rec.Name)}
	}
	if target == "" {
		return nil
	}
	r := c.memberRec(target)
	switch {
	case r == nil:
		return &FailoverError{fmt.Sprintf("DB instance %q is not a member of cluster %s (readers: %s)", target, c.rec.Name, strings.Join(readers, ", "))}
	case r.Writer:
		return &FailoverError{fmt.Sprintf("DB instance %s is already the writer of cluster %s; name a reader (%s)", target, c.rec.Name, strings.Join(readers, ", "))}
	case r.Status != StatusAvailable || r.Fenced:
		return &FailoverError{fmt.Sprintf("DB instance %s is %s, not an available reader (available readers: %s)", target, r.Status, strings.Join(readers, ", "))}
	}
	return nil
}

// failover replaces the writer by a reader. With reason == "" it is a requested switchover
// (clean shutdown, wait for the target to replay everything), else an automatic failover
// whose failure began at since (the old writer is killed). Order: the old writer is stopped
// or fenced and its record marked fenced in the store, then the reader is promoted, the
// other readers re-pointed, and only then the completion announced.
func (c *Cluster) failover(target, reason string, since time.Time) error {
	manual := reason == ""
	start := time.Now()
	if manual {
		since = start
		reason = "requested by the user (switchover)"
		if target != "" {
			reason = "requested by the user (switchover to " + target + ")"
		}
	}
	name := c.rec.Name
	old := c.writerMember()
	if old == nil {
		return errors.New("the cluster has no writer")
	}
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Minute)
	defer cancel()
	started := fmt.Sprintf("Started failover of DB cluster %s (reason: %s)", name, reason)

	// 1. The old writer stops taking writes, for good.
	var oldEnd uint64
	oldTLI := c.writerTimeline()
	var parked *router.Parked
	// events are the start and fencing events of an automatic failover, recorded alongside the
	// choice and the promotion (each is a write to the store); waited for before the end.
	var events chan struct{}
	// fenceDone is the end of the old writer's processes (automatic failover).
	var fenceDone chan error
	// fenceRec is the fenced record's durable write (automatic failover).
	var fenceRec <-chan error
	if manual {
		c.markFailingOver(old)
		c.m.event(name, old.id, "cluster.failover-started", started)
		// Idle sessions wait at their transaction boundary and move to the new writer; those
		// in a transaction (after 2 s) or pinned get a retryable 57P01.
		parked = c.router.Park(ctx, backendAddr(old.record()), router.MoveOptions{Reason: "failover", BoundaryTimeout: 2 * time.Second, ClosePinned: true})
		defer func() {
			if parked != nil {
				parked.Cancel()
			}
		}()
		if err := old.node.Stop(ctx); err != nil {
			return c.abortFailover(old, fmt.Errorf("stopping the writer cleanly: %w", err))
		}
		cd, err := pgproc.ControlData(ctx, old.record().DataDir)
		if err != nil {
			return c.abortFailover(old, err)
		}
		if oldEnd, err = failover.ParseLSN(cd["Latest checkpoint location"]); err != nil {
			return c.abortFailover(old, fmt.Errorf("reading the writer's last checkpoint: %w", err))
		}
		if tli, err := strconv.ParseUint(strings.TrimSpace(cd["Latest checkpoint's TimeLineID"]), 10, 32); err == nil {
			oldTLI = max(oldTLI, uint32(tli))
		}
		old.pid.Store(0)
		old.closePoll()
		old.update(func(r *store.Member) { r.Writer, r.Fenced, r.Status = false, true, StatusFenced })
		c.m.event(name, old.id, "member.fenced", fmt.Sprintf("old writer %s shut down cleanly and marked fenced: it may only return as a reader", old.id))
	} else {
		// Killed before anything else: from the moment Kill returns it can acknowledge
		// nothing more, while its processes exit alongside the choice and the promotion.
		var waits []func() error
		if old.node != nil {
			waits = append(waits, old.node.Kill())
		}
		// A restart in place given up at the grace deadline: its processes were sent SIGKILL.
		if w := old.abandonedStart(); w != nil {
			waits = append(waits, w)
		}
		if len(waits) > 0 {
			fenceDone = make(chan error, 1)
			go func() {
				var errs []error
				for _, w := range waits {
					errs = append(errs, w())
				}
				fenceDone <- errors.Join(errs...)
			}()
		}
		old.pid.Store(0)
		old.closePoll()
		// Fenced in memory now; durable before the new writer is announced (failover_record.go).
		fenceRec = c.markFenced(old)
		events = make(chan struct{})
		go func() {
			defer close(events)
			c.m.event(name, old.id, "cluster.failover-started", started)
			c.m.event(name, old.id, "member.fenced", fmt.Sprintf("old writer %s killed (SIGKILL to its postmaster and every process under it) and marked fenced: it may only return as a reader", old.id))
		}()
	}
	// fenced waits until the old writer's processes are gone and its events are recorded:
	// before the failover is announced, or given up.
	fenced := func() {
		if events != nil {
			<-events
			events = nil
		}
		if fenceDone == nil {
			return
		}
		if err := <-fenceDone; err != nil {
			c.m.event(name, old.id, "member.fence-failed", fmt.Sprintf("every process of %s was sent SIGKILL, but: %v", old.id, err))
		}
		fenceDone = nil
	}
	defer fenced()
	// recorded waits for the fenced record's write: before the promotion is announced.
	recorded := func() error {
		if fenceRec == nil {
			return nil
		}
		err := <-fenceRec
		fenceRec = nil
		return err
	}
	defer recorded()
	abort := func(err error) error {
		_ = recorded()
		fenced()
		return c.abortFailover(old, err)
	}

	tFenced := time.Now()
	// 2. Choose the reader from fresh positions (they no longer move: the writer is gone).
	mode, _ := c.failoverSettings()
	cands, tl := c.candidates(ctx, oldEnd, oldTLI)
	if manual {
		// Nothing is lost by construction: only a reader that replayed the old writer's
		// shutdown checkpoint is eligible.
		mode = failover.Asynchronous
		for i := range cands {
			if cands[i].Replayed <= oldEnd {
				cands[i].Reachable = false
			}
		}
	}
	choice, err := failover.Choose(cands, mode, target, tl)
	if err != nil {
		return abort(err)
	}
	nw := c.memberByID(choice.ID)

	tChosen := time.Now()
	// 3. Promote it. In synchronous mode its synchronous_standby_names is set first (ignored
	// in recovery, in force from the promotion's end): no commit on the new writer is
	// acknowledged before a re-pointed reader has it (failover_syncfirst.go).
	syncFirst := c.syncListBeforePromote(ctx, nw)
	if err := nw.promote(ctx); err != nil {
		return abort(fmt.Errorf("promoting %s: %w", choice.ID, err))
	}
	// Both records durable before the router learns of the new writer: the fenced one (begun
	// before the choice) and this one.
	if err := recorded(); err != nil {
		c.m.event(name, old.id, "member.fence-record-failed", fmt.Sprintf("writing the fenced record of %s: %v", old.id, err))
	}
	c.setSuspect(true) // the router holds new clients until publishProbeTarget, below
	if err := c.saveDurable(func() { c.memberRec(nw.id).Writer = true }); err != nil {
		c.m.event(name, nw.id, "cluster.record-failed", fmt.Sprintf("writing the promoted record of %s: %v", nw.id, err))
	}
	c.fo.syncApplied = syncFirst
	c.resetSyncGuard()
	nw.closePoll()
	c.publishProbeTarget() // probe the new writer from now on; clears the router's hold

	tPromoted := time.Now()
	// The first write on the new writer ends the downtime. It runs alongside the re-pointing:
	// in synchronous mode it may wait for a reader to follow the new writer.
	var tFirstWrite time.Time
	firstWrite := make(chan error, 1)
	go func() {
		err := execOn(ctx, nw.node, "SELECT txid_current()")
		tFirstWrite = time.Now()
		firstWrite <- err
	}()
	// 4. Slots for everyone else, then the readers follow the new timeline, in parallel.
	var followErrs []string
	var slots []string
	var followers []store.Member
	diverged := c.divergedReaders(ctx, nw, c.freshPositions(ctx, cands, choice.ID), choice.ID)
	for _, r := range c.allRecs() {
		if r.ID == choice.ID {
			continue
		}
		slots = append(slots, slotName(r.ID))
		if why, ok := diverged[r.ID]; ok && !r.Fenced && r.Created {
			// It holds WAL the new timeline does not: it cannot follow, so it is stopped and
			// rejoins by pg_rewind like a fenced writer (supervision's rejoin).
			if mb := c.memberByID(r.ID); mb != nil && mb.node != nil {
				if err := mb.node.Fence(); err != nil {
					followErrs = append(followErrs, fmt.Sprintf("stopping diverged %s: %v", r.ID, err))
					continue
				}
				mb.pid.Store(0)
				mb.closePoll()
				mb.update(func(r *store.Member) { r.Fenced, r.Status = true, StatusRestarting })
				c.m.event(name, r.ID, "member.diverged", fmt.Sprintf("reader %s %s: it is stopped and rejoins by pg_rewind", r.ID, why))
			}
			continue
		}
		if !r.Fenced && r.Created {
			followers = append(followers, r)
		}
	}
	if err := nw.onPrivateConn(ctx, nw.node, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `SELECT pg_create_physical_replication_slot(s, true) FROM unnest($1::text[]) s
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = s)`, slots)
		return err
	}); err != nil {
		followErrs = append(followErrs, fmt.Sprintf("slots %v: %v", slots, err))
	}
	ferrs := make([]error, len(followers))
	var fwg sync.WaitGroup
	for i, r := range followers {
		fwg.Add(1)
		go func() { defer fwg.Done(); ferrs[i] = c.follow(ctx, r) }()
	}
	fwg.Wait()
	for i, err := range ferrs {
		if err != nil {
			followErrs = append(followErrs, fmt.Sprintf("%s: %v", followers[i].ID, err))
		}
	}
	c.applyDurability(ctx)
	if parked != nil {
		r := parked.Resume(ctx, backendAddr(nw.record()))
		parked = nil
		c.m.event(name, nw.id, "member.sessions-moved", movedMessage(r, "the new writer "+nw.id))
	}

	tRepointed := time.Now()
	if mode == failover.Synchronous && !manual && len(followers) > 0 {
		c.watchFollowing(nw, tPromoted)
	}
	fenced()
	// 5. The first write on the new writer ends the downtime.
	if err := <-firstWrite; err != nil {
		followErrs = append(followErrs, "first write on the new writer: "+err.Error())
	}
	downtime := tFirstWrite.Sub(since)
	phases := fmt.Sprintf("detection %.1f s, fencing %.1f s, choice %.1f s, promotion %.1f s, first write %.1f s; readers re-pointed %.1f s after the promotion",
		start.Sub(since).Seconds(), tFenced.Sub(start).Seconds(), tChosen.Sub(tFenced).Seconds(), tPromoted.Sub(tChosen).Seconds(),
		tFirstWrite.Sub(tPromoted).Seconds(), tRepointed.Sub(tPromoted).Seconds())
	c.setStatus(StatusAvailable)
	msg := fmt.Sprintf("Completed failover of DB cluster %s to DB instance %s (reason: %s; downtime %.1f s: %s; chosen for %s)",
		name, choice.ID, reason, downtime.Seconds(), phases, choice.Reason)
	if mode == failover.Asynchronous && !manual && choice.LagBytes > 0 {
		msg += fmt.Sprintf("; up to %d bytes of WAL not replayed at the choice", choice.LagBytes)
	}
	c.m.event(name, choice.ID, "cluster.failover-completed", msg)
	c.mu.Lock()
	c.lastFailover = &FailoverInfo{Time: time.Now().UTC(), From: old.id, To: choice.ID, Reason: reason, DowntimeSeconds: downtime.Seconds()}
	c.mu.Unlock()
	if len(followErrs) > 0 {
		c.m.event(name, "", "cluster.failover-followup", "after the failover: "+strings.Join(followErrs, "; ")+" (retried by supervision)")
	}
	return nil
}

// markFenced records, in one write, the cluster failing over and its writer fenced: no longer
// the writer, and only ever to return as a reader. In memory at once; the channel gives the
// durable write's outcome.
func (c *Cluster) markFenced(old *member) <-chan error {
	return c.saveDurableAsync(func() {
		c.rec.Status = StatusFailingOver
		if r := c.memberRec(old.id); r != nil {
			r.Writer, r.Fenced, r.Status = false, true, StatusFenced
		}
	})
}

// markFailingOver records the cluster and its writer as failing over, in one write.
func (c *Cluster) markFailingOver(old *member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Status = StatusFailingOver
	if r := c.memberRec(old.id); r != nil {
		r.Status = StatusFailingOver
	}
	_ = c.saveLocked()
}

// FailoverInfo is the last completed failover, shown in describe.
type FailoverInfo struct {
	Time            time.Time `json:"Time"`
	From            string    `json:"From"`
	To              string    `json:"To"`
	Reason          string    `json:"Reason"`
	DowntimeSeconds float64   `json:"DowntimeSeconds"`
}

// abortFailover records why a failover stopped. The old writer is its writer again: it holds
// every commit (nothing was promoted), so supervision restarts it in place.
func (c *Cluster) abortFailover(old *member, err error) error {
	old.update(func(r *store.Member) { r.Writer, r.Fenced, r.Status = true, false, StatusRestarting })
	c.setStatus(StatusDegraded)
	c.m.event(c.rec.Name, old.id, "cluster.failover-failed", fmt.Sprintf("failover of DB cluster %s failed: %v; %s stays the writer and is restarted", c.rec.Name, err, old.id))
	return err
}

func (c *Cluster) allRecs() []store.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]store.Member(nil), c.rec.Members...)
}

// candidates reads every reader's position and the timeline it is on; with atLeast > 0 (a
// switchover) it first waits up to 30 s for each running reader to replay past atLeast, the old
// writer's shutdown checkpoint. The cluster's timelines are the old writer's (writerTLI, 0 if
// unknown) raised by any newer timeline a reader knows of, with the switch points from the
// newest history file any reader holds.
func (c *Cluster) candidates(ctx context.Context, atLeast uint64, writerTLI uint32) ([]failover.Candidate, failover.Timelines) {
	readers := c.readerRecs()
	out := make([]failover.Candidate, len(readers))
	hist := make([]position, len(readers))
	var wg sync.WaitGroup
	// In parallel: each read is a connection and a query, slow on a loaded machine.
	for i, r := range readers {
		out[i] = failover.Candidate{ID: r.ID, Tier: r.PromotionTier, Capacity: r.Capacity}
		mb := c.memberByID(r.ID)
		if mb == nil || mb.node == nil || !mb.node.Running() || r.Status != StatusAvailable {
			continue
		}
		node := mb.node
		wg.Add(1)
		go func() {
			defer wg.Done()
			cand := &out[i]
			deadline := time.Now().Add(30 * time.Second)
			settle := time.Now().Add(positionSettle)
			for {
				p, err := mb.readPosition(ctx, node)
				if err == nil && p.inRecovery {
					cand.Reachable = true
					cand.Received, cand.Replayed, cand.Timeline = p.received, p.replayed, p.timeline
					hist[i] = p
				}
				if !cand.Reachable {
					return
				}
				if atLeast == 0 {
					// An automatic failover: the old writer was just killed, but WAL it had
					// sent may still be landing. While the WAL receiver still says streaming
					// it has not yet flushed what it holds and exited: a position read now
					// can be short of what the reader will have (the asynchronous bench's
					// stuck reader, failover_follow.go). Read again until it has stopped.
					if p.rcvStatus != "streaming" || time.Now().After(settle) {
						return
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if cand.Replayed > atLeast || time.Now().After(deadline) {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	tl := failover.Timelines{Current: writerTLI}
	var histTLI uint32
	for _, p := range hist {
		if p.histTLI > histTLI && p.history != "" {
			if sp, err := failover.ParseHistory(p.history); err == nil {
				histTLI, tl.SwitchPoints = p.histTLI, sp
			}
		}
	}
	tl.Current = max(tl.Current, histTLI)
	return out, tl
}

// positionSettle bounds how long the choice waits for a reader's WAL receiver to notice that
// the killed writer is gone (its socket's end): normally a few milliseconds.
const positionSettle = time.Second

// divergedReaders names the readers that received WAL of the old timeline past the point where
// the new writer's timeline begins (possible in asynchronous mode: the promoted reader need not
// be the one that received the most), with why: such a reader can never follow the new
// timeline and must be rewound.
func (c *Cluster) divergedReaders(ctx context.Context, nw *member, cands []failover.Candidate, chosen string) map[string]string {
	var from uint32
	for _, cand := range cands {
		if cand.ID == chosen {
			from = cand.Timeline
		}
	}
	if from == 0 {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(qctx, nw.node.DSN("postgres"))
	if err != nil {
		return nil
	}
	defer conn.Close(context.Background())
	var hist *string
	if err := conn.QueryRow(qctx, `SELECT pg_read_file('pg_wal/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || '.history', 0, 1048576, true)`).Scan(&hist); err != nil || hist == nil {
		return nil
	}
	sp, err := failover.ParseHistory(*hist)
	if err != nil {
		return nil
	}
	end, ok := sp[from]
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, cand := range cands {
		if pos := max(cand.Received, cand.Replayed); cand.ID != chosen && cand.Reachable && cand.Timeline == from && pos > end {
			out[cand.ID] = fmt.Sprintf("had received WAL of timeline %d up to %s, past %s where the new writer's timeline begins", from, failover.FormatLSN(pos), failover.FormatLSN(end))
		}
	}
	return out
}

// position is what a reader holds: its WAL positions, the timeline of the newest of them, and
// its newest timeline history file.
type position struct {
	inRecovery bool
	// rcvStatus is pg_stat_wal_receiver.status ("" when the reader has no WAL receiver).
	rcvStatus          string
	received, replayed uint64
	timeline           uint32
	histTLI            uint32
	history            string
}

// readPosition reads a reader's position over its private socket, in one query, on the
// connection its polls use (no connection to set up in the middle of a failover). One
// goroutine per member, which the run goroutine waits for.
func (mb *member) readPosition(ctx context.Context, node *pgproc.Node) (position, error) {
	var p position
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := mb.onPrivateConn(qctx, node, func(conn *pgx.Conn) error {
		return mb.queryPosition(qctx, conn, &p)
	})
	return p, err
}

func (mb *member) queryPosition(qctx context.Context, conn *pgx.Conn, p *position) error {
	var recv, replay, hist, histName *string
	var rcvTLI *int64
	var segSize int64
	var files []string
	err := conn.QueryRow(qctx, `WITH w AS (SELECT name FROM pg_ls_waldir())
		SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
			(SELECT received_tli::bigint FROM pg_stat_wal_receiver),
			(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
			coalesce((SELECT array_agg(name) FROM w WHERE name ~ '^[0-9A-F]{24}$'), '{}'),
			(SELECT max(name) FROM w WHERE name ~ '^[0-9A-F]{8}\.history$'),
			(SELECT pg_read_file('pg_wal/' || max(name), 0, 1048576, true) FROM w WHERE name ~ '^[0-9A-F]{8}\.history$'),
			coalesce((SELECT status FROM pg_stat_wal_receiver), '')`).
		Scan(&p.inRecovery, &recv, &replay, &rcvTLI, &segSize, &files, &histName, &hist, &p.rcvStatus)
	if err != nil {
		return err
	}
	p.received, _ = parseLSNPtr(recv)
	p.replayed, _ = parseLSNPtr(replay)
	p.timeline = failover.TimelineAt(files, max(p.received, p.replayed), uint64(segSize))
	if rcvTLI != nil && *rcvTLI > 0 {
		p.timeline = max(p.timeline, uint32(*rcvTLI))
	}
	if histName != nil && hist != nil {
		p.histTLI, p.history = failover.HistoryTimeline(*histName), *hist
	}
	return nil
}

func parseLSNPtr(s *string) (uint64, error) {
	if s == nil {
		return 0, nil
	}
	return failover.ParseLSN(*s)
}

// promote runs pg_promote on a reader and waits for it to leave recovery, asking every 10 ms
// (pg_promote's own wait looks every 100 ms), on the connection the choice just used.
func (mb *member) promote(ctx context.Context) error {
	var signalled bool
	err := mb.onPrivateConn(ctx, mb.node, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_promote(false)").Scan(&signalled)
	})
	if err != nil {
		return err
	}
	if !signalled {
		return errors.New("pg_promote could not signal the postmaster")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		inRecovery := true
		err := mb.onPrivateConn(ctx, mb.node, func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
		})
		if err != nil {
			return err
		}
		if !inRecovery {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the promotion did not finish within 60 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// onPrivateConn runs f on the member's control-plane connection (the one its polls use),
// opening it if there is none; a kept connection that fails is replaced and f tried once
// more. Run goroutine only, or one goroutine per member that it waits for.
func (mb *member) onPrivateConn(ctx context.Context, node *pgproc.Node, f func(*pgx.Conn) error) error {
	for {
		kept := mb.pollConn != nil
		if !kept {
			cfg, err := pgx.ParseConfig(node.DSN("postgres"))
			if err != nil {
				return err
			}
			cfg.RuntimeParams["application_name"] = "borealis-controlplane"
			if mb.pollConn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
				mb.pollConn = nil
				return err
			}
		}
		err := f(mb.pollConn)
		if err == nil {
			return nil
		}
		mb.closePoll()
		if !kept || ctx.Err() != nil {
			return err
		}
	}
}

// primaryConninfo is how a reader reaches the writer w for streaming; application_name names
// the reader in synchronous_standby_names.
func (c *Cluster) primaryConninfo(w store.Member, readerID string) string {
	cfg := pgproc.Config{DataDir: w.DataDir, Port: w.Port}
	if mb := c.memberByID(w.ID); mb != nil {
		cfg = mb.config(w)
	}
	n, err := pgproc.New(cfg)
	if err != nil {
		return ""
	}
	return n.ReplicationConninfo(slotName(readerID))
}

func (c *Cluster) writerRec() (store.Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rec.Members {
		if r.Writer {
			return r, true
		}
	}
	return store.Member{}, false
}

// follow points a running reader at the current writer (PostgreSQL 15 reloads primary_conninfo
// without a restart; the default recovery_target_timeline, latest, follows the promotion).
func (c *Cluster) follow(ctx context.Context, r store.Member) error {
	w, ok := c.writerRec()
	if !ok {
		return errors.New("no writer")
	}
	mb := c.memberByID(r.ID)
	if mb == nil || mb.node == nil || !mb.node.Running() {
		return nil // it is pointed at the writer when it starts (rejoin)
	}
	// On the reader's kept connection (its polls'), not a new one: the failover's other
	// goroutines each use their own member's.
	return mb.onPrivateConn(ctx, mb.node, func(conn *pgx.Conn) error {
		return execAll(ctx, conn,
			"ALTER SYSTEM SET primary_conninfo = "+pgproc.Quote(c.primaryConninfo(w, r.ID)),
			"ALTER SYSTEM SET primary_slot_name = "+pgproc.Quote(slotName(r.ID)),
			"ALTER SYSTEM SET recovery_target_timeline = 'latest'",
			"SELECT pg_reload_conf()")
	})
}

// needsRejoin reports whether a member's data must not be started as it is: a fenced former
// writer, or a reader record whose data directory has no standby.signal (it would come up as
// a second writer).
func needsRejoin(rec store.Member) bool {
	if rec.Writer || !rec.Created {
		return false
	}
	if rec.Fenced {
		return true
	}
	_, err := os.Stat(filepath.Join(rec.DataDir, "standby.signal"))
	return err != nil
}

// RejoinLimit bounds one rejoin (fence, rewind or clone, start, first streaming) in all; within
// it, a rejoin is bounded by progress, as making a data directory is: it is given up only when
// nothing under the data directory has changed for MakeStall. A flat StartTimeout used to cut
// it: at load 30 a rewound former writer's start as a standby was not ready after 90 s, was
// killed during its recovery, and the retry's pg_rewind could not run crash recovery on that
// standby (single-user mode refuses standby mode), so it was cloned afresh.
const RejoinLimit = 15 * time.Minute

// rejoin brings a fenced former writer (or any reader without standby.signal) back as a
// reader of the current writer's timeline: pg_rewind when its data is intact, else a fresh
// clone by pg_basebackup. It never starts the data as a writer.
func (mb *member) rejoin(rec store.Member) error {
	lctx, lcancel := context.WithTimeout(mb.c.ctx, RejoinLimit)
	defer lcancel()
	ctx, cancel := untilStalled(lctx, rec.DataDir, MakeStall, 5*time.Second)
	defer cancel()
	return stallErr(ctx, mb.rejoinWithin(ctx, rec))
}

func (mb *member) rejoinWithin(ctx context.Context, rec store.Member) error {
	w, ok := mb.c.writerRec()
	writer := mb.c.writerNode()
	if !ok || writer == nil {
		return errors.New("waiting for the writer before rejoining as a reader")
	}
	if mb.node == nil {
		node, err := pgproc.New(mb.config(rec))
		if err != nil {
			return err
		}
		mb.node = node
	}
	// Whatever still runs on this data directory goes first.
	if err := mb.node.Fence(); err != nil {
		return err
	}
	slot := slotName(rec.ID)
	_ = execOn(ctx, writer, "SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", slot)
	forceClone := false
	for {
		how, node, err := mb.rejoinOnce(ctx, rec, w, writer, slot, forceClone)
		if err != nil {
			return err
		}
		if how == "pg_rewind" {
			// A rewound server that cannot reach the writer's timeline (it needs WAL the writer
			// no longer has) would wait forever: clone it instead.
			if err := waitStreaming(ctx, node, writer, 20*time.Second); err != nil {
				mb.event("member.rewind-stuck", "%s was rewound but does not stream the writer's timeline (%v); cloning it afresh", mb.id, err)
				_ = node.Fence()
				forceClone = true
				continue
			}
		}
		mb.node = node
		mb.applied = mb.settingsFor(false, rec.Capacity)
		mb.enforce(rec.Capacity)
		mb.update(func(r *store.Member) { r.Fenced = false })
		mb.event("member.rejoined", "%s rejoined as a reader of %s by %s (pid %d)", mb.id, w.ID, how, node.PID())
		return nil
	}
}

// rejoinOnce rewinds (or, when that fails or forceClone, clones) the member's data from the
// writer, marks it a standby of the writer and starts it.
func (mb *member) rejoinOnce(ctx context.Context, rec, w store.Member, writer *pgproc.Node, slot string, forceClone bool) (string, *pgproc.Node, error) {
	how := "pg_rewind"
	var err error
	switch {
	case forceClone:
		err = errors.New("the rewound copy did not stream")
	case !pgproc.DataIntact(rec.DataDir):
		err = errors.New("data directory missing")
	default:
		if err = checkpointForRewind(ctx, writer); err == nil {
			_, err = mb.node.Rewind(ctx, writer.DSN("postgres"))
		}
	}
	if err != nil {
		if !forceClone {
			mb.event("member.rewind-failed", "%s cannot be rewound (%s); cloning it afresh from the writer", mb.id, firstLines(err.Error(), 6))
		}
		how = "a fresh clone"
		if err := os.RemoveAll(rec.DataDir); err != nil {
			return "", nil, err
		}
		_ = execOn(ctx, writer, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", slot)
		if err := pgproc.BaseBackup(ctx, writer, mb.node, slot); err != nil {
			return "", nil, err
		}
	}
	if err := mb.node.MarkStandby(); err != nil {
		return "", nil, err
	}
	// A rewound former writer may carry the old writer's synchronous_standby_names; a reader
	// must not wait for anyone.
	if err := mb.node.SetAutoConf(map[string]string{
		"primary_conninfo":          pgproc.Quote(mb.c.primaryConninfo(w, rec.ID)),
		"primary_slot_name":         pgproc.Quote(slot),
		"recovery_target_timeline":  "'latest'",
		"synchronous_standby_names": "''",
	}); err != nil {
		return "", nil, err
	}
	// A standby needs max_connections (and the other capacity settings a hot standby checks)
	// at least its writer's; what pg_rewind or the clone copied is the writer's own.
	want := mb.settingsFor(false, rec.Capacity)
	if err := writeCapacityConf(rec.DataDir, want); err != nil {
		return "", nil, err
	}
	node, err := pgproc.New(mb.config(rec))
	if err != nil {
		return "", nil, err
	}
	if err := mb.startNode(ctx, node); err != nil {
		_ = node.Fence()
		return "", nil, err
	}
	return how, node, nil
}

// waitStreaming waits until node's WAL receiver streams the writer's current timeline.
//
// Only an answer counts against limit: the rewound server's WAL receiver seen not streaming
// the writer's timeline (or absent), or an error a server sent. A probe that could not connect, to the writer or to the
// server, says nothing about the rewind: under CPU starvation a 3 s connect timed out on the
// writer and a good rewind was thrown away for a clone. Those wait up to 4 x limit, and each
// look may take up to limit/2 (a new session can take seconds to start on a starved machine;
// a look that is answered returns at once).
func waitStreaming(ctx context.Context, node, writer *pgproc.Node, limit time.Duration) error {
	start := time.Now()
	deadline, hard := start.Add(limit), start.Add(4*limit)
	last := "no answer"
	for {
		answered := true
		qctx, cancel := context.WithTimeout(ctx, limit/2)
		var walfile string
		var status *string
		var tli *int64
		wc, err := pgx.Connect(qctx, writer.DSN("postgres"))
		if err == nil {
			err = wc.QueryRow(qctx, "SELECT pg_walfile_name(pg_current_wal_lsn())").Scan(&walfile)
			wc.Close(context.Background())
		}
		if err == nil {
			var rc *pgx.Conn
			if rc, err = pgx.Connect(qctx, node.DSN("postgres")); err == nil {
				err = rc.QueryRow(qctx, "SELECT status, received_tli::bigint FROM pg_stat_wal_receiver").Scan(&status, &tli)
				rc.Close(context.Background())
			}
		}
		cancel()
		if err == nil && len(walfile) >= 8 && status != nil && tli != nil {
			want, _ := strconv.ParseInt(walfile[:8], 16, 64)
			if *status == "streaming" && *tli == want {
				return nil
			}
			last = fmt.Sprintf("WAL receiver %s on timeline %d, writer on %d", *status, *tli, want)
		} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			// An error the server sent (say "the database system is starting up": a rewound
			// server that cannot reach consistency) is an answer; a timeout is not.
			var pe *pgconn.PgError
			last, answered = firstLines(err.Error(), 1), errors.As(err, &pe)
		} else {
			last = "no WAL receiver"
		}
		if now := time.Now(); now.After(hard) || (answered && now.After(deadline)) {
			return errors.New(last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// wantSyncNames is synchronous_standby_names for the cluster's writer.
func (c *Cluster) wantSyncNames() string {
	if mode, _ := c.failoverSettings(); mode != failover.Synchronous || c.fo.sync.noStandbys {
		return ""
	}
	var names []string
	for _, r := range c.allRecs() {
		if !r.Writer {
			names = append(names, `"`+slotName(r.ID)+`"`)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "ANY 1 (" + strings.Join(names, ", ") + ")"
}

// applyDurability sets synchronous_standby_names on the writer when it differs from what the
// cluster's mode wants.
func (c *Cluster) applyDurability(ctx context.Context) {
	w := c.writerMember()
	if w == nil || w.node == nil || !w.node.Running() || w.status() != StatusAvailable {
		return
	}
	want := c.wantSyncNames()
	if c.fo.syncApplied != nil && *c.fo.syncApplied == want {
		return
	}
	err := execOn(ctx, w.node, "ALTER SYSTEM SET synchronous_standby_names = "+pgproc.Quote(want))
	if err == nil {
		err = execOn(ctx, w.node, "SELECT pg_reload_conf()")
	}
	if err != nil {
		c.m.event(c.rec.Name, w.id, "cluster.durability-failed", "setting synchronous_standby_names: "+err.Error())
		return
	}
	c.fo.syncApplied = &want
	c.mu.Lock()
	c.syncNames = want
	c.mu.Unlock()
}

// kick wakes the run goroutine early (after a settings change).
func (c *Cluster) kick() {
	select {
	case c.kickCh <- struct{}{}:
	default:
	}
}

// failoverSettings are the cluster's durability mode and grace period.
func (c *Cluster) failoverSettings() (string, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return durability(c.rec), grace(c.rec)
}

// DataDir is a member's data directory (for tools that inject failures, like bench/failover).
func (c *Cluster) DataDir(id string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.memberRec(id)
	if r == nil {
		return "", fmt.Errorf("DB instance %q: %w", id, ErrMemberNotFound)
	}
	return r.DataDir, nil
}

// watchFollowing records when a reader first streams from the promoted writer nw: until then
// a synchronous writer's commits could not be acknowledged, so this is what closing the
// window after a promotion (synchronous_standby_names set before pg_promote, not after the
// re-pointing) would add to the downtime. It watches from a goroutine of its own.
func (c *Cluster) watchFollowing(nw *member, promoted time.Time) {
	node := nw.node
	c.fo.events.Add(1)
	go func() {
		defer c.fo.events.Done()
		ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, node.DSN("postgres"))
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		for ctx.Err() == nil {
			var who *string
			err := conn.QueryRow(ctx, "SELECT min(application_name) FROM pg_stat_replication WHERE state = 'streaming' AND flush_lsn IS NOT NULL").Scan(&who)
			if err != nil {
				return
			}
			if who != nil {
				c.m.event(c.rec.Name, nw.id, "cluster.failover-followed", fmt.Sprintf("first reader (%s) streaming from the new writer %s %.2f s after the promotion: commits made meanwhile had no synchronous standby",
					*who, nw.id, time.Since(promoted).Seconds()))
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}
