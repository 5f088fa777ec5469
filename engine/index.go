package main

/*
#include <stdint.h>
#include <sys/mman.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/borealisdb/borealis/hnsw"
)

// This file holds the graphs behind borealis_hnsw indexes: one per index being built, and one
// cache per index a backend has scanned or written, rebuilt from the index's pages by C (the
// pages are the truth; a graph here is only a copy). C refers to a graph by an opaque handle.

// statusRunning is returned by borealis_index_build_wait while the build goes on.
const statusRunning = 3

// graph is one index's in-memory HNSW graph plus, during CREATE INDEX, its build state.
type graph struct {
	x          *hnsw.Index
	build      *buildJob
	mappedSize int64          // bytes of the mapping a mapped graph lies on, 0 for a heap graph
	mappedBase unsafe.Pointer // where that mapping starts (C's), nil for a heap graph
	// unmapBase, unmapSize: the whole file mapping the graph lies in (the graph starts past
	// the file's header), handed to borealis_index_unmap while an abandoned build's
	// goroutines still ran; drain unmaps it after the last of them.
	unmapBase unsafe.Pointer
	unmapSize int64
}

var (
	graphsMu   sync.Mutex
	graphs     = map[int64]*graph{}
	nextHandle int64
	// draining holds the graphs whose build was abandoned (borealis_index_free during a
	// build) until their goroutines have stopped; graphsMu guards it.
	draining = map[*graph]struct{}{}
)

func register(g *graph) int64 {
	graphsMu.Lock()
	defer graphsMu.Unlock()
	nextHandle++
	graphs[nextHandle] = g
	return nextHandle
}

func lookup(h C.longlong) (*graph, error) {
	graphsMu.Lock()
	defer graphsMu.Unlock()
	g := graphs[int64(h)]
	if g == nil {
		return nil, fmt.Errorf("no index graph with handle %d", int64(h))
	}
	return g, nil
}

// floats views n float32s of C memory as a Go slice; the memory stays C's.
func floats(p *C.float, n int) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), n)
}

func unsafeInts(p *C.int, n int) []C.int {
	return unsafe.Slice(p, n)
}

func uint32s(p *C.uint32_t, n int) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(p)), n)
}

// vectorProblem names what is wrong with a vector in the words of the SQL user.
func vectorProblem(err error) string {
	var dim *hnsw.DimensionError
	switch {
	case errors.As(err, &dim):
		return fmt.Sprintf("has %d dimensions, the index has %d", dim.Got, dim.Want)
	case errors.Is(err, hnsw.ErrNonFinite):
		return "has a NaN or infinite component"
	case errors.Is(err, hnsw.ErrZeroVector):
		return "is a zero vector, which has no cosine distance"
	}
	return err.Error()
}

// quantizedMinDims is the dimension from which graphs traverse with int8
// distances (hnsw.Options.QuantizedSearch). There the float32 vectors outgrow
// the CPU caches and a search is memory-bound; on 50,000 × 1,536 cosine the
// hnsw benchmarks BenchmarkQuantized*1536 measured 1.3–1.4× the queries per
// second at the same recall. Below it the float32 search is already cache-friendly.
const quantizedMinDims = 768

// borealis_index_new creates an empty graph of dims words per element. metric is a kind
// (pgext/src/hnswtypes.h: metric and element type). memoryLimit 0 means no limit beyond the Go
// runtime's.
//
//export borealis_index_new
func borealis_index_new(dims, metric, m, efConstruction C.int, memoryLimit C.longlong, handle *C.longlong) (rc C.int) {
	defer guard(&rc)
	metricOf, opts, err := graphOptions(int(dims), metric, int(m), int(efConstruction))
	if err != nil {
		return fail(err)
	}
	opts.MemoryLimit = int64(memoryLimit)
	x, err := hnsw.New(int(dims), metricOf, opts)
	if err != nil {
		return fail(err)
	}
	*handle = C.longlong(register(&graph{x: x}))
	return statusOK
}

// borealis_index_free drops a graph. A build still running is told to stop and left to
// drain: free returns at once, without waiting for its goroutines (each may be in the middle
// of an insert, milliseconds of CPU that a starved backend gets only seconds later; hard rule
// 4), and the goroutines touch only engine memory and the graph's mapping, which C then
// hands to borealis_index_unmap instead of unmapping it itself.
//
//export borealis_index_free
func borealis_index_free(h C.longlong) (rc C.int) {
	defer guard(&rc)
	releaseGraph(int64(h))
	return statusOK
}

func releaseGraph(h int64) {
	graphsMu.Lock()
	g := graphs[h]
	delete(graphs, h)
	if g != nil && g.build != nil && g.build.abandon() {
		draining[g] = struct{}{}
		go drain(g)
	}
	graphsMu.Unlock()
	if g != nil {
		mappedBytes.Add(-g.mappedSize)
	}
}

// drain waits for an abandoned build's goroutines, then unmaps the graph's mapping if C has
// let go of it meanwhile.
func drain(g *graph) {
	defer recoverGoroutine("draining a cancelled build", func(error) {})
	g.build.wg.Wait()
	graphsMu.Lock()
	delete(draining, g)
	base, size := g.unmapBase, g.unmapSize
	graphsMu.Unlock()
	if base != nil {
		munmap(base, size)
	}
}

// munmap is a variable so tests can watch when a drained mapping goes.
var munmap = func(base unsafe.Pointer, size int64) error {
	if C.munmap(base, C.size_t(size)) != 0 {
		return fmt.Errorf("unmapping a %d-byte graph file mapping: munmap failed", size)
	}
	return nil
}

// borealis_index_unmap unmaps size bytes at base, a graph file mapping C made (and attached
// a graph to) and no longer uses: now, or, while an abandoned build's goroutines still write
// into it, when the last of them stops.
//
//export borealis_index_unmap
func borealis_index_unmap(base unsafe.Pointer, size C.longlong) (rc C.int) {
	defer guard(&rc)
	later, err := unmapAfterDrain(base, int64(size))
	if err == nil && !later {
		err = munmap(base, int64(size))
	}
	if err != nil {
		return fail(err)
	}
	return statusOK
}

// unmapAfterDrain hands the mapping of size bytes at base to the drain of the abandoned build
// whose graph lies in it, if one still runs, and reports whether it did.
func unmapAfterDrain(base unsafe.Pointer, size int64) (bool, error) {
	graphsMu.Lock()
	defer graphsMu.Unlock()
	lo := uintptr(base)
	for g := range draining {
		if p := uintptr(g.mappedBase); p >= lo && p < lo+uintptr(size) {
			if p+uintptr(g.mappedSize) > lo+uintptr(size) {
				return false, fmt.Errorf("unmapping %d bytes that end inside a graph of %d bytes", size, g.mappedSize)
			}
			g.unmapBase, g.unmapSize = base, size
			return true, nil
		}
	}
	return false, nil
}

// borealis_index_estimate is the memory, in bytes, a graph of n nodes needs.
//
//export borealis_index_estimate
func borealis_index_estimate(n C.longlong, dims, m C.int) C.longlong {
	need := hnsw.EstimateMemory(int(n), int(dims), int(m))
	if dims >= quantizedMinDims {
		need += int64(n) * int64(dims+8) // the int8 copy: codes, scale, norm
	}
	return C.longlong(need)
}

// borealis_index_node_level reports id's top layer (-1 when absent) and whether it is deleted.
//
//export borealis_index_node_level
func borealis_index_node_level(h C.longlong, id C.uint32_t, level, deleted *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	*level = C.int(g.x.Level(uint32(id)))
	*deleted = 0
	if g.x.IsDeleted(uint32(id)) {
		*deleted = 1
	}
	return statusOK
}

// borealis_index_node_vector copies id's stored vector (unit length under cosine) into vec.
//
//export borealis_index_node_vector
func borealis_index_node_vector(h C.longlong, id C.uint32_t, vec *C.float) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	v := g.x.Vector(uint32(id))
	if v == nil {
		return fail(fmt.Errorf("node %d is not in the graph", uint32(id)))
	}
	copy(floats(vec, len(v)), v)
	return statusOK
}

// borealis_index_node_lists writes id's neighbour lists into slots, the page layout: 2·m
// slots for layer 0, then m per upper layer, unused slots 0xFFFFFFFF. nslots must cover level.
//
//export borealis_index_node_lists
func borealis_index_node_lists(h C.longlong, id C.uint32_t, slots *C.uint32_t, nslots C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	fillSlots(g.x, uint32(id), uint32s(slots, int(nslots)))
	return statusOK
}

func fillSlots(x *hnsw.Index, id uint32, out []uint32) {
	for i := range out {
		out[i] = noNeighbor
	}
	m := x.Options().M
	level := x.Level(id)
	pos := 0
	for layer := 0; layer <= level; layer++ {
		capacity := m
		if layer == 0 {
			capacity = 2 * m
		}
		if pos+capacity > len(out) {
			return
		}
		copy(out[pos:pos+capacity], x.Neighbors(id, layer))
		pos += capacity
	}
}

// noNeighbor marks an unused slot in a page's neighbour list.
const noNeighbor = 0xFFFFFFFF

// borealis_index_entry reports the entry point; *level is -1 for an empty graph.
//
//export borealis_index_entry
func borealis_index_entry(h C.longlong, id *C.uint32_t, level *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	e, l, ok := g.x.EntryPoint()
	if !ok {
		*level = -1
		return statusOK
	}
	*id, *level = C.uint32_t(e), C.int(l)
	return statusOK
}
