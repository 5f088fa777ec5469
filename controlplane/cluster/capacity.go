package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/capacity"
	"github.com/borealisdb/borealis/controlplane/cgroup"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

type storeMember = store.Member

// capacityConf is the file, in each node's data directory, that holds the settings capacity
// owns; postgresql.conf includes it last, so it wins over the base settings.
const capacityConf = "capacity.conf"

// detectCgroups finds how this control plane can enforce capacity, scoped by its home so two
// control planes never share a node cgroup, and records an event either way.
func (m *Manager) detectCgroups() {
	switch {
	case m.opts.Cgroups != nil:
		m.cg = m.opts.Cgroups
	case !m.opts.EnforceCapacity:
		m.cg = cgroup.Unenforced("capacity enforcement is turned off (borealis serve --enforce-capacity=false, or cluster.Options.EnforceCapacity unset)")
	default:
		sum := sha256.Sum256([]byte(m.opts.Home))
		m.cg = cgroup.Detect(cgroup.Options{Scope: "cp-" + hex.EncodeToString(sum[:6])})
	}
	if m.cg.Enforced() {
		m.event("", "", "capacity.enforced", fmt.Sprintf("capacity is enforced with %s (1 ACU = %d GiB and %g CPU per node)",
			m.cg.Mode(), capacity.MemoryPerACU>>30, capacity.CPUPerACU))
	} else {
		m.event("", "", "capacity.unenforced", "capacity is NOT enforced on nodes: "+m.cg.Reason())
	}
}

// Enforcement is how capacity is enforced, for describe.
type Enforcement struct {
	Mode     string `json:"Mode"`
	Enforced bool   `json:"Enforced"`
	Reason   string `json:"Reason,omitempty"`
}

// Enforcement is how this control plane enforces capacity.
func (m *Manager) Enforcement() Enforcement {
	return Enforcement{Mode: string(m.cg.Mode()), Enforced: m.cg.Enforced(), Reason: m.cg.Reason()}
}

// settingsFor are the capacity settings of this member at acu: a reader keeps max_connections
// at least its writer's at MaxCapacity, which PostgreSQL requires of a hot standby.
func (mb *member) settingsFor(writer bool, acu float64) []capacity.Setting {
	if writer {
		return capacity.Settings(acu)
	}
	mb.c.mu.Lock()
	maxCap := mb.c.rec.Scaling.MaxCapacity
	mb.c.mu.Unlock()
	return capacity.StandbySettings(acu, maxCap)
}

// writeCapacityConf writes capacity.conf for acu and makes sure postgresql.conf includes it.
func writeCapacityConf(dataDir string, settings []capacity.Setting) error {
	var b strings.Builder
	b.WriteString("# Written by the Borealis control plane from the node's capacity; do not edit.\n")
	sorted := append([]capacity.Setting(nil), settings...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, s := range sorted {
		fmt.Fprintf(&b, "%s = %s\n", s.Name, pgproc.Quote(s.Value))
	}
	path := filepath.Join(dataDir, capacityConf)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	_ = chownLike(path, dataDir)
	main := filepath.Join(dataDir, "postgresql.conf")
	data, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("reading %s: %w", main, err)
	}
	line := "include_if_exists = '" + capacityConf + "'"
	if strings.Contains(string(data), line) {
		return nil
	}
	f, err := os.OpenFile(main, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString("\n# capacity-owned settings (max_connections, shared_buffers, ...), last so they win\n" + line + "\n")
	return err
}

// chownLike gives path the owner of ref (the data directory's, the server user).
func chownLike(path, ref string) error {
	st, err := os.Stat(ref)
	if err != nil {
		return err
	}
	if sys, ok := statOwner(st); ok {
		return os.Chown(path, sys.uid, sys.gid)
	}
	return nil
}

// enforce puts the running node's process tree in its cgroup with acu's limits. Unenforced
// control planes do nothing here (they said so at start); a failure is an event and leaves the
// node running unenforced.
func (mb *member) enforce(acu float64) {
	if !mb.c.m.cg.Enforced() || mb.node == nil {
		return
	}
	var err error
	if mb.group == nil {
		mb.group, err = mb.c.m.cg.Group(mb.id)
	}
	if err == nil && !mb.group.CPUBoosted() {
		// (A boosted group was set up before the launch: prepareBoostedGroup.)
		err = mb.group.SetLimits(capacity.MemoryBytes(acu), capacity.CPUs(acu))
		if err == nil && mb.startNice < 0 {
			mb.startCgroupBoost() // before the move: the node never runs under its quota meanwhile
		}
	}
	if err == nil {
		err = mb.group.AttachTree(mb.node.PID())
	}
	if err != nil {
		mb.statsMu.Lock()
		mb.enforceErr = err.Error()
		mb.statsMu.Unlock()
		mb.event("capacity.enforce-failed", "node %s runs without capacity limits: %v", mb.id, err)
		return
	}
	mb.statsMu.Lock()
	mb.enforceErr = ""
	mb.statsMu.Unlock()
	mb.cpu.reset()
	mb.oomSeen = -1 // kills counted before now (an adopted node's past) do not count
}

// removeGroup deletes the member's cgroup once its processes are gone.
func (mb *member) removeGroup() {
	mb.endCgroupBoost() // a node stopped inside its start-up boost must not keep the ancestors raised
	if mb.group == nil && mb.c.m.cg.Enforced() {
		// Kept through a pause by an earlier control plane (stopKeepingGroup).
		mb.group, _ = mb.c.m.cg.Group(mb.id)
	}
	if mb.group != nil && mb.group.Remove() == nil {
		mb.group = nil // made again at the next start (after a pause, say)
	}
}

// cpuWindow keeps the cgroup's CPU counter over time, for 1- and 5-minute averages.
type cpuWindow struct {
	samples []cpuSample
}

type cpuSample struct {
	at    time.Time
	usage time.Duration
}

func (w *cpuWindow) reset() { w.samples = nil }

func (w *cpuWindow) add(at time.Time, usage time.Duration, keep time.Duration) {
	if n := len(w.samples); n > 0 && usage < w.samples[n-1].usage {
		w.samples = nil // a new cgroup or counter
	}
	w.samples = append(w.samples, cpuSample{at, usage})
	for len(w.samples) > 2 && at.Sub(w.samples[1].at) >= keep {
		w.samples = w.samples[1:]
	}
}

// percent is the CPU used over the last span (or what is sampled of it) as a share of cpus,
// and how much time that covers.
func (w *cpuWindow) percent(span time.Duration, cpus float64) (float64, time.Duration) {
	n := len(w.samples)
	if n < 2 || cpus <= 0 {
		return 0, 0
	}
	last := w.samples[n-1]
	first := w.samples[0]
	for _, s := range w.samples {
		if last.at.Sub(s.at) <= span {
			first = s
			break
		}
	}
	el := last.at.Sub(first.at)
	if el <= 0 {
		return 0, 0
	}
	return 100 * float64(last.usage-first.usage) / (float64(el) * cpus), el
}

// NodeCgroup is the cgroup of a member (for tests and diagnostics); it fails when capacity is
// not enforced.
func (m *Manager) NodeCgroup(member string) (*cgroup.Group, error) {
	if !m.cg.Enforced() {
		return nil, cgroup.ErrUnenforced
	}
	return m.cg.Group(member)
}
