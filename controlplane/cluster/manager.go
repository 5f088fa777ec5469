package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/borealisdb/borealis/controlplane/cgroup"
	"github.com/borealisdb/borealis/controlplane/paramgroup"
	"github.com/borealisdb/borealis/controlplane/scaling"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// Options configure a Manager.
type Options struct {
	// Home holds node data under Home/clusters/<name>/.
	Home  string
	Store *store.Store
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
	// PollInterval is how often nodes are checked and sampled; 0 means 1 s.
	PollInterval time.Duration
	// HoldTimeout is how long the routers hold a new client waiting for a node; 0 means 30 s.
	HoldTimeout time.Duration
	// TLS, when set, lets the routers terminate TLS.
	TLS *tls.Config
	// MaxClientConnections caps each endpoint's client connections (SQLSTATE 53300 beyond);
	// 0 means router.DefaultMaxClients.
	MaxClientConnections int
	// ListenAddress is the IP the cluster endpoints bind to; empty means 127.0.0.1.
	ListenAddress string
	// APIPort is the control plane API's own port, refused as a cluster endpoint; 0 if none.
	APIPort int
	// BeforeRemoveData is called when a deleted cluster's nodes are stopped, before its data
	// directories are removed (the logs service collects their last lines).
	BeforeRemoveData func(cluster string)
	// NodeSettings are extra postgresql.conf lines for every new writer (readers copy them).
	NodeSettings map[string]string
	// Cgroups enforces capacity; nil detects what this machine offers (cgroup v2, v1, or
	// unenforced with the reason).
	Cgroups *cgroup.Controller
	// Scaling is the autoscaling policy; nil means scaling.DefaultPolicy().
	Scaling *scaling.Policy
	// EnforceCapacity puts each node in a cgroup sized by its capacity (when this machine
	// allows: see Cgroups). Off, nodes run unenforced and describe says so. `borealis serve` and
	// `up` turn it on; a zero Options (library use, tests of other features) leaves it off.
	EnforceCapacity bool
	// Autoscale lets the decision function change capacity with the load (manual changes
	// apply either way). `borealis serve` and `up` turn it on.
	Autoscale bool
	// ScalingTimeout, when set, replaces SecondsBeforeTimeout (whose minimum is 60 s) as the
	// search for a scaling point: a test setting.
	ScalingTimeout time.Duration
	// CPUWindows are the short and long CPU averages taken from a node's cgroup; zero means
	// 1 and 5 minutes. Tests shorten them.
	CPUWindows [2]time.Duration
	// NoCgroupStartupBoost keeps a resuming node's cgroup at its capacity's CPU weight and
	// quota (the nice boost still applies), to measure what the cgroup boost buys
	// (bench/resume -enforce all); never set otherwise.
	NoCgroupStartupBoost bool
	// ResumeQuiet, when set, replaces resumeQuiet (1 s), the start-up boost's window after a
	// resume: a test setting.
	ResumeQuiet time.Duration
	// FollowBound, when set, replaces failover.FollowBound, how long a reader may go without
	// streaming the writer's timeline before it is rewound or cloned (failover_follow.go).
	FollowBound time.Duration
}

// ErrNotFound is returned for a cluster that does not exist.
var ErrNotFound = store.ErrNotFound

// Manager runs every cluster of one control plane.
type Manager struct {
	opts Options

	mu       sync.Mutex
	clusters map[string]*Cluster
	closed   bool

	eventsMu     sync.Mutex
	eventsByType map[string]int64
	scaleResults map[string]int64

	cg     *cgroup.Controller
	policy scaling.Policy
}

// NewManager loads the clusters in the store and starts supervising them: running nodes are
// adopted, stopped ones restarted, unfinished ones completed.
func NewManager(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Home == "" {
		return nil, errors.New("cluster: Options.Store and Options.Home are required")
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	if opts.HoldTimeout == 0 {
		opts.HoldTimeout = 30 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.ListenAddress == "" {
		opts.ListenAddress = "127.0.0.1"
	}
	abs, err := filepath.Abs(opts.Home)
	if err != nil {
		return nil, err
	}
	opts.Home = abs
	// The nodes' user passes through Home and clusters/ to its own directory per cluster, and
	// can write in neither (see home.go).
	if err := PrepareHome(opts.Home); err != nil {
		return nil, err
	}
	if err := claimDir(filepath.Join(opts.Home, "clusters"), homeMode); err != nil {
		return nil, err
	}
	if opts.CPUWindows[0] == 0 {
		opts.CPUWindows = [2]time.Duration{time.Minute, 5 * time.Minute}
	}
	m := &Manager{opts: opts, clusters: map[string]*Cluster{}, eventsByType: map[string]int64{}, scaleResults: map[string]int64{},
		policy: scaling.DefaultPolicy()}
	if opts.Scaling != nil {
		if err := opts.Scaling.Validate(); err != nil {
			return nil, err
		}
		m.policy = *opts.Scaling
	}
	recs, err := opts.Store.Clusters()
	if err != nil {
		return nil, err
	}
	m.event("", "", "controlplane.started", fmt.Sprintf("control plane started with %d cluster(s) in %s", len(recs), opts.Home))
	m.detectCgroups()
	for _, rec := range recs {
		// Nothing is known to run until adopted or started again.
		down := rec.Paused || rec.Stopped // stays down until a client or `cluster start`
		switch {
		case rec.Stopped:
			rec.Status = StatusStopped
		case rec.Paused:
			rec.Status = StatusPaused
		case rec.Status != StatusCreating:
			rec.Status = StatusStarting
		}
		for i := range rec.Members {
			if rec.Members[i].Created {
				rec.Members[i].Status = StatusStarting
				if down {
					rec.Members[i].Status = StatusStopped
				}
			}
		}
		c := m.newCluster(rec)
		m.clusters[rec.Name] = c
		go c.run()
	}
	return m, nil
}

// event records an event in the store and counts it for metrics.
func (m *Manager) event(cluster, member, typ, msg string) {
	m.eventsMu.Lock()
	m.eventsByType[typ]++
	m.eventsMu.Unlock()
	where := strings.TrimSpace(cluster + " " + member)
	if where != "" {
		where = " [" + where + "]"
	}
	m.opts.Logf("%s%s: %s", typ, where, msg)
	if _, err := m.opts.Store.AppendEvent(store.Event{Cluster: cluster, Member: member, Type: typ, Message: msg}); err != nil {
		m.opts.Logf("recording event %s: %v", typ, err)
	}
}

// EventCounts are the events recorded by this process, by type.
func (m *Manager) EventCounts() map[string]int64 {
	m.eventsMu.Lock()
	defer m.eventsMu.Unlock()
	out := make(map[string]int64, len(m.eventsByType))
	for k, v := range m.eventsByType {
		out[k] = v
	}
	return out
}

// Events returns the event log, only cluster's when it is not empty.
func (m *Manager) Events(cluster string, limit int) ([]store.Event, error) {
	return m.opts.Store.Events(cluster, limit)
}

// Create validates in, records the cluster and starts building it in the background; the
// returned description has status "creating".
func (m *Manager) Create(in CreateInput) (Description, error) {
	if err := in.Validate(); err != nil {
		return Description{}, err
	}
	scaling, _ := in.scaling()
	rec := store.Cluster{Name: in.Name, CreatedAt: time.Now().UTC(), Status: StatusCreating,
		Port: in.Port, ReaderPort: in.ReaderPort, Scaling: scaling, ParameterGroup: in.DBClusterParameterGroupName,
		Durability: in.mode(), FailoverGraceSeconds: in.FailoverGraceSeconds, SynchronousFallbackSeconds: in.SynchronousFallbackSeconds,
		LogExports: in.EnableLogsExports}
	if rec.ParameterGroup == paramgroup.DefaultGroup {
		rec.ParameterGroup = ""
	}
	if rec.ParameterGroup != "" {
		if _, err := m.opts.Store.ParamGroup(rec.ParameterGroup); err != nil {
			return Description{}, fieldErr("DBClusterParameterGroupName", "parameter group %q does not exist (create it with `borealis parameter-group create`)", rec.ParameterGroup)
		}
	}
	var err error
	if rec.Port == 0 {
		if rec.Port, err = pgproc.FreePort(); err != nil {
			return Description{}, err
		}
	}
	if rec.ReaderPort == 0 {
		for rec.ReaderPort == 0 || rec.ReaderPort == rec.Port {
			if rec.ReaderPort, err = pgproc.FreePort(); err != nil {
				return Description{}, err
			}
		}
	}
	for i := 0; i <= in.Readers; i++ {
		rec.NextMember++
		id := fmt.Sprintf("%s-%d", in.Name, rec.NextMember)
		port, err := pgproc.FreePort()
		if err != nil {
			return Description{}, err
		}
		tier := in.readerTier()
		if i == 0 {
			tier = 0
		}
		rec.Members = append(rec.Members, store.Member{ID: id, Writer: i == 0, PromotionTier: tier,
			Status: StatusCreating, Capacity: scaling.MinCapacity, Port: port,
			DataDir: filepath.Join(m.clusterDir(in.Name), id)})
	}
	for _, p := range []struct {
		field string
		port  int
	}{{"Port", rec.Port}, {"ReaderPort", rec.ReaderPort}} {
		if m.opts.APIPort != 0 && p.port == m.opts.APIPort {
			return Description{}, fieldErr(p.field, "%d is the control plane API's own port: pick another", p.port)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Description{}, errors.New("the control plane is shutting down")
	}
	for _, other := range m.clusters {
		for _, p := range []int{rec.Port, rec.ReaderPort} {
			if p == other.rec.Port || p == other.rec.ReaderPort {
				return Description{}, fieldErr("Port", "%d is already an endpoint of cluster %s", p, other.rec.Name)
			}
		}
	}
	if _, exists := m.clusters[in.Name]; exists {
		return Description{}, &ConflictError{fmt.Sprintf("cluster %q already exists", in.Name)}
	}
	if err := m.checkSocketPath(in.Name); err != nil {
		return Description{}, err
	}
	if err := m.applyMasterUser(&rec, in.MasterUserInput); err != nil {
		return Description{}, err
	}
	if err := m.opts.Store.CreateCluster(rec); err != nil {
		return Description{}, err
	}
	m.event(in.Name, "", "cluster.creating", fmt.Sprintf("creating cluster %s: 1 writer, %d reader(s), %g-%g ACU, endpoints %d and %d",
		in.Name, in.Readers, scaling.MinCapacity, scaling.MaxCapacity, rec.Port, rec.ReaderPort))
	c := m.newCluster(rec)
	m.clusters[in.Name] = c
	go c.run()
	return c.Describe(), nil
}

// ConflictError is a request that clashes with existing state (HTTP 409).
type ConflictError struct{ msg string }

func (e *ConflictError) Error() string { return e.msg }

func (m *Manager) get(name string) (*Cluster, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clusters[name]
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w (see `borealis cluster list`)", name, ErrNotFound)
	}
	return c, nil
}

// Cluster returns a running cluster.
func (m *Manager) Cluster(name string) (*Cluster, error) { return m.get(name) }

// Describe returns one cluster's description.
func (m *Manager) Describe(name string) (Description, error) {
	c, err := m.get(name)
	if err != nil {
		return Description{}, err
	}
	return c.Describe(), nil
}

// List describes every cluster, by name.
func (m *Manager) List() []Description {
	m.mu.Lock()
	cs := make([]*Cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	out := make([]Description, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Describe())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DBClusterIdentifier < out[j].DBClusterIdentifier })
	return out
}

// Modify changes the serverless configuration of a cluster.
func (m *Manager) Modify(name string, in ModifyInput) (Description, error) {
	c, err := m.get(name)
	if err != nil {
		return Description{}, err
	}
	// The master password and deletion protection first (master.go); they leave in empty.
	if identity := in.MasterUserModify != (MasterUserModify{}); identity {
		if _, err := m.modifyMasterUser(c, &in.MasterUserModify); err != nil {
			return Description{}, err
		}
		if in == (ModifyInput{}) {
			return c.Describe(), nil
		}
	}
	if in.scalingChanged() { // validate everything before changing anything
		c.mu.Lock()
		_, err := in.apply(c.rec.Scaling)
		c.mu.Unlock()
		if err != nil {
			return Description{}, err
		}
	}
	if g := in.DBClusterParameterGroupName; g != nil && *g != "" && *g != paramgroup.DefaultGroup {
		if _, err := m.opts.Store.ParamGroup(*g); err != nil {
			return Description{}, fieldErr("DBClusterParameterGroupName", "parameter group %q does not exist (create it with `borealis parameter-group create`)", *g)
		}
	}
	if in.LogsExportConfiguration != nil {
		if err := c.setLogExports(*in.LogsExportConfiguration); err != nil {
			return Description{}, err
		}
		if in.DBClusterParameterGroupName == nil && !in.scalingChanged() && !in.failoverChanged() {
			return c.Describe(), nil
		}
	}
	if in.DBClusterParameterGroupName != nil {
		if err := c.setParamGroup(*in.DBClusterParameterGroupName); err != nil {
			return Description{}, err
		}
		if !in.scalingChanged() && !in.failoverChanged() {
			return c.Describe(), nil
		}
	}
	if only, err := c.modifyFailover(in); err != nil || only {
		return c.Describe(), err
	}
	c.mu.Lock()
	scaling, err := in.apply(c.rec.Scaling)
	if err != nil {
		c.mu.Unlock()
		return Description{}, err
	}
	c.rec.Scaling = scaling
	for i := range c.rec.Members {
		c.rec.Members[i].Capacity = min(max(c.rec.Members[i].Capacity, scaling.MinCapacity), scaling.MaxCapacity)
	}
	err = c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return Description{}, err
	}
	m.event(name, "", "cluster.modified", fmt.Sprintf("scaling configuration is now %g-%g ACU, auto-pause %v after %d s, timeout %d s then %s",
		scaling.MinCapacity, scaling.MaxCapacity, scaling.AutoPause, scaling.SecondsUntilAutoPause, scaling.SecondsBeforeTimeout, scaling.TimeoutAction))
	return c.Describe(), nil
}

// Delete stops a cluster's router and nodes, removes its data and forgets it.
func (m *Manager) Delete(ctx context.Context, name string) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	protected := c.rec.DeletionProtection
	c.mu.Unlock()
	if protected {
		return &ProtectedError{fmt.Sprintf("cluster %s has deletion protection: turn it off first (`borealis cluster modify --name %s --no-deletion-protection`)", name, name)}
	}
	m.event(name, "", "cluster.deleting", "deleting cluster "+name)
	c.setStatus(StatusDeleting)
	c.shutdown(ctx, true)
	if m.opts.BeforeRemoveData != nil {
		m.opts.BeforeRemoveData(name)
	}
	m.mu.Lock()
	delete(m.clusters, name)
	m.mu.Unlock()
	if err := m.opts.Store.DeleteCluster(name); err != nil {
		return err
	}
	if err := os.RemoveAll(m.clusterDir(name)); err != nil {
		return fmt.Errorf("removing the data of cluster %s: %w", name, err)
	}
	m.event(name, "", "cluster.deleted", "deleted cluster "+name)
	return nil
}

// Close stops supervising. With stopNodes the routers and nodes are stopped cleanly (members
// recorded as stopped, restarted by the next Manager); without, the nodes keep running for the
// next Manager to adopt.
func (m *Manager) Close(ctx context.Context, stopNodes bool) {
	m.mu.Lock()
	m.closed = true
	cs := make([]*Cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.shutdown(ctx, stopNodes)
		}()
	}
	wg.Wait()
	if stopNodes {
		// The control plane's cgroup directory goes once its node cgroups are gone.
		for _, b := range m.cg.Base() {
			_ = os.Remove(b)
		}
	}
	m.event("", "", "controlplane.stopped", fmt.Sprintf("control plane stopped (nodes stopped: %v)", stopNodes))
}

// WaitAvailable waits until the cluster's status is available or ctx ends.
func (m *Manager) WaitAvailable(ctx context.Context, name string) (Description, error) {
	for {
		d, err := m.Describe(name)
		if err != nil {
			return d, err
		}
		if d.Status == StatusAvailable {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("cluster %s is still %s: %w", name, d.Status, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
