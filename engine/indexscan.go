package main

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"sync"

	"github.com/borealisdb/borealis/hnsw"
)

// A scan is an hnsw.Iterator over a backend's cache: it yields (element, distance) in
// increasing distance for as long as amgettuple asks, which gives iterative scans for free.

var (
	scansMu  sync.Mutex
	scans    = map[int64]*hnsw.Iterator{}
	nextScan int64
)

// borealis_index_scan_begin starts a search for q (dims floats) with beam width ef. relaxed
// non-zero is iterative_scan = relaxed_order: nodes found late are returned, not skipped.
// maxTuples (borealis.max_scan_tuples) and maxMemory (bytes, work_mem ×
// borealis.scan_mem_multiplier) end the graph walk as pgvector's do; 0 means no bound.
//
//export borealis_index_scan_begin
func borealis_index_scan_begin(h C.longlong, q *C.float, ef C.int, relaxed C.int, maxTuples, maxMemory C.longlong,
	scan *C.longlong) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	if err := reserve("a borealis_hnsw scan (visited set and candidate heaps)", scanBytes(g, int(ef))); err != nil {
		return fail(err)
	}
	it, err := g.x.NewIterator(floats(q, g.x.Dims()), hnsw.SearchOptions{Ef: int(ef), RelaxedOrder: relaxed != 0,
		Interrupt: interrupted, MaxVisited: int(maxTuples), MaxMemory: int64(maxMemory)})
	if err != nil {
		return fail(fmt.Errorf("query vector %s", vectorProblem(err)))
	}
	scansMu.Lock()
	nextScan++
	scans[nextScan] = it
	*scan = C.longlong(nextScan)
	scansMu.Unlock()
	return statusOK
}

// borealis_index_scan_next writes up to max results into ids and dists; *n is how many, 0 when
// the graph is exhausted. It polls PostgreSQL's interrupt flag between results (and the
// iterator polls it between search rounds) and returns statusInterrupted (with *n results)
// when one is pending.
//
//export borealis_index_scan_next
func borealis_index_scan_next(scan C.longlong, max C.int, ids *C.uint32_t, dists *C.float, n *C.int) (rc C.int) {
	defer guard(&rc)
	scansMu.Lock()
	it := scans[int64(scan)]
	scansMu.Unlock()
	*n = 0
	if it == nil {
		return fail(fmt.Errorf("no scan with handle %d", int64(scan)))
	}
	// An iterative scan keeps candidates for later rounds (bounded by work_mem ×
	// borealis.scan_mem_multiplier, which may be set past what the backend can hold).
	if err := reserve("an iterative borealis_hnsw scan's kept candidates", 0); err != nil {
		return fail(err)
	}
	outIDs := uint32s(ids, int(max))
	outDists := floats(dists, int(max))
	for i := range int(max) {
		// After the first result, so every call makes progress even while PostgreSQL holds
		// interrupts off.
		if i > 0 && interrupted() {
			return statusInterrupted
		}
		r, ok := it.Next()
		if !ok {
			if it.Interrupted() {
				return statusInterrupted
			}
			break
		}
		outIDs[i], outDists[i] = r.ID, r.Distance
		*n = C.int(i + 1)
	}
	return statusOK
}

// borealis_index_scan_end releases a scan.
//
//export borealis_index_scan_end
func borealis_index_scan_end(scan C.longlong) (rc C.int) {
	defer guard(&rc)
	scansMu.Lock()
	it := scans[int64(scan)]
	delete(scans, int64(scan))
	scansMu.Unlock()
	if it != nil {
		it.Close()
	}
	return statusOK
}

// scanBytes is what a search of g with beam ef may allocate: a visited bit per element
// (with the growth slack of hnsw's scratch), the query, and the candidate and result heaps.
func scanBytes(g *graph, ef int) int64 {
	n := int64(max(g.x.Len(), g.x.Capacity()))
	return n/8*5/4 + int64(g.x.Dims())*4 + int64(ef)*3*16
}
