package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// memberStats is the last sample of one node.
type memberStats struct {
	sampledAt     time.Time
	uptimeSeconds float64
	inRecovery    bool
	connections   map[string]int64 // by state: active, idle, idle_in_transaction
	lagSeconds    *float64
	lagBytes      *int64
	agent         *NodeStatus
	agentErr      string

	// From the node's cgroup (enforced only): CPU as a share of the quota over the short and
	// long windows and how much time the long one covers, limits read back, OOM kills.
	enforced         bool
	cpu1m, cpu5m     float64
	cpuWindow        time.Duration
	memLimit         int64
	cpuLimit         float64
	oomKills         int64
	vectorIndexBytes int64
}

const pollTimeout = 3 * time.Second

// poll samples the node: engine uptime, sessions, replication lag and node_status().
func (mb *member) poll() {
	if mb.node == nil || !mb.node.Running() || mb.status() != StatusAvailable {
		return
	}
	// On the writer: given up the moment the prober finds it failing.
	ctx, cancel := context.WithTimeout(mb.opCtx(), pollTimeout)
	defer cancel()
	if mb.pollConn == nil {
		cfg, err := pgx.ParseConfig(mb.node.DSN("postgres"))
		if err != nil {
			return
		}
		cfg.RuntimeParams["application_name"] = "borealis-controlplane"
		if mb.pollConn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
			mb.pollConn = nil
			return
		}
	}
	st := memberStats{sampledAt: time.Now(), connections: map[string]int64{}}
	var active, idle, idleTx int64
	err := mb.pollConn.QueryRow(ctx, `
		SELECT pg_is_in_recovery(),
		       extract(epoch FROM now() - pg_postmaster_start_time())::float8,
		       count(*) FILTER (WHERE state = 'active'),
		       count(*) FILTER (WHERE state = 'idle'),
		       count(*) FILTER (WHERE state LIKE 'idle in transaction%'),
		       CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() IS NULL THEN NULL
		            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
		            ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END::float8
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> 'borealis-probe'`).
		Scan(&st.inRecovery, &st.uptimeSeconds, &active, &idle, &idleTx, &st.lagSeconds)
	if err != nil {
		mb.closePoll()
		return
	}
	st.connections["active"], st.connections["idle"], st.connections["idle_in_transaction"] = active, idle, idleTx
	if !st.inRecovery {
		mb.pollSlots(ctx)
	}
	st.agent, st.agentErr = mb.pollAgent(ctx)
	mb.pollCapacity(ctx, mb.pollConn, &st)
	mb.statsMu.Lock()
	if st.inRecovery {
		st.lagBytes = mb.stats.lagBytes // filled in by the writer's poll
	}
	mb.stats = st
	mb.statsMu.Unlock()
	available := st.agent != nil
	if mb.agentSeen == nil || *mb.agentSeen != available {
		if available {
			mb.event("agent.available", "node agent reporting (pid %d)", derefInt32(st.agent.AgentPID))
		} else {
			mb.event("agent.unavailable", "node agent not available: %s", st.agentErr)
		}
		mb.agentSeen = &available
	}
}

// pollSlots reads, on the writer, how many bytes each reader's slot is behind and hands the
// figure to that reader.
func (mb *member) pollSlots(ctx context.Context) {
	rows, err := mb.pollConn.Query(ctx, `
		SELECT s.slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(r.replay_lsn, s.restart_lsn))::bigint
		FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
		WHERE s.slot_type = 'physical'`)
	if err != nil {
		return
	}
	lag := map[string]int64{}
	for rows.Next() {
		var slot string
		var bytes *int64
		if rows.Scan(&slot, &bytes) == nil && bytes != nil {
			lag[slot] = *bytes
		}
	}
	rows.Close()
	for _, other := range mb.c.members {
		if b, ok := lag[slotName(other.id)]; ok && other != mb {
			other.statsMu.Lock()
			other.stats.lagBytes = &b
			other.statsMu.Unlock()
		}
	}
}

// pollAgent reads borealis.node_status(). A missing function means the installed extension
// has no node agent; a NULL agent_pid means borealis is not preloaded or the worker is down.
func (mb *member) pollAgent(ctx context.Context) (*NodeStatus, string) {
	var s NodeStatus
	err := mb.pollConn.QueryRow(ctx, `
		SELECT sampled_at, cpu_percent_1m, cpu_percent_5m, memory_bytes, connections_active,
		       connections_idle, connections_idle_in_transaction, oldest_query_seconds,
		       oldest_transaction_seconds, temp_table_sessions, explicit_lock_sessions,
		       scaling_point, blockers, agent_pid,
		       -- added later: NULL where the extension script predates them
		       (to_jsonb(s) ->> 'advisory_lock_sessions')::int, (to_jsonb(s) ->> 'held_cursor_sessions')::int,
		       (to_jsonb(s) ->> 'prepared_transactions')::int
		FROM borealis.node_status() s`).Scan(&s.SampledAt, &s.CPUPercent1m, &s.CPUPercent5m, &s.MemoryBytes,
		&s.ConnectionsActive, &s.ConnectionsIdle, &s.ConnectionsIdleInTransaction, &s.OldestQuerySeconds,
		&s.OldestTransactionSeconds, &s.TempTableSessions, &s.ExplicitLockSessions, &s.ScalingPoint,
		&s.Blockers, &s.AgentPID, &s.AdvisoryLockSessions, &s.HeldCursorSessions, &s.PreparedTransactions)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && (pe.Code == "42883" || pe.Code == "3F000" || pe.Code == "42P01"):
		return nil, "borealis.node_status() does not exist in this node (the installed extension has no node agent)"
	case err != nil:
		return nil, "reading borealis.node_status(): " + err.Error()
	case s.AgentPID == nil:
		return nil, "the node agent is not running (is borealis in shared_preload_libraries?)"
	case s.SampledAt == nil:
		return nil, "the node agent has not taken its first sample yet"
	}
	return &s, ""
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func (mb *member) closePoll() {
	if mb.pollConn != nil {
		mb.pollConn.Close(context.Background())
		mb.pollConn = nil
	}
}

// Stats is what metrics read about one member.
type Stats struct {
	Cluster, Member     string
	Writer              bool
	Status              string
	Capacity            float64
	MaxCapacity         float64
	SampledAt           time.Time
	EngineUptimeSeconds float64
	Connections         map[string]int64
	LagSeconds          *float64
	LagBytes            *int64
	Agent               *NodeStatus
	// Enforced is true when the node's cgroup limits are set; the limits are read back.
	Enforced     bool
	MemoryLimit  int64
	CPULimit     float64
	CPUPercent1m float64
	CPUPercent5m float64
}

func (mb *member) describeInto(d *MemberDescription) {
	d.PID = int(mb.pid.Load())
	mb.statsMu.Lock()
	defer mb.statsMu.Unlock()
	d.EngineUptimeSeconds = mb.stats.uptimeSeconds
	if !d.IsClusterWriter {
		d.ReplicaLagSeconds, d.ReplicaLagBytes = mb.stats.lagSeconds, mb.stats.lagBytes
	}
	d.Agent, d.AgentError = mb.stats.agent, mb.stats.agentErr
	if st := mb.stats; st.enforced {
		d.CapacityLimits = &CapacityLimits{MemoryBytes: st.memLimit, CPUs: st.cpuLimit, CPUPercent1m: st.cpu1m, CPUPercent5m: st.cpu5m, OOMKills: st.oomKills}
	}
	d.ScalingDecision, d.EnforcementError = mb.lastDecision, mb.enforceErr
	mb.scaleMu.Lock()
	if p := mb.pendingView; p != nil {
		to := p.to
		d.PendingCapacity = &to
	}
	mb.scaleMu.Unlock()
}

// MemberStats returns the last sample of every member of every cluster.
func (m *Manager) MemberStats() []Stats {
	m.mu.Lock()
	cs := make([]*Cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	var out []Stats
	for _, c := range cs {
		c.mu.Lock()
		recs := append(c.rec.Members[:0:0], c.rec.Members...)
		maxCap := c.rec.Scaling.MaxCapacity
		c.mu.Unlock()
		for i, r := range recs {
			s := Stats{Cluster: c.rec.Name, Member: r.ID, Writer: r.Writer, Status: r.Status, Capacity: r.Capacity, MaxCapacity: maxCap}
			if r.Status == StatusStopped {
				s.Capacity = 0 // paused or stopped
			}
			if i < len(c.members) {
				mb := c.members[i]
				mb.statsMu.Lock()
				s.SampledAt, s.EngineUptimeSeconds, s.Connections = mb.stats.sampledAt, mb.stats.uptimeSeconds, mb.stats.connections
				s.LagSeconds, s.LagBytes, s.Agent = mb.stats.lagSeconds, mb.stats.lagBytes, mb.stats.agent
				s.Enforced, s.MemoryLimit, s.CPULimit = mb.stats.enforced, mb.stats.memLimit, mb.stats.cpuLimit
				s.CPUPercent1m, s.CPUPercent5m = mb.stats.cpu1m, mb.stats.cpu5m
				mb.statsMu.Unlock()
			}
			out = append(out, s)
		}
	}
	return out
}

// Clusters returns the running clusters (for their routers' metrics).
func (m *Manager) Clusters() []*Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		out = append(out, c)
	}
	return out
}
