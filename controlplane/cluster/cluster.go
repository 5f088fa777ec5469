package cluster

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/borealisdb/borealis/controlplane/router"
	"github.com/borealisdb/borealis/controlplane/store"
)

// Cluster and member statuses.
const (
	StatusCreating   = "creating"
	StatusStarting   = "starting"
	StatusAvailable  = "available"
	StatusDegraded   = "degraded"
	StatusRestarting = "restarting"
	StatusFailed     = "failed"
	StatusStopped    = "stopped"
	StatusDeleting   = "deleting"
)

// Cluster is one running cluster: its record, its members and its router.
type Cluster struct {
	m *Manager

	mu      sync.Mutex
	rec     store.Cluster
	members []*member
	router  *router.Router
	// paramGen counts changes to the parameters its nodes must carry (paramgroups.go).
	paramGen atomic.Uint64
	// listening is set once both endpoints are open; listenErr is the last failure, recorded
	// as an event only when it changes. Only run() touches them.
	listening bool
	listenErr string
	// life pauses, resumes, stops, starts and reboots (state.go).
	life lifecycle

	fo           foState       // failover.go
	kickCh       chan struct{} // wakes run early
	lastFailover *FailoverInfo // under mu
	syncNames    string        // under mu: synchronous_standby_names applied on the writer

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *Manager) newCluster(rec store.Cluster) *Cluster {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{m: m, rec: rec, ctx: ctx, cancel: cancel, done: make(chan struct{}), kickCh: make(chan struct{}, 1),
		fo: foState{requests: make(chan failoverRequest)}}
	c.life.init()
	c.fo.probe.init(ctx)
	for i := range rec.Members {
		c.members = append(c.members, &member{c: c, id: rec.Members[i].ID})
	}
	c.paramGen.Store(1) // every member applies its group once it runs
	c.router = router.New(router.Config{Name: rec.Name, Backends: c, TLS: m.opts.TLS, HoldTimeout: m.opts.HoldTimeout,
		MaxClients: m.opts.MaxClientConnections, PrivateAddr: c.privateAddr, IdleSnapshotAfter: time.Second})
	c.restoreLifecycle()
	return c
}

// Name is the cluster identifier.
func (c *Cluster) Name() string { return c.rec.Name }

// Router is the cluster's router (for holding clients and reading session state).
func (c *Cluster) Router() *router.Router { return c.router }

// rec returns the member's record; call with c.mu held.
func (c *Cluster) memberRec(id string) *store.Member {
	for i := range c.rec.Members {
		if c.rec.Members[i].ID == id {
			return &c.rec.Members[i]
		}
	}
	return nil
}

func (c *Cluster) saveLocked() error {
	c.rec.Rev++ // the record journal keeps the newest revision (failover_record.go)
	return c.m.opts.Store.PutCluster(c.rec)
}

func (c *Cluster) setStatus(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.Status != status {
		c.rec.Status = status
		_ = c.saveLocked()
	}
}

// Writer implements router.Backends.
func (c *Cluster) Writer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fo.suspect {
		return "" // hold new clients while the writer fails its probes
	}
	for _, r := range c.rec.Members {
		if r.Writer && r.Status == StatusAvailable {
			return backendAddr(r)
		}
	}
	return ""
}

// Readers implements router.Backends.
func (c *Cluster) Readers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.rec.Members {
		if !r.Writer && r.Status == StatusAvailable {
			out = append(out, backendAddr(r))
		}
	}
	return out
}

// backendAddr is where the router reaches a node for a client: TCP on 127.0.0.1, where the
// node authenticates every role with SCRAM and the router relays it. The node's Unix socket
// trusts whoever reaches it and is for the control plane only (its directory is private).
func backendAddr(r store.Member) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port))
}

// SocketDir is the private directory holding a member's Unix socket (trusted, as the superuser
// or any role): for the control plane's own connections and session moves, never clients.
func SocketDir(r store.Member) string { return filepath.Dir(r.DataDir) }

// run brings the cluster up and supervises it until shutdown.
func (c *Cluster) run() {
	defer close(c.done)
	defer c.fo.events.Wait() // events recorded off the failover's critical path
	// Nodes outlive the control plane: one closed during a resume's boost must not keep it.
	defer c.endStartBoost()
	proberDone := make(chan struct{})
	go c.runProber(proberDone)
	defer func() { <-proberDone }()
	interval := c.m.opts.PollInterval
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		c.listen()
		c.step()
		// A writer that exits wakes supervision at once (restart or failover), not at the
		// next tick.
		var writerExited <-chan struct{}
		if w := c.writerMember(); w != nil && w.node != nil && w.node.Running() {
			writerExited = w.node.Exited()
		}
		// The writer prober (failover_probe.go) wakes the loop the moment its detector calls
		// for a promotion.
		select {
		case <-c.ctx.Done():
			return
		case <-writerExited:
		case <-c.fo.probe.wake:
		case <-ticker.C:
		case <-c.life.kick:
		case <-c.kickCh:
		case req := <-c.fo.requests:
			req.done <- c.failover(req.target, "", time.Time{})
		}
	}
}

// listen opens the endpoints once; failures are recorded and retried on the next tick.
func (c *Cluster) listen() {
	if c.listening {
		return
	}
	name := c.rec.Name
	host := c.m.opts.ListenAddress
	lc, err := c.router.Listen(router.ClusterEndpoint, net.JoinHostPort(host, strconv.Itoa(c.rec.Port)))
	if err == nil {
		if _, err = c.router.Listen(router.ReaderEndpoint, net.JoinHostPort(host, strconv.Itoa(c.rec.ReaderPort))); err != nil {
			lc.Close()
		}
	}
	if err != nil {
		if err.Error() != c.listenErr {
			c.listenErr = err.Error()
			c.m.event(name, "", "router.listen-failed", err.Error()+"; retrying every tick")
		}
		return
	}
	c.listening = true
}

// superviseOnce brings every member to "available": create, adopt or restart, writer first,
// then samples them, then derives the cluster status.
func (c *Cluster) superviseOnce() {
	if c.watchWriter() {
		c.kick() // the rest (rejoin of the old writer, polls) on the next round, at once
		return
	}
	writerUp := false
	for _, mb := range c.membersWriterFirst() {
		if c.ctx.Err() != nil {
			return
		}
		if !mb.isWriter() && !writerUp {
			continue // readers need the writer for a base backup and for streaming
		}
		mb.ensure()
		if mb.isWriter() {
			writerUp = mb.status() == StatusAvailable
			// A restart in place that gave up at the end of the grace period: fail over now,
			// not after the rest of this round.
			if !writerUp && c.watchWriter() {
				c.kick()
				return
			}
		}
	}
	c.repairFollowers() // readers that do not follow the writer (failover_follow.go)
	for _, mb := range c.members {
		if c.ctx.Err() != nil || c.promotionPending() {
			return
		}
		if mb.isWriter() && c.isSuspect() {
			continue // its probes fail; a poll would only wait for its timeout
		}
		mb.poll()
	}
	for _, mb := range c.members {
		if c.ctx.Err() != nil || c.promotionPending() {
			return
		}
		mb.syncParams()
	}
	// Both query the writer: given up the moment the prober finds it failing.
	c.guardSync(c.writerOpCtx())
	c.applyDurability(c.writerOpCtx())
	c.scaleOnce()
	c.deriveStatus()
}

func (c *Cluster) deriveStatus() {
	c.mu.Lock()
	prev := c.rec.Status
	if prev == StatusDeleting || prev == StatusStopping {
		c.mu.Unlock()
		return
	}
	all, writer := true, false
	for _, r := range c.rec.Members {
		// A node being rebooted on purpose is not a failure of the cluster.
		if r.Status != StatusAvailable && r.Status != StatusRebooting {
			all = false
		} else if r.Writer {
			writer = true
		}
	}
	status := StatusDegraded
	scalingNow := false
	for _, r := range c.rec.Members {
		scalingNow = scalingNow || r.Status == StatusScalingCapacity
	}
	switch {
	case scalingNow:
		status = StatusScalingCapacity
	case all && !c.listening:
		// Nodes up but an endpoint could not bind: no client can reach it.
		status = StatusIncompatibleNetwork
	case all:
		status = StatusAvailable
	case prev == StatusCreating || prev == StatusStarting || prev == StatusResuming:
		status = prev
	case !writer:
		status = StatusFailed
	}
	changed := status != prev
	if changed {
		c.rec.Status = status
		_ = c.saveLocked()
	}
	c.mu.Unlock()
	if changed {
		c.m.event(c.rec.Name, "", "cluster."+status, fmt.Sprintf("cluster %s is %s (was %s)", c.rec.Name, status, prev))
	}
}

// shutdown ends supervision and the router; with stopNodes the nodes are stopped too.
func (c *Cluster) shutdown(ctx context.Context, stopNodes bool) {
	c.cancel()
	<-c.done
	c.router.Close()
	for _, mb := range c.members {
		mb.closePoll()
	}
	c.closeSyncConn()
	if !stopNodes {
		return
	}
	// Readers first, so they do not log the writer's disappearance.
	for i := len(c.members) - 1; i >= 0; i-- {
		c.members[i].stop(ctx)
	}
	c.mu.Lock()
	if c.rec.Status != StatusDeleting && !c.rec.Paused {
		c.rec.Status = StatusStopped
	}
	_ = c.saveLocked()
	c.mu.Unlock()
}

// endpoint is host:port for a client on this host: the listen address, or 127.0.0.1 when the
// endpoints listen on every interface.
func (m *Manager) endpoint(port int) string {
	host := m.opts.ListenAddress
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Describe returns the cluster's description.
func (c *Cluster) Describe() Description {
	c.mu.Lock()
	rec := c.rec
	rec.Members = append([]store.Member(nil), c.rec.Members...)
	c.mu.Unlock()
	d := Description{DBClusterIdentifier: rec.Name, Status: rec.Status,
		Endpoint: c.m.endpoint(rec.Port), ReaderEndpoint: c.m.endpoint(rec.ReaderPort),
		Port: rec.Port, ReaderPort: rec.ReaderPort, ClusterCreateTime: rec.CreatedAt,
		ScalingConfigurationInfo: ScalingInfo(rec.Scaling), DBClusterParameterGroup: groupName(rec.ParameterGroup),
		DurabilityMode: durability(rec), FailoverGraceSeconds: int(grace(rec) / time.Second),
		EnabledLogsExports: enabledLogTypes(rec.LogExports), CapacityEnforcement: c.m.Enforcement()}
	describeMasterUser(&d, rec)
	for i, r := range rec.Members {
		md := MemberDescription{DBInstanceIdentifier: r.ID, IsClusterWriter: r.Writer, PromotionTier: r.PromotionTier,
			Status: r.Status, Capacity: r.Capacity, Port: r.Port, Fenced: r.Fenced}
		if i < len(c.members) {
			c.members[i].describeInto(&md)
			md.DBClusterParameterGroupStatus = "applying"
			if c.members[i].paramsApplied.Load() == c.paramGen.Load() {
				md.DBClusterParameterGroupStatus = "in-sync"
			}
		}
		if r.Status == StatusStopped {
			md.Capacity = 0 // a paused or stopped node uses nothing
		}
		if r.Writer {
			d.Capacity = md.Capacity
		}
		if r.Status == StatusScalingCapacity || md.PendingCapacity != nil {
			d.Status = StatusScalingCapacity
		}
		d.DBClusterMembers = append(d.DBClusterMembers, md)
	}
	d.MovedSessions = c.router.MovedSessions()
	d.RecoveredSessions = c.router.RecoveredSessions()
	if ps := c.router.BackendPool(); !ps.IsZero() {
		d.BackendPool = &BackendPool{Idle: ps.Idle, InUse: ps.InUse, Reused: ps.Reused, Opened: ps.Opened,
			Closed: ps.ClosedByReason(), DDLDrains: ps.DDLDrains, SettingsMisses: ps.SettingsMisses}
	}
	for _, s := range c.router.Sessions() {
		if len(s.Pinned) > 0 {
			d.PinnedSessions = append(d.PinnedSessions, PinnedSession{Endpoint: s.Endpoint, User: s.User, Database: s.Database, Reasons: s.Pinned})
		}
	}
	c.mu.Lock()
	d.SynchronousStandbyNames, d.LastFailover = c.syncNames, c.lastFailover
	d.SynchronousFallbackSeconds = rec.SynchronousFallbackSeconds
	c.describeSync(&d)
	c.mu.Unlock()
	for _, s := range c.router.Stats() {
		d.Router = append(d.Router, RouterEndpoint{Endpoint: s.Endpoint, Connections: s.Active, Total: s.Total,
			Rejected: s.Rejected, BytesIn: s.BytesIn, BytesOut: s.BytesOut})
	}
	return d
}

// membersWriterFirst orders the members for supervision: the writer first (readers need it
// for a base backup, streaming or a rewind), then the others in member order.
func (c *Cluster) membersWriterFirst() []*member {
	out := make([]*member, 0, len(c.members))
	for _, mb := range c.members {
		if mb.isWriter() {
			out = append(out, mb)
		}
	}
	for _, mb := range c.members {
		if !mb.isWriter() {
			out = append(out, mb)
		}
	}
	return out
}

func (c *Cluster) isSuspect() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fo.suspect
}
