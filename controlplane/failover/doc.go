// Package failover holds the pure decisions of writer failover, with no I/O: which reader to
// promote (Choose), and what a run of observations of the writer calls for (Detector: nothing,
// restart in place, or promote). The cluster package gathers the observations (process exit,
// data directory, connect-and-query probes, the node agent's heartbeat, the readers' WAL
// receivers), carries out the action (fence, pg_promote, re-point readers) and records events.
//
// It owns these rules and their documentation only. It never opens connections, starts or
// signals processes, or reads the store.
package failover
