package cluster

import "time"

// Description is `cluster describe`, shaped like Aurora's DescribeDBClusters output.
type Description struct {
	DBClusterIdentifier      string              `json:"DBClusterIdentifier"`
	Status                   string              `json:"Status"`
	Endpoint                 string              `json:"Endpoint"`
	ReaderEndpoint           string              `json:"ReaderEndpoint"`
	Port                     int                 `json:"Port"`
	ReaderPort               int                 `json:"ReaderPort"`
	Capacity                 float64             `json:"Capacity"`
	ClusterCreateTime        time.Time           `json:"ClusterCreateTime"`
	DBClusterMembers         []MemberDescription `json:"DBClusterMembers"`
	ScalingConfigurationInfo ScalingInfo         `json:"ScalingConfigurationInfo"`
	// CapacityEnforcement says whether capacity limits are enforced on the nodes, and why not.
	CapacityEnforcement     Enforcement       `json:"CapacityEnforcement"`
	Router                  []RouterEndpoint  `json:"Router,omitempty"`
	MasterUsername          string            `json:"MasterUsername,omitempty"`
	DatabaseName            string            `json:"DatabaseName,omitempty"`
	MasterUserSecret        *MasterUserSecret `json:"MasterUserSecret,omitempty"`
	DeletionProtection      bool              `json:"DeletionProtection"`
	DBClusterParameterGroup string            `json:"DBClusterParameterGroup"`
	// MovedSessions counts client sessions the router moved to a new backend (reboots).
	MovedSessions int64 `json:"MovedSessions,omitempty"`
	// RecoveredSessions counts idle client sessions the router replayed onto a new backend
	// after theirs died (a crash, a failover).
	RecoveredSessions int64 `json:"RecoveredSessions,omitempty"`
	// BackendPool is the router's warm pool of authenticated idle backends: idle ones, ones
	// in use by a client that can return them, reuses since start.
	BackendPool *BackendPool `json:"BackendPool,omitempty"`
	// PinnedSessions are the open sessions found pinned to their backend when last looked at
	// (a move attempt, or the router's snapshot of a session idle for a second), and why (temp_tables, advisory_locks, listen, held_cursors). The node agent's counts of
	// the same reasons are in each member's Agent.
	PinnedSessions []PinnedSession `json:"PinnedSessions,omitempty"`
	// DurabilityMode is asynchronous or synchronous; FailoverGraceSeconds how long a writer may
	// fail before a reader is promoted.
	DurabilityMode       string `json:"DurabilityMode"`
	FailoverGraceSeconds int    `json:"FailoverGraceSeconds"`
	// SynchronousFallbackSeconds is the synchronous-mode policy without a reader (0: strict,
	// commits wait); DurabilityStatus, in synchronous mode, is synchronous, waiting-for-reader,
	// degraded-asynchronous or catching-up (failover.SyncGuard), since DurabilityStatusSince.
	SynchronousFallbackSeconds int        `json:"SynchronousFallbackSeconds,omitempty"`
	DurabilityStatus           string     `json:"DurabilityStatus,omitempty"`
	DurabilityStatusSince      *time.Time `json:"DurabilityStatusSince,omitempty"`
	// SynchronousStandbyNames is the writer's setting in synchronous mode.
	SynchronousStandbyNames string `json:"SynchronousStandbyNames,omitempty"`
	// LastFailover is the last failover this control plane completed.
	LastFailover *FailoverInfo `json:"LastFailover,omitempty"`
	// EnabledLogsExports are the log types published to /borealis/cluster/<name>/<type>.
	EnabledLogsExports []string `json:"EnabledLogsExports"`
}

// BackendPool is the router's warm backend pool in describe (router.PoolStats): backends idle
// and in use now; since the router started, clients given a pooled backend (Reused), backends
// opened for pool clients, backends the pool closed by reason (router.PoolCloseReasons), drains
// for DATABASE DDL, and logins that found pooled backends only under older ALTER ROLE/DATABASE
// ... SET settings.
type BackendPool struct {
	Idle           int64            `json:"Idle"`
	InUse          int64            `json:"InUse"`
	Reused         int64            `json:"Reused"`
	Opened         int64            `json:"Opened"`
	Closed         map[string]int64 `json:"Closed,omitempty"`
	DDLDrains      int64            `json:"DDLDrains"`
	SettingsMisses int64            `json:"SettingsMisses"`
}

// IsZero says whether nothing has happened in the pool.
func (p BackendPool) IsZero() bool {
	return p.Idle == 0 && p.InUse == 0 && p.Reused == 0 && p.Opened == 0 && len(p.Closed) == 0 && p.DDLDrains == 0 && p.SettingsMisses == 0
}

// PinnedSession is a client session that cannot move to another backend.
type PinnedSession struct {
	Endpoint string   `json:"Endpoint"`
	User     string   `json:"User"`
	Database string   `json:"Database"`
	Reasons  []string `json:"Reasons"`
}

// MemberDescription is one node.
type MemberDescription struct {
	DBInstanceIdentifier string `json:"DBInstanceIdentifier"`
	IsClusterWriter      bool   `json:"IsClusterWriter"`
	// DBClusterParameterGroupStatus is in-sync or applying (Aurora's names).
	DBClusterParameterGroupStatus string   `json:"DBClusterParameterGroupStatus,omitempty"`
	PromotionTier                 int      `json:"PromotionTier"`
	Status                        string   `json:"Status"`
	Capacity                      float64  `json:"Capacity"`
	Port                          int      `json:"Port"`
	PID                           int      `json:"PID,omitempty"`
	ReplicaLagSeconds             *float64 `json:"ReplicaLagSeconds,omitempty"`
	ReplicaLagBytes               *int64   `json:"ReplicaLagBytes,omitempty"`
	// EngineUptimeSeconds is how long the postmaster has been up, from pg_postmaster_start_time().
	EngineUptimeSeconds float64 `json:"EngineUptimeSeconds,omitempty"`
	// Agent is the last borealis.node_status() row, nil when the node agent is not available
	// (AgentError says why).
	Agent      *NodeStatus `json:"Agent,omitempty"`
	AgentError string      `json:"AgentError,omitempty"`
	// Fenced: a former writer that was failed over and has not yet rejoined as a reader.
	Fenced bool `json:"Fenced,omitempty"`
	// PendingCapacity is the target of a change waiting for a scaling point.
	PendingCapacity *float64 `json:"PendingCapacity,omitempty"`
	// CapacityLimits are the node's cgroup limits as read back from the cgroup files (absent
	// when unenforced); EnforcementError says why this node is not limited.
	CapacityLimits   *CapacityLimits `json:"CapacityLimits,omitempty"`
	EnforcementError string          `json:"EnforcementError,omitempty"`
	// ScalingDecision is the last autoscaling decision's reason.
	ScalingDecision string `json:"ScalingDecision,omitempty"`
}

// CapacityLimits are a node's enforced limits and its CPU use as a share of them.
type CapacityLimits struct {
	MemoryBytes  int64   `json:"MemoryBytes"`
	CPUs         float64 `json:"CPUs"`
	CPUPercent1m float64 `json:"CPUPercent1m"`
	CPUPercent5m float64 `json:"CPUPercent5m"`
	OOMKills     int64   `json:"OOMKills"`
}

// ScalingInfo is the serverless configuration.
type ScalingInfo struct {
	MinCapacity           float64 `json:"MinCapacity"`
	MaxCapacity           float64 `json:"MaxCapacity"`
	AutoPause             bool    `json:"AutoPause"`
	SecondsUntilAutoPause int     `json:"SecondsUntilAutoPause"`
	SecondsBeforeTimeout  int     `json:"SecondsBeforeTimeout"`
	TimeoutAction         string  `json:"TimeoutAction"`
}

// RouterEndpoint are one endpoint's router counters.
type RouterEndpoint struct {
	Endpoint    string `json:"Endpoint"`
	Connections int64  `json:"Connections"`
	Total       int64  `json:"TotalConnections"`
	Rejected    int64  `json:"Rejected"`
	BytesIn     int64  `json:"BytesIn"`
	BytesOut    int64  `json:"BytesOut"`
}

// NodeStatus is one row of borealis.node_status(), the node agent's snapshot.
type NodeStatus struct {
	SampledAt                    *time.Time `json:"SampledAt"`
	CPUPercent1m                 *float64   `json:"CPUPercent1m"`
	CPUPercent5m                 *float64   `json:"CPUPercent5m"`
	MemoryBytes                  *int64     `json:"MemoryBytes"`
	ConnectionsActive            *int32     `json:"ConnectionsActive"`
	ConnectionsIdle              *int32     `json:"ConnectionsIdle"`
	ConnectionsIdleInTransaction *int32     `json:"ConnectionsIdleInTransaction"`
	OldestQuerySeconds           *float64   `json:"OldestQuerySeconds"`
	OldestTransactionSeconds     *float64   `json:"OldestTransactionSeconds"`
	TempTableSessions            *int32     `json:"TempTableSessions"`
	ExplicitLockSessions         *int32     `json:"ExplicitLockSessions"`
	ScalingPoint                 *bool      `json:"ScalingPoint"`
	Blockers                     []string   `json:"Blockers"`
	AgentPID                     *int32     `json:"AgentPID"`
	AdvisoryLockSessions         *int32     `json:"AdvisoryLockSessions,omitempty"`
	HeldCursorSessions           *int32     `json:"HeldCursorSessions,omitempty"`
	PreparedTransactions         *int32     `json:"PreparedTransactions,omitempty"`
}
