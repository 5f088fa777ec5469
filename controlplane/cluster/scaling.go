package cluster

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/capacity"
	"github.com/borealisdb/borealis/controlplane/router"
	"github.com/borealisdb/borealis/controlplane/scaling"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// StatusScalingCapacity is a member (and its cluster) while a capacity change restarts it.
const StatusScalingCapacity = "scaling-capacity"

// Scaling results, the label of the scaling events counter.
const (
	ResultApplied    = "applied"
	ResultRolledBack = "rolled_back"
	ResultForced     = "forced"
)

// capacityChange is a change waiting for a scaling point.
type capacityChange struct {
	from, to      float64
	reason        string
	started       time.Time
	deadline      time.Time
	timeout       time.Duration
	timeoutAction string
	restartFor    []string
	// blockedBy is every blocker seen while waiting, for the event that ends the wait.
	blockedBy []string
	// params, of a change forced by a parameter group (paramgroups.go), are the static
	// parameters its restart applies.
	paramGroup string
	params     []string
}

// CapacityInput is `modify-current-capacity`, as aws rds modify-current-db-cluster-capacity.
type CapacityInput struct {
	Capacity             float64 `json:"Capacity"`
	SecondsBeforeTimeout int     `json:"SecondsBeforeTimeout,omitempty"`
	TimeoutAction        string  `json:"TimeoutAction,omitempty"`
}

// CapacityOutput is its answer.
type CapacityOutput struct {
	DBClusterIdentifier  string  `json:"DBClusterIdentifier"`
	PendingCapacity      float64 `json:"PendingCapacity"`
	CurrentCapacity      float64 `json:"CurrentCapacity"`
	SecondsBeforeTimeout int     `json:"SecondsBeforeTimeout"`
	TimeoutAction        string  `json:"TimeoutAction"`
}

// ModifyCurrentCapacity asks the writer to change capacity now; the change is applied in place
// or at a scaling point by the cluster's supervision, and reported in events.
func (m *Manager) ModifyCurrentCapacity(name string, in CapacityInput) (CapacityOutput, error) {
	c, err := m.get(name)
	if err != nil {
		return CapacityOutput{}, err
	}
	c.mu.Lock()
	sc := c.rec.Scaling
	c.mu.Unlock()
	if in.Capacity < MinACU || in.Capacity > MaxACU || math.Mod(in.Capacity*2, 1) != 0 {
		return CapacityOutput{}, fieldErr("Capacity", "%g ACU is not allowed: use a multiple of 0.5 from %g to %d", in.Capacity, MinACU, MaxACU)
	}
	if in.Capacity < sc.MinCapacity || in.Capacity > sc.MaxCapacity {
		return CapacityOutput{}, fieldErr("Capacity", "%g ACU is outside the cluster's range %g-%g ACU (change it with `borealis cluster modify`)", in.Capacity, sc.MinCapacity, sc.MaxCapacity)
	}
	if in.SecondsBeforeTimeout == 0 {
		in.SecondsBeforeTimeout = sc.SecondsBeforeTimeout
	}
	if in.SecondsBeforeTimeout < 10 || in.SecondsBeforeTimeout > 600 {
		return CapacityOutput{}, fieldErr("SecondsBeforeTimeout", "%d is out of range: use 10 to 600", in.SecondsBeforeTimeout)
	}
	if in.TimeoutAction == "" {
		in.TimeoutAction = sc.TimeoutAction
	}
	if in.TimeoutAction != RollbackCapacityChange && in.TimeoutAction != ForceApplyCapacityChange {
		return CapacityOutput{}, fieldErr("TimeoutAction", "%q is not one of %s, %s", in.TimeoutAction, RollbackCapacityChange, ForceApplyCapacityChange)
	}
	// These are the cluster's state, not a name clash: StateError (InvalidDBClusterStateFault,
	// as Aurora answers), not ConflictError (DBClusterAlreadyExistsFault).
	c.mu.Lock()
	status := c.rec.Status
	c.mu.Unlock()
	switch status {
	case StatusStopped, StatusStopping:
		return CapacityOutput{}, &StateError{fmt.Sprintf("cluster %s is %s: start it first (`borealis cluster start --name %s`)", name, status, name)}
	case StatusPaused:
		return CapacityOutput{}, &StateError{fmt.Sprintf("cluster %s is paused: a connection to either endpoint resumes it, at the capacity it had", name)}
	}
	w := c.writerMember()
	if w == nil {
		return CapacityOutput{}, &StateError{fmt.Sprintf("cluster %s has no writer", name)}
	}
	cur := w.record()
	if cur.Status != StatusAvailable {
		return CapacityOutput{}, &StateError{fmt.Sprintf("the writer %s is %s; try again when it is available", w.id, cur.Status)}
	}
	w.scaleMu.Lock()
	defer w.scaleMu.Unlock()
	if p := w.pendingView; p != nil {
		return CapacityOutput{}, &StateError{fmt.Sprintf("a capacity change from %g to %g ACU is in progress (started %s)", p.from, p.to, p.started.Format(time.RFC3339))}
	}
	if w.request != nil {
		return CapacityOutput{}, &StateError{fmt.Sprintf("a capacity change to %g ACU is already requested", w.request.Capacity)}
	}
	req := in
	w.request = &req
	return CapacityOutput{DBClusterIdentifier: name, PendingCapacity: in.Capacity, CurrentCapacity: cur.Capacity,
		SecondsBeforeTimeout: in.SecondsBeforeTimeout, TimeoutAction: in.TimeoutAction}, nil
}

// scaleOnce advances every member's capacity: a pending change looks for its scaling point, a
// manual request starts, or the decision function may start one.
func (c *Cluster) scaleOnce() {
	for _, mb := range c.members {
		if c.ctx.Err() != nil {
			return
		}
		mb.scaleTick()
	}
}

func (mb *member) scaleTick() {
	rec := mb.record()
	if mb.pending != nil {
		mb.progress(rec)
		return
	}
	mb.scaleMu.Lock()
	req := mb.request
	mb.request = nil
	mb.scaleMu.Unlock()
	if rec.Status != StatusAvailable || mb.node == nil {
		return
	}
	now := time.Now()
	if req != nil {
		if req.Capacity == rec.Capacity {
			mb.event("capacity.unchanged", "capacity of %s is already %g capacity units", mb.id, rec.Capacity)
			return
		}
		mb.begin(rec, req.Capacity, "The customer initiated the scaling", time.Duration(req.SecondsBeforeTimeout)*time.Second, req.TimeoutAction)
		return
	}
	if !mb.c.m.opts.Autoscale {
		return
	}
	o, ok := mb.observe(rec, now)
	if !ok {
		return
	}
	d, st := scaling.Decide(mb.c.m.policy, mb.scaleState, o)
	mb.scaleState = st
	mb.statsMu.Lock()
	mb.lastDecision = d.Reason
	mb.statsMu.Unlock()
	if d.Changed(rec.Capacity) {
		mb.c.mu.Lock()
		sc := mb.c.rec.Scaling
		mb.c.mu.Unlock()
		mb.begin(rec, d.Target, d.Reason, time.Duration(sc.SecondsBeforeTimeout)*time.Second, sc.TimeoutAction)
	}
}

// observe gathers the decision's inputs: CPU from the node's cgroup (share of its quota) or,
// unenforced, from the node agent; sessions from the last poll; memory from the agent (PSS, no
// page cache); vector index sizes; OOM kills in the cgroup since the last look.
func (mb *member) observe(rec storeMember, now time.Time) (scaling.Observation, bool) {
	mb.c.mu.Lock()
	sc := mb.c.rec.Scaling
	mb.c.mu.Unlock()
	mb.statsMu.Lock()
	st := mb.stats
	mb.statsMu.Unlock()
	if st.sampledAt.IsZero() {
		return scaling.Observation{}, false
	}
	o := scaling.Observation{Now: now, Capacity: rec.Capacity, Min: sc.MinCapacity, Max: sc.MaxCapacity,
		MaxConnections: maxConnections(mb.applied, rec.Capacity), VectorIndexBytes: st.vectorIndexBytes}
	for _, n := range st.connections {
		o.Connections += int(n)
	}
	if st.cpuWindow > 0 {
		o.CPU1m, o.CPU5m, o.CPUWindow = st.cpu1m, st.cpu5m, st.cpuWindow
	} else if a := st.agent; a != nil && a.CPUPercent1m != nil && a.CPUPercent5m != nil {
		o.CPU1m, o.CPU5m = *a.CPUPercent1m, *a.CPUPercent5m
		o.CPUWindow = time.Duration(min(st.uptimeSeconds, 300) * float64(time.Second))
	}
	if a := st.agent; a != nil && a.MemoryBytes != nil {
		o.MemoryBytes = *a.MemoryBytes
	}
	if mb.oomSeen >= 0 && st.oomKills > mb.oomSeen {
		o.OOMKills = st.oomKills - mb.oomSeen
	}
	mb.oomSeen = st.oomKills
	return o, true
}

func maxConnections(applied []capacity.Setting, acu float64) int {
	if v, err := strconv.Atoi(capacity.Map(applied)["max_connections"]); err == nil {
		return v
	}
	return capacity.MaxConnections(acu)
}

func fmtACU(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// begin starts a change: in place at once when no restart-type setting changes, else it waits
// for a scaling point.
func (mb *member) begin(rec storeMember, to float64, reason string, timeout time.Duration, action string) {
	from := rec.Capacity
	mb.event("capacity.scaling", "Scaling DB cluster from %s capacity units to %s capacity units for this reason: %s", fmtACU(from), fmtACU(to), reason)
	want := mb.settingsFor(rec.Writer, to)
	restart := capacity.RestartNeeded(mb.applied, want)
	if len(restart) == 0 {
		if err := mb.applyInPlace(rec, from, to, want); err != nil {
			mb.event("capacity.failed", "Scaling DB cluster from %s capacity units to %s capacity units failed: %v", fmtACU(from), fmtACU(to), err)
			mb.scaleState = mb.scaleState.Applied(from, from, time.Now())
			return
		}
		mb.done(from, to, ResultApplied, "in place (cgroup limits and reloaded settings, no restart)")
		return
	}
	if o := mb.c.m.opts.ScalingTimeout; o > 0 {
		timeout = o
	}
	now := time.Now()
	mb.pending = &capacityChange{from: from, to: to, reason: reason, started: now, deadline: now.Add(timeout),
		timeout: timeout, timeoutAction: action, restartFor: restart}
	mb.scaleMu.Lock()
	mb.pendingView = mb.pending
	mb.scaleMu.Unlock()
	mb.event("capacity.waiting", "%s needs a restart (%s changes): looking for a scaling point for up to %s, then %s",
		mb.id, strings.Join(restart, ", "), timeout, action)
	mb.progress(mb.record())
}

// blockers lists what keeps the member from a scaling point: the agent's reasons and the
// router's sessions in a transaction on this node.
func (mb *member) blockers(rec storeMember) []string {
	var out []string
	mb.statsMu.Lock()
	agent, agentErr := mb.stats.agent, mb.stats.agentErr
	idleTx := mb.stats.connections["idle_in_transaction"]
	mb.statsMu.Unlock()
	switch {
	case agent != nil && agent.ScalingPoint != nil && !*agent.ScalingPoint:
		out = append(out, "node agent: "+strings.Join(agent.Blockers, ", "))
	case agent == nil && idleTx > 0:
		out = append(out, fmt.Sprintf("%d session(s) idle in transaction (node agent unavailable: %s)", idleTx, agentErr))
	}
	addr := backendAddr(rec)
	var pinned []string
	for _, s := range mb.c.router.Sessions() {
		if s.Backend == addr && (s.TxStatus == 'T' || s.TxStatus == 'E') {
			pinned = append(pinned, fmt.Sprintf("%s@%s in a transaction (session since %s)", s.User, s.Database, s.Started.UTC().Format(time.TimeOnly)))
		}
	}
	if len(pinned) > 0 {
		out = append(out, "router sessions: "+strings.Join(pinned, "; "))
	}
	return out
}

// progress looks for the scaling point of a pending change; at the deadline the timeout
// action decides.
func (mb *member) progress(rec storeMember) {
	p := mb.pending
	if rec.Status != StatusAvailable || mb.node == nil {
		return // a node that died is restarted by supervision; the search goes on after
	}
	b := mb.blockers(rec)
	for _, x := range b {
		kind := x // the agent's reasons are short; the router's list of sessions is not
		if strings.HasPrefix(x, "router sessions") {
			kind = "router sessions in a transaction"
		}
		if !slices.Contains(p.blockedBy, kind) {
			p.blockedBy = append(p.blockedBy, kind)
		}
	}
	switch {
	case len(b) == 0:
		how := "at a scaling point, with a restart"
		if waited := time.Since(p.started); len(p.blockedBy) > 0 {
			how = fmt.Sprintf("at a scaling point found after %s (blocked until then by %s), with a restart", waited.Round(100*time.Millisecond), strings.Join(p.blockedBy, ", "))
		}
		mb.restartApply(rec, p, ResultApplied, how)
	case time.Now().Before(p.deadline):
		return
	case p.timeoutAction == ForceApplyCapacityChange:
		mb.event("capacity.timeout", "Scaling DB cluster from %s capacity units to %s capacity units: no scaling point in %s (blockers: %s); forcing the change: sessions in a transaction are ended (SQLSTATE 57P01) and may retry",
			fmtACU(p.from), fmtACU(p.to), p.timeout, strings.Join(b, " | "))
		mb.restartApply(rec, p, ResultForced, "forced after the timeout, with a restart")
	default:
		mb.clearPending()
		mb.countResult(ResultRolledBack)
		mb.scaleState = mb.scaleState.Applied(p.from, p.from, time.Now())
		mb.event("capacity.rolled-back", "Scaling DB cluster from %s capacity units to %s capacity units was rolled back: no scaling point found in %s; blockers: %s",
			fmtACU(p.from), fmtACU(p.to), p.timeout, strings.Join(b, " | "))
	}
}

func (mb *member) clearPending() {
	mb.pending = nil
	mb.scaleMu.Lock()
	mb.pendingView = nil
	mb.scaleMu.Unlock()
}

// applyInPlace raises limits before settings and lowers them after, so the node never runs
// with settings larger than its cgroup.
func (mb *member) applyInPlace(rec storeMember, from, to float64, want []capacity.Setting) error {
	up := to > from
	if up {
		if err := mb.setLimits(to); err != nil {
			return err
		}
	}
	if err := writeCapacityConf(rec.DataDir, want); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(mb.c.ctx, 10*time.Second)
	defer cancel()
	if err := reloadOn(ctx, mb.node); err != nil {
		return fmt.Errorf("reloading the settings: %w", err)
	}
	if !up {
		if err := mb.setLimits(to); err != nil {
			return err
		}
	}
	mb.applied = want
	mb.update(func(r *storeMember) { r.Capacity = to })
	return nil
}

func (mb *member) setLimits(acu float64) error {
	if mb.group == nil {
		return nil
	}
	return mb.group.SetLimits(capacity.MemoryBytes(acu), capacity.CPUs(acu))
}

// restartApply restarts the node with the new settings. New clients wait at the router while
// the member is not available; sessions on it are ended by the fast shutdown.
func (mb *member) restartApply(rec storeMember, p *capacityChange, result, how string) {
	mb.clearPending()
	want := mb.settingsFor(rec.Writer, p.to)
	mb.setStatus(StatusScalingCapacity)
	up := p.to > p.from
	ctx, cancel := context.WithTimeout(mb.c.ctx, StartTimeout)
	defer cancel()
	if rec.Writer {
		mb.c.router.Hold(fmt.Sprintf("writer %s is changing capacity", mb.id))
		defer mb.c.router.Release()
	}
	// Idle sessions wait at a transaction boundary and move to the restarted node; a forced
	// change closes the ones still in a transaction (57P01) after a short grace.
	opts := router.MoveOptions{Reason: "capacity change", ClosePinned: true}
	if result == ResultForced {
		opts.BoundaryTimeout = time.Second
	}
	addr := backendAddr(rec)
	parked := mb.c.router.Park(ctx, addr, opts)
	err := func() error {
		if up {
			if err := mb.setLimits(p.to); err != nil {
				return err
			}
		}
		if err := writeCapacityConf(rec.DataDir, want); err != nil {
			return err
		}
		mb.closePoll()
		if err := mb.node.Stop(ctx); err != nil {
			return err
		}
		node, err := pgproc.New(mb.config(rec))
		if err != nil {
			return err
		}
		if err := node.Start(ctx); err != nil {
			return err
		}
		mb.node = node
		mb.pid.Store(int64(node.PID()))
		mb.enforce(p.to)
		return nil
	}()
	rep := parked.Resume(ctx, addr)
	if rep.Moved+rep.Closed+rep.Failed > 0 {
		mb.event("member.sessions-moved", "%s", movedMessage(rep, "the restarted node"))
	}
	if err != nil {
		mb.setStatus(StatusFailed)
		mb.event("capacity.failed", "Scaling DB cluster from %s capacity units to %s capacity units failed: %v", fmtACU(p.from), fmtACU(p.to), err)
		return
	}
	mb.applied = want
	mb.update(func(r *storeMember) { r.Capacity = p.to; r.Status = StatusAvailable })
	mb.done(p.from, p.to, result, how)
	mb.paramsAppliedByRestart(p, result)
}

func (mb *member) done(from, to float64, result, how string) {
	mb.countResult(result)
	mb.scaleState = mb.scaleState.Applied(from, to, time.Now())
	mb.event("capacity.changed", "Scaled DB cluster from %s capacity units to %s capacity units %s", fmtACU(from), fmtACU(to), how)
}

func (mb *member) countResult(result string) {
	m := mb.c.m
	m.eventsMu.Lock()
	m.scaleResults[result]++
	m.eventsMu.Unlock()
}

// ScalingResults are the capacity changes by result since this control plane started.
func (m *Manager) ScalingResults() map[string]int64 {
	m.eventsMu.Lock()
	defer m.eventsMu.Unlock()
	out := map[string]int64{ResultApplied: 0, ResultRolledBack: 0, ResultForced: 0}
	for k, v := range m.scaleResults {
		out[k] = v
	}
	return out
}

// pollCapacity samples the cgroup (CPU counter, limits, OOM kills) and the size of the
// borealis_hnsw indexes in the polled database.
func (mb *member) pollCapacity(ctx context.Context, conn *pgx.Conn, st *memberStats) {
	_ = conn.QueryRow(ctx, `SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'borealis_hnsw'`).Scan(&st.vectorIndexBytes)
	if mb.group == nil {
		return
	}
	acu := mb.record().Capacity
	if u, err := mb.group.CPUUsage(); err == nil {
		short, long := mb.c.m.opts.CPUWindows[0], mb.c.m.opts.CPUWindows[1]
		mb.cpu.add(st.sampledAt, u, long)
		st.cpu1m, _ = mb.cpu.percent(short, capacity.CPUs(acu))
		st.cpu5m, st.cpuWindow = mb.cpu.percent(long, capacity.CPUs(acu))
	}
	st.memLimit, st.cpuLimit, _ = mb.group.Limits()
	st.oomKills, _ = mb.group.OOMKills()
	st.enforced = true
}
