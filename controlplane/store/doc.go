// Package store persists the control plane's state — cluster definitions (with their members)
// and the event log — in one embedded bbolt file, so a restarted control plane finds every
// cluster it ran and none twice.
//
// bbolt rather than SQLite: the state is a handful of keyed records and an append-only log,
// bbolt is pure Go (no cgo in the daemon), its single-writer file lock stops two control
// planes from sharing one home, and each update is one fsynced transaction.
//
// The store owns the record formats and the file. It never starts processes or opens
// database connections.
package store
