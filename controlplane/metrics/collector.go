package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/router"
)

var (
	nodeLabels = []string{"cluster", "member", "role"}

	descCapacity = prometheus.NewDesc("borealis_serverless_database_capacity",
		"Capacity of the node in ACUs (like Aurora's ServerlessDatabaseCapacity).", nodeLabels, nil)
	descACUUtil = prometheus.NewDesc("borealis_acu_utilization_percent",
		"Capacity as a percentage of the cluster's MaxCapacity (like Aurora's ACUUtilization).", nodeLabels, nil)
	descCPU = prometheus.NewDesc("borealis_cpu_utilization_percent",
		"CPU use of the node's processes as a share of its usable CPUs, from the node agent.", append(nodeLabels, "window"), nil)
	descMemory = prometheus.NewDesc("borealis_memory_bytes",
		"Memory of the node's processes, from the node agent.", nodeLabels, nil)
	descConnections = prometheus.NewDesc("borealis_database_connections",
		"Client sessions on the node by state (from pg_stat_activity).", append(nodeLabels, "state"), nil)
	descUptime = prometheus.NewDesc("borealis_engine_uptime_seconds",
		"Seconds since the node's postmaster started.", nodeLabels, nil)
	descLagSeconds = prometheus.NewDesc("borealis_replica_lag_seconds",
		"How far the reader's replay is behind the writer, in seconds (0 when caught up).", nodeLabels, nil)
	descLagBytes = prometheus.NewDesc("borealis_replica_lag_bytes",
		"WAL bytes the reader has yet to replay, seen from the writer's replication slot.", nodeLabels, nil)
	descUp = prometheus.NewDesc("borealis_member_up",
		"1 when the member is available.", nodeLabels, nil)
	descAgent = prometheus.NewDesc("borealis_node_agent_available",
		"1 when borealis.node_status() returns a sample from a running node agent.", nodeLabels, nil)
	descScalingPoint = prometheus.NewDesc("borealis_scaling_point",
		"1 when the node agent reports that capacity can change now.", nodeLabels, nil)

	descEnforced = prometheus.NewDesc("borealis_capacity_enforced",
		"1 when the node's capacity is enforced by a cgroup, 0 when it runs unenforced (see describe's CapacityEnforcement).", append(nodeLabels, "mode"), nil)
	descMemLimit = prometheus.NewDesc("borealis_capacity_memory_limit_bytes",
		"The node's cgroup memory limit, read back from the cgroup.", nodeLabels, nil)
	descCPULimit = prometheus.NewDesc("borealis_capacity_cpu_limit",
		"The node's cgroup CPU quota in CPUs, read back from the cgroup.", nodeLabels, nil)
	descCapCPU = prometheus.NewDesc("borealis_capacity_cpu_utilization_percent",
		"CPU used by the node's cgroup as a share of its quota.", append(nodeLabels, "window"), nil)
	descScaling = prometheus.NewDesc("borealis_scaling_events_total",
		"Capacity changes by result: applied (in place or at a scaling point), rolled_back (timed out), forced (timed out, applied anyway).", []string{"result"}, nil)

	endpointLabels     = []string{"cluster", "endpoint"}
	descRouterConns    = prometheus.NewDesc("borealis_router_connections", "Open client connections through the router.", endpointLabels, nil)
	descRouterTotal    = prometheus.NewDesc("borealis_router_connections_total", "Client connections accepted by the router.", endpointLabels, nil)
	descRouterRejected = prometheus.NewDesc("borealis_router_rejected_total", "Client connections the router refused with an error.", endpointLabels, nil)
	descRouterBytes    = prometheus.NewDesc("borealis_router_bytes_total", "Bytes relayed by the router; in is client to server.", append(endpointLabels, "direction"), nil)
	descPaused         = prometheus.NewDesc("borealis_cluster_paused", "1 while the cluster is paused (auto-pause) or stopped, its nodes down at 0 ACU.", []string{"cluster", "status"}, nil)
	descMoved          = prometheus.NewDesc("borealis_router_moved_sessions_total", "Client sessions the router moved to a new backend without the client noticing.", []string{"cluster"}, nil)
	descRecovered      = prometheus.NewDesc("borealis_router_recovered_sessions_total", "Idle client sessions the router replayed onto a new backend after theirs died.", []string{"cluster"}, nil)
	descPinned         = prometheus.NewDesc("borealis_router_pinned_sessions", "Open client sessions found pinned to their backend when last looked at (a move, or the snapshot of a session idle for a second), by reason.", []string{"cluster", "reason"}, nil)
	descEvents         = prometheus.NewDesc("borealis_events_total", "Events recorded by this control plane since it started, by type.", []string{"type"}, nil)
)

// poolMetrics are the router's warm backend pool (describe's BackendPool) in /metrics: each
// family's name, help, type and value are here once, for Describe and Collect alike.
var poolMetrics = []struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(cluster.BackendPool) float64
}{
	{prometheus.NewDesc("borealis_router_pool_idle_backends", "Authenticated idle backends in the router's warm pool.", []string{"cluster"}, nil),
		prometheus.GaugeValue, func(p cluster.BackendPool) float64 { return float64(p.Idle) }},
	{prometheus.NewDesc("borealis_router_pool_in_use_backends", "Client sessions on a backend that returns to the router's warm pool when they end.", []string{"cluster"}, nil),
		prometheus.GaugeValue, func(p cluster.BackendPool) float64 { return float64(p.InUse) }},
	{prometheus.NewDesc("borealis_router_pool_reused_backends_total", "Clients given a warm backend from the router's pool instead of a new one.", []string{"cluster"}, nil),
		prometheus.CounterValue, func(p cluster.BackendPool) float64 { return float64(p.Reused) }},
	{prometheus.NewDesc("borealis_router_pool_opened_backends_total", "Backends the router opened for clients of its warm pool (reused later or not).", []string{"cluster"}, nil),
		prometheus.CounterValue, func(p cluster.BackendPool) float64 { return float64(p.Opened) }},
	{prometheus.NewDesc("borealis_router_pool_ddl_drains_total", "Times DROP/CREATE/ALTER DATABASE (or a 55006 answer) made the router close idle pooled backends on the databases it names.", []string{"cluster"}, nil),
		prometheus.CounterValue, func(p cluster.BackendPool) float64 { return float64(p.DDLDrains) }},
	{prometheus.NewDesc("borealis_router_pool_settings_misses_total", "Logins that found the pool's backends for their role and database only under older ALTER ROLE/DATABASE ... SET settings (those are closed).", []string{"cluster"}, nil),
		prometheus.CounterValue, func(p cluster.BackendPool) float64 { return float64(p.SettingsMisses) }},
}

// descPoolClosed is the pool's closed backends by reason (router.PoolCloseReasons, each
// reported from the start at 0).
var descPoolClosed = prometheus.NewDesc("borealis_router_pool_closed_backends_total",
	"Backends the router's warm pool closed, by reason (idle_timeout, stale, limit, too_many_clients, drain, ddl, settings, lifetime, reset).", []string{"cluster", "reason"}, nil)

// Collector reads a Manager at scrape time.
type Collector struct {
	m *cluster.Manager
}

// NewCollector returns a collector for m.
func NewCollector(m *cluster.Manager) *Collector { return &Collector{m: m} }

// NewRegistry is a registry with the collector plus the Go and process collectors.
func NewRegistry(m *cluster.Manager) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(m), prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return reg
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCapacity, descACUUtil, descCPU, descMemory, descConnections, descUptime,
		descLagSeconds, descLagBytes, descUp, descAgent, descScalingPoint, descRouterConns, descRouterTotal,
		descRouterRejected, descRouterBytes, descEvents, descPaused, descMoved, descRecovered, descPinned,
		descEnforced, descMemLimit, descCPULimit, descCapCPU, descScaling, descPoolClosed} {
		ch <- d
	}
	for _, m := range poolMetrics {
		ch <- m.desc
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, s := range c.m.MemberStats() {
		role := "reader"
		if s.Writer {
			role = "writer"
		}
		l := []string{s.Cluster, s.Member, role}
		up := s.Status == cluster.StatusAvailable
		gauge(descUp, b2f(up), l...)
		gauge(descCapacity, s.Capacity, l...)
		if s.MaxCapacity > 0 {
			gauge(descACUUtil, 100*s.Capacity/s.MaxCapacity, l...)
		}
		gauge(descAgent, b2f(up && s.Agent != nil), l...)
		mode := string(c.m.Enforcement().Mode)
		gauge(descEnforced, b2f(s.Enforced), append(l, mode)...)
		if s.Enforced {
			gauge(descMemLimit, float64(s.MemoryLimit), l...)
			gauge(descCPULimit, s.CPULimit, l...)
			gauge(descCapCPU, s.CPUPercent1m, append(l, "1m")...)
			gauge(descCapCPU, s.CPUPercent5m, append(l, "5m")...)
		}
		if !up || s.SampledAt.IsZero() {
			continue
		}
		gauge(descUptime, s.EngineUptimeSeconds, l...)
		for state, n := range s.Connections {
			gauge(descConnections, float64(n), append(l, state)...)
		}
		if !s.Writer {
			if s.LagSeconds != nil {
				gauge(descLagSeconds, *s.LagSeconds, l...)
			}
			if s.LagBytes != nil {
				gauge(descLagBytes, float64(*s.LagBytes), l...)
			}
		}
		if a := s.Agent; a != nil {
			if a.CPUPercent1m != nil {
				gauge(descCPU, *a.CPUPercent1m, append(l, "1m")...)
			}
			if a.CPUPercent5m != nil {
				gauge(descCPU, *a.CPUPercent5m, append(l, "5m")...)
			}
			if a.MemoryBytes != nil {
				gauge(descMemory, float64(*a.MemoryBytes), l...)
			}
			if a.ScalingPoint != nil {
				gauge(descScalingPoint, b2f(*a.ScalingPoint), l...)
			}
		}
	}
	for _, cl := range c.m.Clusters() {
		d := cl.Describe()
		down := d.Status == cluster.StatusPaused || d.Status == cluster.StatusStopped
		gauge(descPaused, b2f(down), cl.Name(), d.Status)
		counter(descMoved, float64(d.MovedSessions), cl.Name())
		counter(descRecovered, float64(d.RecoveredSessions), cl.Name())
		var pool cluster.BackendPool
		if d.BackendPool != nil {
			pool = *d.BackendPool
		}
		for _, m := range poolMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(pool), cl.Name())
		}
		for _, reason := range router.PoolCloseReasons {
			counter(descPoolClosed, float64(pool.Closed[reason]), cl.Name(), reason)
		}
		pins := map[string]int{}
		for _, p := range d.PinnedSessions {
			for _, r := range p.Reasons {
				pins[r]++
			}
		}
		for r, n := range pins {
			gauge(descPinned, float64(n), cl.Name(), r)
		}
		for _, st := range cl.Router().Stats() {
			l := []string{cl.Name(), st.Endpoint}
			gauge(descRouterConns, float64(st.Active), l...)
			counter(descRouterTotal, float64(st.Total), l...)
			counter(descRouterRejected, float64(st.Rejected), l...)
			counter(descRouterBytes, float64(st.BytesIn), append(l, "in")...)
			counter(descRouterBytes, float64(st.BytesOut), append(l, "out")...)
		}
	}
	for result, n := range c.m.ScalingResults() {
		counter(descScaling, float64(n), result)
	}
	for typ, n := range c.m.EventCounts() {
		counter(descEvents, float64(n), typ)
	}
}
