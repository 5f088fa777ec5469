package main

/*
#cgo CFLAGS: -I${SRCDIR}/../pgext/src
#include <stdint.h>
#include "hnswquant.h"
*/
import "C"

import (
	"fmt"
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

// mappedOptions are graphOptions with the index's quantization reloption (BHNSW_QUANT_*,
// pgext/src/hnswquant.h) applied: auto keeps graphOptions' rule (int8 for float32 vectors under
// l2, cosine or inner product from quantizedMinDims dimensions); int8 and binary need vector
// or halfvec elements under those metrics, at any dimension.
func mappedOptions(dims int, kind C.int, m, efConstruction int, quant C.int) (hnsw.Metric, hnsw.Options, error) {
	metric, opts, err := graphOptions(dims, kind, m, efConstruction)
	if err != nil {
		return 0, opts, err
	}
	auto := opts.QuantizedSearch
	opts.QuantizedSearch = false
	switch quant {
	case C.BHNSW_QUANT_AUTO:
		if auto {
			opts.Quantization = hnsw.QuantInt8
		}
	case C.BHNSW_QUANT_NONE:
	case C.BHNSW_QUANT_INT8, C.BHNSW_QUANT_BINARY:
		if (opts.Element != hnsw.Float32 && opts.Element != hnsw.Half) || metric == hnsw.L1 {
			return 0, opts, fmt.Errorf("quantization = %s needs a vector or halfvec column under the l2, cosine or ip operator class (this index is %v under %v); use none or auto",
				map[C.int]string{C.BHNSW_QUANT_INT8: "int8", C.BHNSW_QUANT_BINARY: "binary"}[quant], opts.Element, metric)
		}
		opts.Quantization = hnsw.QuantInt8
		if quant == C.BHNSW_QUANT_BINARY {
			opts.Quantization = hnsw.QuantBinary
		}
	default:
		return 0, opts, fmt.Errorf("unknown quantization code %d", int(quant))
	}
	return metric, opts, nil
}

// borealis_index_mapped_size is the size of the graph region for capacity elements, or -1
// when the parameters are refused (borealis_index_attach names why). arenaWords is the room
// for sparsevec elements' compact codes (hnsw/arena.go; 0: every element at full width),
// ignored for other types.
//
//export borealis_index_mapped_size
func borealis_index_mapped_size(dims, metric, m, quant C.int, capacity, arenaWords C.longlong) C.longlong {
	metricOf, opts, err := mappedOptions(int(dims), metric, int(m), 0, quant)
	if err != nil {
		return -1
	}
	opts.ArenaWords = int64(arenaWords)
	return C.longlong(hnsw.MappedSize(int(dims), metricOf, opts, int(capacity)))
}

// borealis_index_code_room is the number of words of compact sparse code the mapped graph
// can still take, -1 for a graph that keeps no arena (other types, or a heap graph, which
// grows), -2 for an unknown handle. C checks it before catching a graph up in place.
//
//export borealis_index_code_room
func borealis_index_code_room(h C.longlong) C.longlong {
	g, err := lookup(h)
	if err != nil {
		return -2
	}
	if g.x.Options().Element != hnsw.Sparse || !g.x.Mapped() {
		return -1
	}
	used, size := g.x.ArenaUsed()
	return C.longlong(size - used)
}

// borealis_index_quantization is the graph's quantization as a BHNSW_QUANT_* code (never
// auto), -1 for an unknown handle.
//
//export borealis_index_quantization
func borealis_index_quantization(h C.longlong) C.int {
	g, err := lookup(h)
	if err != nil {
		return -1
	}
	switch g.x.Quantization() {
	case hnsw.QuantInt8:
		return C.BHNSW_QUANT_INT8
	case hnsw.QuantBinary:
		return C.BHNSW_QUANT_BINARY
	}
	return C.BHNSW_QUANT_NONE
}

// borealis_index_attach makes a graph over size bytes at base (a mapping C owns). With init
// the memory must be zero and an empty graph is laid out (arenaWords as for mapped_size);
// otherwise the graph there is opened and its header checked against the parameters
// (arenaWords 0: the header's, checked against size).
//
//export borealis_index_attach
func borealis_index_attach(base unsafe.Pointer, size C.longlong, dims, metric, m, efConstruction, quant C.int,
	capacity, arenaWords C.longlong, init C.int, handle *C.longlong) (rc C.int) {
	defer guard(&rc)
	mem := unsafe.Slice((*byte)(base), int(size))
	metricOf, opts, err := mappedOptions(int(dims), metric, int(m), int(efConstruction), quant)
	if err != nil {
		return fail(err)
	}
	opts.ArenaWords = int64(arenaWords)
	x, err := hnsw.Attach(mem, int(dims), metricOf, opts, int(capacity), init != 0)
	if err != nil {
		return fail(err)
	}
	*handle = C.longlong(register(&graph{x: x, mappedSize: int64(size), mappedBase: base}))
	mappedBytes.Add(int64(size))
	return statusOK
}
