package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/borealisdb/borealis/controlplane/store"
)

// Options configure the log service.
type Options struct {
	// Home is the control plane's home; groups live in Home/logs.
	Home  string
	Store *store.Store
	Logf  func(format string, args ...any)
	// Poll is how often sources are read; 0 means 200 ms.
	Poll time.Duration
	// SyncInterval is how long a stored record may stay written but not fsynced; 0 means
	// 500 ms. The exporter sends only fsynced records. See the durability note in doc.go.
	SyncInterval time.Duration
	// MaxGroupBytes bounds each group's storage (oldest segments go first); 0 means 256 MiB.
	MaxGroupBytes int64
	// Export, when its Endpoint is set, ships every group to an OTLP/HTTP collector.
	Export ExportOptions
}

// recentPerStream bounds the records a tailed stream keeps in memory for the exporter until
// it has sent them (at 25,000 lines/s of pgbench statements, some 4 s of them; the exporter is
// woken as each sync makes a batch durable); an exporter further behind reads the segments.
// Sent batches are let go at once, so a stream whose exporter is on time holds little.
const recentPerStream = 64 << 20

// ErrNotFound is a log group that does not exist.
var ErrNotFound = errors.New("log group not found")

// Service collects, keeps, serves and exports log groups.
type Service struct {
	opts Options
	root string

	mu      sync.Mutex // guards groups and tailers; held while tailers step
	groups  map[string]*Group
	tailers map[string]*tailer // by group + "\x00" + member

	stats    Stats
	exporter *exporter

	stop chan struct{}
	done chan struct{}
}

// Stats are counters for metrics.
type Stats struct {
	Ingested map[string]int64 // events stored, by group
	Expired  int64            // events dropped by retention or the size bound
}

// New opens the groups on disk. Start begins collection.
func New(opts Options) (*Service, error) {
	if opts.Home == "" || opts.Store == nil {
		return nil, errors.New("logs: Options.Home and Options.Store are required")
	}
	if opts.Poll == 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = 500 * time.Millisecond
	}
	if opts.MaxGroupBytes == 0 {
		opts.MaxGroupBytes = 256 << 20
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Service{opts: opts, root: filepath.Join(opts.Home, "logs"), groups: map[string]*Group{}, tailers: map[string]*tailer{},
		stats: Stats{Ingested: map[string]int64{}}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return nil, err
	}
	// Groups are <root>/borealis/cluster/<name>/<type>/group.json.
	metas, _ := filepath.Glob(filepath.Join(s.root, "borealis", "cluster", "*", "*", "group.json"))
	for _, m := range metas {
		dir := filepath.Dir(m)
		name := "/" + strings.TrimPrefix(filepath.ToSlash(strings.TrimPrefix(dir, s.root)), "/")
		if _, _, err := ParseGroupName(name); err != nil {
			continue
		}
		g, err := openGroup(s.root, name, false)
		if err != nil {
			return nil, fmt.Errorf("opening log group %s: %w", name, err)
		}
		s.groups[name] = g
	}
	if opts.Export.Endpoint != "" {
		s.exporter = newExporter(s, opts.Export)
	}
	return s, nil
}

// Start runs collection (and export) until Close.
func (s *Service) Start() {
	go s.run()
	if s.exporter != nil {
		s.exporter.start()
	}
}

// Close stops collection and export, storing what was read.
func (s *Service) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	<-s.done
	if s.exporter != nil {
		s.exporter.close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		for _, st := range g.streamList() {
			st.close()
		}
	}
}

func (s *Service) run() {
	defer close(s.done)
	tick := time.NewTicker(s.opts.Poll)
	defer tick.Stop()
	var lastSync, lastRetention time.Time
	for {
		if time.Since(lastSync) >= time.Second {
			s.syncTailers()
			lastSync = time.Now()
		}
		s.collectOnce(false, "")
		if time.Since(lastRetention) >= 30*time.Second {
			s.enforceRetention()
			lastRetention = time.Now()
		}
		select {
		case <-s.stop:
			s.collectOnce(false, "")
			return
		case <-tick.C:
		}
	}
}

// syncTailers makes one tailer per exported log type and member of every stored cluster.
func (s *Service) syncTailers() {
	clusters, err := s.opts.Store.Clusters()
	if err != nil {
		s.opts.Logf("logs: reading clusters: %v", err)
		return
	}
	want := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range clusters {
		types := c.LogExports
		if types == nil {
			types = DefaultLogTypes
		}
		for _, typ := range types {
			name := GroupName(c.Name, typ)
			for _, m := range c.Members {
				key := name + "\x00" + m.ID
				want[key] = true
				if s.tailers[key] != nil {
					continue
				}
				g, err := s.groupLocked(name, true)
				if err != nil {
					s.opts.Logf("logs: group %s: %v", name, err)
					continue
				}
				st, err := g.stream(m.ID)
				if err != nil {
					s.opts.Logf("logs: stream %s %s: %v", name, m.ID, err)
					continue
				}
				if s.exporter != nil {
					st.keepRecentUpTo(recentPerStream)
				}
				s.tailers[key] = newTailer(c.Name, m.ID, typ, filepath.Join(m.DataDir, "log"), st)
			}
		}
	}
	for key, t := range s.tailers {
		if !want[key] {
			if _, err := t.s.syncIfDue(0); err != nil {
				s.opts.Logf("logs: %s %s: %v", t.typ, t.member, err)
			}
			delete(s.tailers, key)
		}
	}
}

func (s *Service) groupLocked(name string, create bool) (*Group, error) {
	if g, ok := s.groups[name]; ok {
		return g, nil
	}
	if !create {
		return nil, fmt.Errorf("%w: %s (see `borealis logs describe-log-groups`)", ErrNotFound, name)
	}
	g, err := openGroup(s.root, name, true)
	if err != nil {
		return nil, err
	}
	s.groups[name] = g
	return g, nil
}

// collectOnce lets every tailer (of cluster only, when not empty) read until it is caught up.
func (s *Service) collectOnce(final bool, cluster string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.tailers))
	for k := range s.tailers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := s.tailers[k]
		if cluster != "" && t.cluster != cluster {
			continue
		}
		for range 64 { // bounded, so one busy node does not starve the others
			progress, stored, err := t.step(final)
			if err != nil {
				s.opts.Logf("logs: %s %s: %v", t.typ, t.member, err)
				break
			}
			s.stats.Ingested[GroupName(t.cluster, t.typ)] += int64(stored)
			if !progress {
				break
			}
		}
		every := s.opts.SyncInterval
		if final {
			every = 0
		}
		synced, err := t.s.syncIfDue(every)
		if err != nil {
			s.opts.Logf("logs: %s %s: %v", t.typ, t.member, err)
		}
		if synced && s.exporter != nil {
			s.exporter.wake()
		}
	}
}

// Flush collects everything a cluster's nodes wrote, unfinished last lines included; the
// cluster manager calls it after stopping the nodes of a cluster it deletes.
func (s *Service) Flush(cluster string) {
	s.syncTailers()
	s.collectOnce(true, cluster)
}

// Describe lists the groups whose names start with prefix.
func (s *Service) Describe(prefix string) []Description {
	s.mu.Lock()
	gs := make([]*Group, 0, len(s.groups))
	for name, g := range s.groups {
		if strings.HasPrefix(name, prefix) {
			gs = append(gs, g)
		}
	}
	s.mu.Unlock()
	out := make([]Description, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.describe())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogGroupName < out[j].LogGroupName })
	return out
}

// Group returns a group by name.
func (s *Service) Group(name string) (*Group, error) {
	if _, _, err := ParseGroupName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groupLocked(name, false)
}

// PutRetention sets a group's retention in days (0: never expire).
func (s *Service) PutRetention(name string, days int) error {
	if days < 0 || days > 3653 {
		return fmt.Errorf("retention of %d days: use 1 to 3653, or 0 to keep events until the group is deleted", days)
	}
	g, err := s.Group(name)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.meta
	m.RetentionInDays = days
	if err := writeMeta(g.dir, m); err != nil {
		return err
	}
	g.meta = m
	return nil
}

// DeleteGroup removes a group and its events. A cluster that still exports this log type
// starts a new, empty group with its next lines, as CloudWatch does.
func (s *Service) DeleteGroup(name string) error {
	g, err := s.Group(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tailers {
		if GroupName(t.cluster, t.typ) == name {
			delete(s.tailers, k)
		}
	}
	for _, st := range g.streamList() {
		st.close()
	}
	delete(s.groups, name)
	if s.exporter != nil {
		s.exporter.forget(name)
	}
	return os.RemoveAll(g.dir)
}

// Snapshot returns the counters.
func (s *Service) Snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Ingested: map[string]int64{}, Expired: s.stats.Expired}
	for k, v := range s.stats.Ingested {
		out.Ingested[k] = v
	}
	return out
}

func (s *Service) groupList() []*Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Group, 0, len(s.groups))
	for _, g := range s.groups {
		out = append(out, g)
	}
	return out
}
