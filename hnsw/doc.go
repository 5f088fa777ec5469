// Package hnsw is Borealis' in-memory Hierarchical Navigable Small World graph
// (Malkov & Yashunin, 2018) for approximate nearest-neighbour search.
//
// What this package owns: the graph itself — stored vectors, levels, neighbour
// lists, the entry point — and the algorithms over it: insertion with the
// neighbour-selection heuristic (Algorithm 4, keepPrunedConnections), greedy
// descent plus beam search, deletion with neighbour repair, an iterator that can
// continue past ef, filtered and distance-bounded search, graph repair (linking
// elements pruning left unreachable), a byte encoding, and the
// read/reconstruct accessors the PostgreSQL index AM uses to mirror the graph
// into pages.
//
// What it must never touch: it is pure Go, with no cgo, no PostgreSQL headers and
// no I/O besides the byte slices and vectors the caller hands it. Distance
// kernels live in package simd, the only Borealis package imported here; the
// engine (the index AM's Go side) sits above and imports hnsw, never the reverse.
//
// Metrics mirror pgvector: Cosine is `<=>` (1 − cos), L2 is `<->` (Euclidean
// distance) and InnerProduct is `<#>` (−a·b). Result distances are exactly those
// values so the AM can return them as ORDER BY values. Internally L2 searches
// on squared distances and cosine stores unit-length copies, so every distance
// evaluated during a search is one simd kernel call.
//
// Node ids are uint32 values up to MaxID (2^31 − 1) chosen by the caller.
// They are expected to be dense (0..n-1): storage is sized by the largest id, so sparse ids waste the
// memory of the gaps (they are never returned). Adding an id that is already
// present, deleted or not, fails with ErrDuplicateID and leaves the graph
// unchanged.
//
// Insertion follows the paper with one shortcut: when a neighbour's full list
// must drop a candidate, the diversity test is updated incrementally from
// per-entry "kept" bits instead of re-run over the whole list (see link),
// which removes most of the pruning cost from a build.
//
// Concurrency: Add, AddTracked, AddBatch, Delete, searches and iterators may run
// concurrently. Neighbour lists are fixed-capacity arrays in one slab (layer 0)
// or in one small per-node array (upper layers); writers take a per-node lock,
// readers load entries atomically and never block. The entry point is a single
// atomic word. Restore, SetNeighbors, SetEntryPoint and MarkDeleted are meant for
// rebuilding a cache and follow the same locking.
package hnsw
