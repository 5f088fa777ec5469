// Package pgext holds the C half of the Borealis extension (in src/, built with PGXS into
// borealis.so) and its integration tests, which run real PostgreSQL servers through
// internal/pgtest against the installed extension.
//
// The C module owns everything that touches PostgreSQL: module magic, _PG_init, GUCs, the
// index access method callbacks, pages, WAL and buffers. It loads the Go engine (engine/)
// lazily after fork and turns the engine's status codes into ereport() once Go has returned.
// It must never let a PostgreSQL ERROR unwind through Go frames.
package pgext
