// Package cgroup enforces a node's capacity on its process tree: one cgroup per node with a
// memory limit and a CPU quota, on cgroup v2 (memory.max, cpu.max) or v1 (the memory, cpu and
// cpuacct hierarchies: memory.limit_in_bytes, cpu.cfs_quota_us). Node cgroups live below the
// control plane's own cgroup (<own>/borealis/<control plane>/<member>), so a control plane in a
// container or a delegated systemd scope limits its nodes inside its own allowance.
//
// Detect never fails: when cgroups cannot be used (not root, no memory or cpu controller, a v2
// cgroup whose controllers cannot be delegated) it returns a Controller whose Enforced is false
// and whose Reason says why, and the caller runs the nodes unenforced and says so.
//
// For a resume's start it raises a node cgroup's CPU weight along its chain and lifts its
// quota, then restores them (boost.go).
//
// It owns the cgroup directories it creates and the files in them. It never kills processes,
// never moves processes other than those it is handed, and knows nothing of PostgreSQL.
package cgroup
