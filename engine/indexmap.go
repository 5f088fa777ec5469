package main

/*
#include <stdint.h>
*/
import "C"

import (
	"sync/atomic"
	"unsafe"

	"github.com/borealisdb/borealis/hnsw"
)

// A backend's view of an index's shared graph: C maps the graph file (pgext/src/hnswcache.c
// owns the file, its header, locking and validation) and hands the graph region here, and
// hnsw.Attach lays the graph over it. The mapping is C's: this side never unmaps it, and C
// frees the handle (and ends every scan over it) before it does.

// mappedBytes is the total size of the mappings attached in this process, for engine info.
var mappedBytes atomic.Int64

// statusFull is returned by an insert into a mapped graph that has no room left: C maps a
// larger one and retries. Shared with pgext/src/engine.h.
const statusFull = 4

// borealis_index_mapped_size is the size of the graph region for capacity elements.
//
//export borealis_index_mapped_size
func borealis_index_mapped_size(dims, metric, m C.int, capacity C.longlong) C.longlong {
	metricOf, opts, err := graphOptions(int(dims), metric, int(m), 0)
	if err != nil {
		return -1
	}
	return C.longlong(hnsw.MappedSize(int(dims), metricOf, opts, int(capacity)))
}

// borealis_index_attach makes a graph over size bytes at base (a mapping C owns). With init
// the memory must be zero and an empty graph is laid out; otherwise the graph there is opened
// and its header checked against the parameters.
//
//export borealis_index_attach
func borealis_index_attach(base unsafe.Pointer, size C.longlong, dims, metric, m, efConstruction C.int,
	capacity C.longlong, init C.int, handle *C.longlong) (rc C.int) {
	defer guard(&rc)
	mem := unsafe.Slice((*byte)(base), int(size))
	metricOf, opts, err := graphOptions(int(dims), metric, int(m), int(efConstruction))
	if err != nil {
		return fail(err)
	}
	x, err := hnsw.Attach(mem, int(dims), metricOf, opts, int(capacity), init != 0)
	if err != nil {
		return fail(err)
	}
	*handle = C.longlong(register(&graph{x: x, mappedSize: int64(size)}))
	mappedBytes.Add(int64(size))
	return statusOK
}
