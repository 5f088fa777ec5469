// Package logs owns log groups: it collects each node's jsonlog files as PostgreSQL writes
// them, sorts the lines into groups named as Aurora does (/borealis/cluster/<name>/error and
// /borealis/cluster/<name>/postgresql, one stream per instance), keeps them in a local, durable,
// bounded store with a retention per group, serves them to readers (describe, filter, tail),
// and exports them as OpenTelemetry logs over OTLP/HTTP.
//
// The path of a line: node <datadir>/log/*.json → tailer (one per group and instance, reading
// complete lines from a byte offset) → stream segment files under <home>/logs/<group>/ (each
// record carries the source file and the offset after its line, so the store itself is the
// tailer's recorded position: written together, nothing is lost or duplicated across a kill -9
// of the control plane) → readers, and the exporter (its own cursor per stream).
//
// Durability. A batch is written (one write) as it is read, and each stream is fsynced at most
// once per Options.SyncInterval (500 ms). This keeps every guarantee:
//   - kill -9 of the control plane: a written record is in the page cache, which the process's
//     death does not touch; the reopened stream finds it (and fsyncs it before anything else),
//     and the tailer resumes after its line. A write torn by the kill is cut off at open.
//   - a crash of the OS (or power loss) may take back the records written since the last sync.
//     The tailer then resumes from the last record that survived, and reads the lost lines
//     again from the node's file, which is still on disk (PostgreSQL does not fsync its log
//     either, so a line the crash took from the node's file was lost at its source, not here).
//   - the exporter sends only synced records (stream.durableSeq), so its cursor never passes
//     a record an OS crash could take back and number differently when it is read again.
//
// Fsyncing every batch cost more than the rest of the store's work per line (a sync writes
// back the pages of the batch at once, in the collector's thread).
//
// It reads cluster definitions from the store and node files from disk. It never starts,
// stops or connects to a node, and it never deletes node data; group data outlives the cluster
// until the user deletes the group or retention expires it.
package logs
