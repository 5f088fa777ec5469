// Package capacity is the one source of truth for what a capacity in ACUs means on a node:
// its memory and CPU, and the PostgreSQL settings that follow it (Settings), with which of
// them need a restart. It is pure: no I/O, no state.
//
// Other packages import it rather than repeating figures: the cluster manager writes these
// settings into each node's capacity.conf and sizes its cgroup from MemoryBytes and CPUs; the
// parameter-group code refuses the names in Owned, because capacity sets them.
//
// It owns the table only. It never touches processes, files or cgroups.
package capacity
