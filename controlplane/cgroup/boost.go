package cgroup

// A start-up CPU boost for a node cgroup, as systemd's StartupCPUWeight: while a paused
// cluster's writer starts and serves the clients that woke it, its cgroup weighs as much as a
// nice -15 process and has no quota; then the capacity's values come back.
//
// The weight must be raised along the whole chain of cgroups this package made, not only the
// node's: the scheduler shares the CPU among siblings level by level, so the node's weight only
// counts against the other nodes of its control plane, the control plane's directory against
// other control planes, and the borealis directory against every process and cgroup beside it
// (on a busy host, hundreds of runnable tasks at weight 1024 each). The two ancestor
// directories are shared (by every cluster of a control plane, and by every control plane on
// the host), so one goes back to the default only when no boosted node is left below it. That
// count is read from the cgroup files themselves, so it holds across control planes and after
// a crash; SetLimits puts a node's own weight back to the default, so an adopted node left
// boosted by a dead control plane stops counting.

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
)

const (
	// StartupShares is the v1 cpu.shares of a boosted cgroup: the kernel's weight of a nice -15
	// task (sched_prio_to_weight), about 28 times a nice-0 task's 1024.
	StartupShares = 29154
	// StartupWeight is the same weight as a v2 cpu.weight (the kernel maps weight w to w×1024/100).
	StartupWeight = 2847
	defaultShares = 1024
	defaultWeight = 100
)

// Setting is one value for one cgroup file.
type Setting struct {
	Dir, File, Value string
}

// Ancestor is one cgroup directory above a node's, with how many other nodes below it are
// boosted now (besides the one being decided).
type Ancestor struct {
	Dir           string
	BoostedOthers int
}

// CPUBoostPlan is the pure decision of the files to write to start (boost true) or end a
// node's start-up CPU boost: node is the node cgroup's cpu directory, ancestors the ones above
// it that this package made, cpus the capacity's CPU quota to restore. On v1 the weight is
// cpu.shares and the quota cpu.cfs_quota_us (-1 is none); on v2 cpu.weight and cpu.max.
func CPUBoostPlan(mode Mode, boost bool, node string, ancestors []Ancestor, cpus float64) ([]Setting, error) {
	var weightFile, quotaFile, boostWeight, normalWeight, noQuota, quota string
	q := int64(math.Round(cpus * cfsPeriod))
	switch mode {
	case V1:
		weightFile, quotaFile = "cpu.shares", "cpu.cfs_quota_us"
		boostWeight, normalWeight = strconv.Itoa(StartupShares), strconv.Itoa(defaultShares)
		noQuota, quota = "-1", strconv.FormatInt(q, 10)
	case V2:
		weightFile, quotaFile = "cpu.weight", "cpu.max"
		boostWeight, normalWeight = strconv.Itoa(StartupWeight), strconv.Itoa(defaultWeight)
		noQuota, quota = "max "+strconv.Itoa(cfsPeriod), strconv.FormatInt(q, 10)+" "+strconv.Itoa(cfsPeriod)
	default:
		return nil, ErrUnenforced
	}
	if node == "" {
		return nil, errors.New("cgroup CPU boost: no cpu directory for the node")
	}
	if boost {
		// Outermost first, so that the node's weight counts from the moment it is written.
		var out []Setting
		for i := len(ancestors) - 1; i >= 0; i-- {
			out = append(out, Setting{ancestors[i].Dir, weightFile, boostWeight})
		}
		return append(out, Setting{node, weightFile, boostWeight}, Setting{node, quotaFile, noQuota}), nil
	}
	if !(cpus > 0) || math.IsInf(cpus, 0) {
		return nil, fmt.Errorf("cgroup CPU boost: the capacity's CPU quota to restore must be positive, not %g", cpus)
	}
	// The quota first: the node is held to its capacity again before its weight drops.
	out := []Setting{{node, quotaFile, quota}, {node, weightFile, normalWeight}}
	for _, a := range ancestors {
		if a.BoostedOthers == 0 {
			out = append(out, Setting{a.Dir, weightFile, normalWeight})
		}
	}
	return out, nil
}

// cpuDir is the group's directory of the cpu controller.
func (g *Group) cpuDir() string {
	if g.c.mode == V2 {
		return g.dirs["unified"]
	}
	return g.dirs["cpu"]
}

// weightFile is the CPU weight's file name in the controller's mode.
func (c *Controller) weightFile() (file, boosted string) {
	if c.mode == V2 {
		return "cpu.weight", strconv.Itoa(StartupWeight)
	}
	return "cpu.shares", strconv.Itoa(StartupShares)
}

// ancestors are the cpu directories above the group that this package made: the control
// plane's scope directory and the borealis directory above it.
func (g *Group) ancestors() []string {
	scope := filepath.Dir(g.cpuDir())
	return []string{scope, filepath.Dir(scope)}
}

// boostedBelow counts the node cgroups depth levels below dir (1: scope/node, 2:
// borealis/scope/node) whose weight is the boosted one, other than skip.
func (c *Controller) boostedBelow(dir string, depth int, skip string) int {
	file, boosted := c.weightFile()
	pattern := dir
	for range depth {
		pattern = filepath.Join(pattern, "*")
	}
	matches, _ := filepath.Glob(filepath.Join(pattern, file))
	n := 0
	for _, m := range matches {
		if d := filepath.Dir(m); d != skip {
			if s, err := readTrim(d, file); err == nil && s == boosted {
				n++
			}
		}
	}
	return n
}

// apply writes the settings in order and reads each back, and reports every one that failed
// or reads back otherwise, naming the file.
func apply(settings []Setting) error {
	var errs []error
	for _, s := range settings {
		if err := write(s.Dir, s.File, s.Value); err != nil {
			errs = append(errs, err)
			continue
		}
		if got, err := readTrim(s.Dir, s.File); err != nil {
			errs = append(errs, fmt.Errorf("reading back %s: %w", filepath.Join(s.Dir, s.File), err))
		} else if got != s.Value {
			errs = append(errs, fmt.Errorf("%s reads %q after writing %q", filepath.Join(s.Dir, s.File), got, s.Value))
		}
	}
	return errors.Join(errs...)
}

// StartCPUBoost raises the group's CPU weight and its ancestors', and lifts its quota, until
// EndCPUBoost. On a failure the group is left boosted as far as it got, and EndCPUBoost still
// restores it.
func (g *Group) StartCPUBoost() error {
	var anc []Ancestor
	for _, d := range g.ancestors() {
		anc = append(anc, Ancestor{Dir: d})
	}
	plan, err := CPUBoostPlan(g.c.mode, true, g.cpuDir(), anc, 0)
	if err != nil {
		return err
	}
	g.boosted = true
	if err := apply(plan); err != nil {
		return fmt.Errorf("raising the start-up CPU weight of cgroup %s: %w", g.name, err)
	}
	return nil
}

// CPUBoosted reports whether the group's start-up boost has not been ended yet (or ending it
// failed and must be tried again).
func (g *Group) CPUBoosted() bool { return g.boosted }

// EndCPUBoost puts the capacity's values back: the quota of cpus CPUs and the default weight
// on the node, and the default weight on each ancestor with no other boosted node below it.
// A failure leaves the group marked boosted (CPUBoosted), so the caller reports it and tries
// again; a group not boosted is left alone.
func (g *Group) EndCPUBoost(cpus float64) error {
	if !g.boosted {
		return nil
	}
	var anc []Ancestor
	for i, d := range g.ancestors() {
		anc = append(anc, Ancestor{Dir: d, BoostedOthers: g.c.boostedBelow(d, i+1, g.cpuDir())})
	}
	plan, err := CPUBoostPlan(g.c.mode, false, g.cpuDir(), anc, cpus)
	if err != nil {
		return err
	}
	if err := apply(plan); err != nil {
		return fmt.Errorf("restoring the CPU weight and quota of cgroup %s after its start-up boost: %w", g.name, err)
	}
	g.boosted = false
	return nil
}

// CPUWeight reads the group's CPU weight (cpu.shares on v1, cpu.weight on v2) and its quota in
// CPUs (0 when it has none).
func (g *Group) CPUWeight() (weight int, cpus float64, err error) {
	file, _ := g.c.weightFile()
	if !g.c.Enforced() {
		return 0, 0, ErrUnenforced
	}
	s, err := readTrim(g.cpuDir(), file)
	if err != nil {
		return 0, 0, err
	}
	if weight, err = strconv.Atoi(s); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", filepath.Join(g.cpuDir(), file), err)
	}
	_, cpus, err = g.Limits()
	return weight, cpus, err
}
