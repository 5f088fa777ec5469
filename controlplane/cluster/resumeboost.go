package cluster

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
// autogroups only apply in the root cgroup: the boost then covers the start, not the first
// queries (see docs/architecture.md, "Start-up boost", for the next lever).

// resumeStartNice is the nice value of a resuming writer's sessions until the boost ends:
// about 28 times a normal session's CPU weight while the CPU is contended, and nothing when it
// is idle. Measured at load ~35: -10 left the postmaster 75–107 ms in the run queue, -15
// 40–50 ms; the bench went from p99 1.27 s (-10, load 45–52) to 0.76 s (-15, load 34–41).
const resumeStartNice = -15

// endStartBoost puts a boosted writer back at normal priority (run goroutine only); backends
// forked from then on inherit the normal value.
func (c *Cluster) endStartBoost() {
	for _, mb := range c.members {
		if mb.node != nil && mb.node.Boosted {
			n := mb.node.RestoreNice()
			c.m.opts.Logf("cluster %s: node %s back at normal CPU priority (%d processes)", c.rec.Name, mb.id, n)
		}
	}
}
