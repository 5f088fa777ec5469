package cluster

import (
	"fmt"
	"strings"

	"github.com/borealisdb/borealis/controlplane/capacity"
)

// A resume's start-up is the one node start that clients sit waiting for, so it runs at a
// raised CPU priority until the first queries have had the CPU (resumeQuiet), as systemd's
// StartupCPUWeight and Kubernetes' start-up CPU boost do for a service's start
// (pgproc.Config.StartNice).
//
// Measured on the shared 2-core VM at load average ~35 from other sessions: PostgreSQL's
// start-up needs only ~180 ms of CPU, but spent 0.6–2.1 s of its 0.7–2.7 s fork-to-ready
// waiting in the run queue, and the first client's backend ~0.5–1 s more. The scheduler's
// autogroups weigh each session equally whatever its processes' nice values, and PostgreSQL
// makes every child (backends included) a session of its own, so the boost raises the
// postmaster's autogroup and each child's as it appears. Boosted, fork-to-ready took
// 0.33–0.43 s, the first backend's connect 70–90 ms and its first vector query 0.1–0.23 s.
//
// With capacity enforcement on, enforce moves the node into its cgroup once it is ready, and
// from then on nice values and autogroups only rank processes inside that cgroup: what the
// scheduler weighs against the rest of the host is the cgroup's weight (and its ancestors'),
// and the quota caps it. So a resume also raises the node cgroup's CPU weight along its chain
// and lifts its quota (cgroup.Group.StartCPUBoost) for the same window, and puts the
// capacity's values back with the nice values. A restore that fails is an event and an
// EnforcementError in describe, and is retried at every turn of the loop until it succeeds.

// resumeStartNice is the nice value of a resuming writer's sessions until the boost ends:
// about 28 times a normal session's CPU weight while the CPU is contended, and nothing when it
// is idle. Measured at load ~35: -10 left the postmaster 75–107 ms in the run queue, -15
// 40–50 ms; the bench went from p99 1.27 s (-10, load 45–52) to 0.76 s (-15, load 34–41).
const resumeStartNice = -15

// endStartBoost puts a boosted writer back at normal priority (run goroutine only); backends
// forked from then on inherit the normal value.
func (c *Cluster) endStartBoost() {
	for _, mb := range c.members {
		// The cgroup first: back under its quota before its processes lose their priority.
		mb.endCgroupBoost()
		if mb.node != nil && mb.node.Boosted {
			n := mb.node.RestoreNice()
			c.m.opts.Logf("cluster %s: node %s back at normal CPU priority (%d processes)", c.rec.Name, mb.id, n)
		}
	}
}

// prepareBoostedGroup readies the node's cgroup for a resume's start before the postmaster is
// launched: made, at the capacity's memory limit, with its CPU weight raised and no quota, so
// that the postmaster can be put in it at launch and all its children are born inside. At
// ready, moving a started server's tree in took 120–190 ms on this machine (memory charges
// move with each process), on the path of every client the resume holds. When it cannot,
// enforce at ready does the usual move and says why.
func (mb *member) prepareBoostedGroup(acu float64) {
	if !mb.c.m.cg.Enforced() || mb.c.m.opts.NoCgroupStartupBoost {
		return
	}
	var err error
	if mb.group == nil {
		if mb.group, err = mb.c.m.cg.Group(mb.id); err != nil {
			return
		}
	}
	if err := mb.group.SetLimits(capacity.MemoryBytes(acu), capacity.CPUs(acu)); err != nil {
		return
	}
	mb.startCgroupBoost()
}

// startCgroupBoost raises the node cgroup's CPU weight and lifts its quota for a resume's
// start (run goroutine only, from enforce). A failure leaves the start at the capacity's
// values, and says so in the resume's event.
func (mb *member) startCgroupBoost() {
	mb.cgBoost = ""
	if mb.c.m.opts.NoCgroupStartupBoost {
		mb.cgBoost = "cgroup at the capacity's CPU weight and quota (NoCgroupStartupBoost)"
		return
	}
	if err := mb.group.StartCPUBoost(); err != nil {
		mb.cgBoost = "cgroup at the capacity's CPU weight: " + err.Error()
		mb.event("capacity.boost-failed", "node %s starts without its start-up CPU weight: %v", mb.id, err)
		return
	}
	w, _, err := mb.group.CPUWeight()
	if err != nil {
		mb.cgBoost = "cgroup CPU weight unreadable: " + err.Error()
		return
	}
	mb.cgBoost = fmt.Sprintf("cgroup CPU weight %d and no quota", w)
}

// endCgroupBoost puts the capacity's CPU weight and quota back on a boosted node cgroup (run
// goroutine only). A failure is reported (event, EnforcementError) and tried again on the
// next call; the first success after one clears the error and says so.
func (mb *member) endCgroupBoost() {
	if mb.group == nil || !mb.group.CPUBoosted() {
		return
	}
	acu := mb.record().Capacity // kept through a pause: it resumes at what it had
	err := mb.group.EndCPUBoost(capacity.CPUs(acu))
	mb.statsMu.Lock()
	failedBefore := strings.HasPrefix(mb.enforceErr, boostRestoreErr)
	if err != nil {
		mb.enforceErr = boostRestoreErr + err.Error()
	} else if failedBefore {
		mb.enforceErr = ""
	}
	mb.statsMu.Unlock()
	switch {
	case err != nil && !failedBefore:
		mb.event("capacity.boost-restore-failed", "node %s: its start-up CPU boost could not be fully ended (its CPU weight or quota is not the capacity's): %v (retrying)", mb.id, err)
	case err != nil:
		mb.c.m.opts.Logf("cluster %s: node %s: %v", mb.c.rec.Name, mb.id, err)
	case failedBefore:
		mb.event("capacity.boost-restored", "node %s is back at its capacity's CPU weight and quota (%g CPU)", mb.id, capacity.CPUs(acu))
	default:
		mb.c.m.opts.Logf("cluster %s: node %s back at its cgroup's CPU weight and a quota of %g CPU", mb.c.rec.Name, mb.id, capacity.CPUs(acu))
	}
}

// boostRestoreErr begins the EnforcementError of a node whose start-up boost could not be
// ended.
const boostRestoreErr = "the start-up CPU boost could not be ended: "
