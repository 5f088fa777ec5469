// Package bgworker is the Go half of the Borealis node agent: the background worker that runs
// in every PostgreSQL node, measures its load and decides whether now is a scaling point.
//
// It owns pure computation on plain values: the CPU use of the postmaster and its children
// from /proc (with its 1- and 5-minute averages), their memory (PSS) from /proc, and the
// decision "scaling point now: yes, or no and why not" from per-session facts that the C half
// (pgext/src/agent*.c) reads from PostgreSQL's shared memory.
//
// It must never touch PostgreSQL: no calls into the server, no database connections, no
// signals. It never imports the index code (simd, hnsw, engine). The c-shared library that
// the worker process loads (agentlib) is a thin wrapper around this package.
package bgworker
