// Package logs owns log groups: it collects each node's jsonlog files as PostgreSQL writes
// them, sorts the lines into groups named as Aurora does (/borealis/cluster/<name>/error and
// /borealis/cluster/<name>/postgresql, one stream per instance), keeps them in a local, durable,
// bounded store with a retention per group, serves them to readers (describe, filter, tail),
// and exports them as OpenTelemetry logs over OTLP/HTTP.
//
// The path of a line: node <datadir>/log/*.json → tailer (one per group and instance, reading
// complete lines from a byte offset) → stream segment files under <home>/logs/<group>/ (each
// record carries the source file and the offset after its line, so the store itself is the
// tailer's recorded position: appended and fsynced together, nothing is lost or duplicated
// across a kill -9 of the control plane) → readers, and the exporter (its own cursor per stream).
//
// It reads cluster definitions from the store and node files from disk. It never starts,
// stops or connects to a node, and it never deletes node data; group data outlives the cluster
// until the user deletes the group or retention expires it.
package logs
