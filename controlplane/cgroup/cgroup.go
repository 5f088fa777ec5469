package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Mode is how limits are enforced.
type Mode string

const (
	V1   Mode = "cgroup-v1"
	V2   Mode = "cgroup-v2"
	None Mode = "unenforced"
)

// cfsPeriod is the CPU quota period: the kernel's default, 100 ms.
const cfsPeriod = 100000

// Options locate the cgroup file systems; zero values mean the real ones.
type Options struct {
	// Proc is "/proc" unless set (tests).
	Proc string
	// Self is the pid whose cgroup is the parent of the node cgroups; 0 means this process.
	Self int
	// Scope names this control plane's directory below <own>/borealis, so two control planes
	// (two homes) never share a node cgroup.
	Scope string
}

// Controller creates node cgroups in one mode.
type Controller struct {
	mode   Mode
	reason string
	proc   string
	// bases by controller: v2 has "unified"; v1 has "memory", "cpu", "cpuacct" (cpu and
	// cpuacct may be the same directory when mounted together).
	bases map[string]string
}

// Mode is the enforcement mode.
func (c *Controller) Mode() Mode { return c.mode }

// Enforced reports whether limits are enforced.
func (c *Controller) Enforced() bool { return c.mode != None }

// Reason says why limits are not enforced ("" when they are).
func (c *Controller) Reason() string { return c.reason }

// Base is the directory node cgroups are made in, per controller.
func (c *Controller) Base() map[string]string { return c.bases }

type mount struct {
	point, root, fstype string
	opts                map[string]bool
}

func mounts(proc string) ([]mount, error) {
	f, err := os.Open(filepath.Join(proc, "self", "mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root point opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 || (b[0] != "cgroup" && b[0] != "cgroup2") {
			continue
		}
		m := mount{point: unescape(a[4]), root: unescape(a[3]), fstype: b[0], opts: map[string]bool{}}
		for _, o := range strings.Split(b[2], ",") {
			m.opts[o] = true
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func unescape(s string) string { return strings.ReplaceAll(s, `\040`, " ") }

// ownPaths are the cgroup paths of pid: "" keys the v2 path, otherwise each v1 controller.
func ownPaths(proc string, pid int) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			out[ctl] = parts[2]
		}
	}
	return out, nil
}

// dirFor is the directory of cgroup path p in mount m.
func dirFor(m mount, p string) string {
	rel, ok := strings.CutPrefix(p, m.root)
	if !ok || m.root == "/" {
		rel = p
	}
	return filepath.Join(m.point, filepath.Clean("/"+rel))
}

// Detect finds how node cgroups can be made: v2 when a cgroup2 hierarchy offers memory and cpu,
// else v1 when the memory and cpu controllers are mounted, else None with the reason.
func Detect(o Options) *Controller {
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.Self == 0 {
		o.Self = os.Getpid()
	}
	if o.Scope == "" {
		o.Scope = "default"
	}
	c := &Controller{mode: None, proc: o.Proc, bases: map[string]string{}}
	ms, err := mounts(o.Proc)
	if err != nil {
		c.reason = "cannot read the mount table: " + err.Error()
		return c
	}
	own, err := ownPaths(o.Proc, o.Self)
	if err != nil {
		c.reason = "cannot read this process's cgroup: " + err.Error()
		return c
	}
	var reasons []string
	for _, m := range ms {
		if m.fstype != "cgroup2" {
			continue
		}
		p, ok := own[""]
		if !ok {
			continue
		}
		dir := dirFor(m, p)
		ctl, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		have := map[string]bool{}
		for _, f := range strings.Fields(string(ctl)) {
			have[f] = true
		}
		if !have["memory"] || !have["cpu"] {
			reasons = append(reasons, fmt.Sprintf("cgroup v2 at %s offers %q, not both memory and cpu", dir, strings.TrimSpace(string(ctl))))
			continue
		}
		if err := c.setupV2(dir, o.Scope); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		c.mode = V2
		return c
	}
	v1 := map[string]mount{}
	for _, m := range ms {
		if m.fstype == "cgroup" {
			for _, ctl := range []string{"memory", "cpu", "cpuacct"} {
				if m.opts[ctl] {
					v1[ctl] = m
				}
			}
		}
	}
	if _, ok := v1["memory"]; ok {
		if _, ok := v1["cpu"]; ok {
			err := c.setupV1(v1, own, o.Scope)
			if err == nil {
				c.mode = V1
				return c
			}
			reasons = append(reasons, err.Error())
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no cgroup hierarchy with the memory and cpu controllers is mounted")
	}
	c.reason = strings.Join(reasons, "; ")
	c.bases = map[string]string{}
	return c
}

// createHint says what to do about a node cgroup that cannot be made. A read-only cgroup
// filesystem is what an unprivileged container has, and root inside it changes nothing (the
// advice to run as root was wrong there); anything else needs root.
func createHint(err error) string {
	if errors.Is(err, syscall.EROFS) {
		return "the cgroup filesystem is read-only, as in an unprivileged container: capacity is computed and reported, not enforced on nodes (docker run --memory and --cpus bound the whole container)"
	}
	return "run the control plane as root to enforce capacity"
}

func (c *Controller) setupV1(v1 map[string]mount, own map[string]string, scope string) error {
	for _, ctl := range []string{"memory", "cpu", "cpuacct"} {
		m, ok := v1[ctl]
		if !ok {
			continue // cpuacct is optional: CPU use is then unknown, the limits still hold
		}
		base := filepath.Join(dirFor(m, own[ctl]), "borealis", scope)
		if err := os.MkdirAll(base, 0o755); err != nil {
			return fmt.Errorf("cgroup v1: cannot create %s (%v): %s", base, errors.Unwrap(err), createHint(err))
		}
		c.bases[ctl] = base
	}
	return nil
}

func (c *Controller) setupV2(dir, scope string) error {
	enable := func(d string) error {
		return os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+memory +cpu"), 0)
	}
	if err := enable(dir); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			// The no-internal-processes rule: a cgroup with processes cannot hand controllers to
			// children. Move this process into a leaf of its own, as a container's init does.
			leaf := filepath.Join(dir, "borealis-controlplane")
			if e := os.MkdirAll(leaf, 0o755); e == nil {
				if e = os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); e == nil {
					err = enable(dir)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("cgroup v2: cannot enable memory and cpu for the cgroups below %s (%v): run the control plane as root in a cgroup it may delegate (a container, or systemd-run -p Delegate=yes)", dir, errors.Unwrap(err))
		}
	}
	base := filepath.Join(dir, "borealis", scope)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("cgroup v2: cannot create %s (%v): %s", base, errors.Unwrap(err), createHint(err))
	}
	for _, d := range []string{filepath.Join(dir, "borealis"), base} {
		if err := enable(d); err != nil {
			return fmt.Errorf("cgroup v2: cannot enable memory and cpu in %s: %v", d, err)
		}
	}
	c.bases["unified"] = base
	return nil
}

// Unenforced is a Controller that enforces nothing, for the given reason (enforcement turned
// off by configuration).
func Unenforced(reason string) *Controller {
	return &Controller{mode: None, reason: reason, proc: "/proc", bases: map[string]string{}}
}

// Group is one node's cgroup.
type Group struct {
	c    *Controller
	name string
	dirs map[string]string
	// boosted: StartCPUBoost ran and EndCPUBoost has not yet succeeded (boost.go).
	boosted bool
}

// Group creates (or finds) the cgroup called name. With limits unenforced it returns a Group
// whose methods do nothing and report ErrUnenforced.
func (c *Controller) Group(name string) (*Group, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("cgroup name %q: use a plain directory name", name)
	}
	g := &Group{c: c, name: name, dirs: map[string]string{}}
	for ctl, base := range c.bases {
		d := filepath.Join(base, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating cgroup %s: %w", d, err)
		}
		g.dirs[ctl] = d
	}
	if c.mode == V1 {
		// Charges of moved processes go with them (deprecated on recent kernels, where it is
		// refused: the limits still hold for what is allocated after the move).
		_ = os.WriteFile(filepath.Join(g.dirs["memory"], "memory.move_charge_at_immigrate"), []byte("3"), 0)
	}
	return g, nil
}

// ErrUnenforced is returned by Group methods when limits are not enforced.
var ErrUnenforced = errors.New("capacity limits are not enforced (no usable cgroup)")

// Dirs are the group's directories by controller.
func (g *Group) Dirs() map[string]string { return g.dirs }

func write(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("setting %s to %s: %w", filepath.Join(dir, file), value, err)
	}
	return nil
}

func readTrim(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}

// SetLimits sets the memory limit in bytes and the CPU quota in CPUs, and the default CPU
// weight (which also ends the count of a start-up boost a dead control plane left behind).
func (g *Group) SetLimits(memory int64, cpus float64) error {
	if memory <= 0 || cpus <= 0 || math.IsNaN(cpus) {
		return fmt.Errorf("cgroup %s: limits must be positive (memory %d, cpus %g)", g.name, memory, cpus)
	}
	quota := strconv.FormatInt(int64(math.Round(cpus*cfsPeriod)), 10)
	switch g.c.mode {
	case V2:
		d := g.dirs["unified"]
		if err := write(d, "memory.max", strconv.FormatInt(memory, 10)); err != nil {
			return err
		}
		if err := write(d, "cpu.weight", strconv.Itoa(defaultWeight)); err != nil {
			return err
		}
		return write(d, "cpu.max", quota+" "+strconv.Itoa(cfsPeriod))
	case V1:
		if err := write(g.dirs["memory"], "memory.limit_in_bytes", strconv.FormatInt(memory, 10)); err != nil {
			return err
		}
		d := g.dirs["cpu"]
		if err := write(d, "cpu.cfs_period_us", strconv.Itoa(cfsPeriod)); err != nil {
			return err
		}
		// cpu.shares is the default: a lower weight would starve the node on a busy host long
		// before its quota, a higher one would take CPU from everything else (but for the
		// start-up boost, boost.go).
		if err := write(d, "cpu.shares", strconv.Itoa(defaultShares)); err != nil {
			return err
		}
		return write(d, "cpu.cfs_quota_us", quota)
	}
	return ErrUnenforced
}

// Limits reads the limits back from the cgroup files.
func (g *Group) Limits() (memory int64, cpus float64, err error) {
	var mem, q, p string
	switch g.c.mode {
	case V2:
		if mem, err = readTrim(g.dirs["unified"], "memory.max"); err != nil {
			return
		}
		var cm string
		if cm, err = readTrim(g.dirs["unified"], "cpu.max"); err != nil {
			return
		}
		q, p, _ = strings.Cut(cm, " ")
	case V1:
		if mem, err = readTrim(g.dirs["memory"], "memory.limit_in_bytes"); err != nil {
			return
		}
		if q, err = readTrim(g.dirs["cpu"], "cpu.cfs_quota_us"); err != nil {
			return
		}
		if p, err = readTrim(g.dirs["cpu"], "cpu.cfs_period_us"); err != nil {
			return
		}
	default:
		return 0, 0, ErrUnenforced
	}
	if mem != "max" {
		memory, _ = strconv.ParseInt(mem, 10, 64)
	}
	qf, e1 := strconv.ParseFloat(q, 64)
	pf, e2 := strconv.ParseFloat(p, 64)
	if e1 == nil && e2 == nil && qf > 0 && pf > 0 {
		cpus = qf / pf
	}
	return memory, cpus, nil
}

// Attach moves process pid (all its threads) into the group. A process already in it is left
// alone: each write to cgroup.procs takes the kernel's threadgroup lock for writing, which
// waits for an RCU grace period (milliseconds on a busy host), and a resume's server is born
// inside its group (it measured 26 ms median for nine processes).
func (g *Group) Attach(pid int) error {
	if !g.c.Enforced() {
		return ErrUnenforced
	}
	if g.holds(pid) {
		return nil
	}
	for ctl, d := range g.dirs {
		if err := write(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			if _, e := os.Stat(filepath.Join(g.c.proc, strconv.Itoa(pid))); e != nil {
				continue // exited meanwhile
			}
			return fmt.Errorf("moving pid %d into the %s cgroup: %w", pid, ctl, err)
		}
	}
	return nil
}

// holds reports whether process pid is in the group in every controller, from
// /proc/PID/cgroup (paths end with borealis/<scope>/<name>).
func (g *Group) holds(pid int) bool {
	data, err := os.ReadFile(filepath.Join(g.c.proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return false
	}
	paths := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			paths["unified"] = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			paths[ctl] = parts[2]
		}
	}
	for ctl, d := range g.dirs {
		suffix := "/" + filepath.Join(filepath.Base(filepath.Dir(filepath.Dir(d))), filepath.Base(filepath.Dir(d)), g.name)
		if p, ok := paths[ctl]; !ok || !strings.HasSuffix(p, suffix) {
			return false
		}
	}
	return len(g.dirs) > 0
}

// AttachTree moves a process and its descendants into the group: the root first, so that
// whatever it forks from then on is born inside, then every descendant found in /proc.
func (g *Group) AttachTree(root int) error {
	if err := g.Attach(root); err != nil {
		return err
	}
	for _, pid := range descendants(g.c.proc, root) {
		if err := g.Attach(pid); err != nil {
			return err
		}
	}
	return nil
}

// descendants lists the processes below root, from each task's children file.
func descendants(proc string, root int) []int {
	var out []int
	queue := []int{root}
	seen := map[int]bool{root: true}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob(filepath.Join(proc, strconv.Itoa(pid), "task", "*", "children"))
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil && !seen[c] {
					seen[c] = true
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// Procs lists the processes in the group (memory hierarchy on v1).
func (g *Group) Procs() ([]int, error) {
	d := g.dirs["unified"]
	if g.c.mode == V1 {
		d = g.dirs["memory"]
	}
	if d == "" {
		return nil, ErrUnenforced
	}
	s, err := readTrim(d, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(s) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// CPUUsage is the CPU time used by the group's processes since it was made.
func (g *Group) CPUUsage() (time.Duration, error) {
	switch g.c.mode {
	case V2:
		v, err := keyed(g.dirs["unified"], "cpu.stat", "usage_usec")
		return time.Duration(v) * time.Microsecond, err
	case V1:
		d := g.dirs["cpuacct"]
		if d == "" {
			return 0, errors.New("the cpuacct controller is not mounted")
		}
		s, err := readTrim(d, "cpuacct.usage")
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return time.Duration(n), err
	}
	return 0, ErrUnenforced
}

// MemoryUsage is the memory charged to the group now, in bytes.
func (g *Group) MemoryUsage() (int64, error) {
	var s string
	var err error
	switch g.c.mode {
	case V2:
		s, err = readTrim(g.dirs["unified"], "memory.current")
	case V1:
		s, err = readTrim(g.dirs["memory"], "memory.usage_in_bytes")
	default:
		return 0, ErrUnenforced
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// OOMKills is how many processes the kernel killed in the group for exceeding its memory limit.
func (g *Group) OOMKills() (int64, error) {
	switch g.c.mode {
	case V2:
		return keyed(g.dirs["unified"], "memory.events", "oom_kill")
	case V1:
		return keyed(g.dirs["memory"], "memory.oom_control", "oom_kill")
	}
	return 0, ErrUnenforced
}

// keyed reads "key value" lines and returns key's value.
func keyed(dir, file, key string) (int64, error) {
	s, err := readTrim(dir, file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s has no %s", filepath.Join(dir, file), key)
}

// Remove deletes the group's directories; it fails while processes are in it.
func (g *Group) Remove() error {
	var errs []error
	for _, d := range g.dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
