// Package cluster runs Borealis clusters on this machine: one writer and N hot-standby readers,
// each a PostgreSQL 15 server supervised as a local process (run as the postgres user when the
// control plane is root), with the cluster's router in front.
//
// A Manager keeps every cluster's definition and members in the store, creates nodes (initdb and
// the borealis extension for the writer; pg_basebackup with a replication slot for readers),
// notices a node process dying, records an event and restarts it, and polls each node's load,
// replication lag and borealis.node_status(). Nodes are started detached from the control plane
// (no parent-death signal), so a restarted Manager adopts the ones still running — found by
// postmaster.pid and a liveness check — and restarts the others. Nothing is created twice: a
// member is only rebuilt when it was never completed. A writer that hangs, loses its data or
// cannot be restarted within the grace period is fenced and a reader promoted (failover.go,
// with the decisions in package failover); the fenced member rejoins as a reader.
//
// It also applies capacity: each node runs in its own cgroup (package cgroup) with the settings
// of its capacity in capacity.conf (package capacity); the decision function (package scaling)
// or a manual request changes it in place, or with a restart at a scaling point within the
// timeout, then the timeout action (scaling.go).
//
// It owns node processes, their data directories under the home directory, and cluster state.
// It never speaks the client protocol (the router does) and never loads the index engine.
package cluster
