package main

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/borealisdb/borealis/hnsw"
)

// A build writes straight into the index's graph file, mapped by C (hnswcache.c) before the
// graph phase, so the graph never lives in the Go heap and the kernel can page it: a build
// larger than memory slows down instead of failing. C scans the heap first, spilling the
// vectors to a temporary file after borealis_index_check_vectors has validated each batch;
// then it reads them back in chunks and hands each chunk to borealis_index_build_insert, which
// copies it into the build's own buffer and inserts it with goroutines. Meanwhile C sleeps on
// its latch and polls borealis_index_build_wait with no wait, running CHECK_FOR_INTERRUPTS and
// reporting progress between polls: the backend's thread itself notices a cancel, with no
// Go timer, no other thread and no preemption of a build goroutine on the way (hard rule 4
// under CPU starvation; docs/architecture.md). On a cancel C calls borealis_index_free, which
// tells the goroutines to stop and returns without waiting for them, and hands the mapping to
// borealis_index_unmap, which unmaps it once they have stopped: they touch nothing else of
// C's. Pages are then written from the graph with borealis_index_export, one crossing per
// batch of elements.

type buildJob struct {
	dims    int
	first   int       // id of vectors[0]
	vectors []float32 // the chunk being inserted (a view of buf), id first+i at [i*dims:(i+1)*dims]
	buf     []float32 // engine memory the chunks are copied into: C's may go while goroutines drain
	done    atomic.Int64
	stop    atomic.Bool
	wg      sync.WaitGroup
	live    atomic.Int32 // goroutines of the current chunk still running
	running bool
	errMu   sync.Mutex
	err     error
}

func (b *buildJob) setErr(err error) {
	b.errMu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.errMu.Unlock()
}

// cancel stops the build's goroutines and waits for them (tests).
func (b *buildJob) cancel() {
	b.stop.Store(true)
	b.wg.Wait()
}

// abandon tells the build's goroutines to stop, without waiting; it reports whether any may
// still be running.
func (b *buildJob) abandon() bool {
	b.stop.Store(true)
	return b.live.Load() > 0
}

// borealis_index_check_vectors validates n element codes of dims words for kind (metric and
// element type, hnswtypes.h), as the graph would, before C spills them. On a bad one it
// returns statusError with *bad set to its position in the batch, so C can name the row.
//
//export borealis_index_check_vectors
func borealis_index_check_vectors(kind, dims, n C.int, vecs *C.float, bad *C.int) (rc C.int) {
	defer guard(&rc)
	d := int(dims)
	x, err := checker(kind, d)
	if err != nil {
		return fail(err)
	}
	in := floats(vecs, int(n)*d)
	for i := range int(n) {
		if err := checkVector(x, in[i*d:(i+1)*d]); err != nil {
			*bad = C.int(i)
			return fail(err)
		}
	}
	return statusOK
}

// checkers are empty graphs that only check vectors, by kind and dims (a build has no graph
// before its scan has counted the rows).
var (
	checkersMu sync.Mutex
	checkers   = map[[2]int]*hnsw.Index{}
)

func checker(kind C.int, dims int) (*hnsw.Index, error) {
	checkersMu.Lock()
	defer checkersMu.Unlock()
	key := [2]int{int(kind), dims}
	if x := checkers[key]; x != nil {
		return x, nil
	}
	metric, opts, err := graphOptions(dims, kind, 16, 64)
	if err != nil {
		return nil, err
	}
	x, err := hnsw.New(dims, metric, opts)
	if err != nil {
		return nil, err
	}
	checkers[key] = x
	return x, nil
}

// checkVector refuses what hnsw would refuse, before anything was queued.
func checkVector(x *hnsw.Index, v []float32) error {
	if x.Options().Element != hnsw.Float32 {
		if err := x.Check(v); err != nil {
			return fmt.Errorf("vector %s", vectorProblem(err))
		}
		return nil
	}
	metric := x.Metric()
	var norm float64
	for _, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("vector %s", vectorProblem(hnsw.ErrNonFinite))
		}
		norm += float64(f) * float64(f)
	}
	if metric == hnsw.Cosine && norm == 0 {
		return fmt.Errorf("vector %s", vectorProblem(hnsw.ErrZeroVector))
	}
	return nil
}

// borealis_index_build_insert starts inserting n vectors (C memory that stays put until the
// build of this chunk is waited for, or the graph freed) under ids first.. with threads
// goroutines. The previous chunk must be done.
//
//export borealis_index_build_insert
func borealis_index_build_insert(h C.longlong, first C.longlong, n C.int, vecs *C.float, threads C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	dims := g.x.Dims()
	if err := g.startChunk(int(first), floats(vecs, int(n)*dims), int(threads)); err != nil {
		return fail(err)
	}
	return statusOK
}

func (g *graph) startChunk(first int, vectors []float32, threads int) error {
	dims := g.x.Dims()
	if g.build == nil {
		g.build = &buildJob{dims: dims}
	}
	b := g.build
	if b.running {
		return fmt.Errorf("a chunk of the build is still running")
	}
	n := len(vectors) / dims
	// Each goroutine's search scratch holds a visited bit per element.
	if err := reserve("the build's search scratch", int64(max(1, threads))*scanBytes(g, 64)); err != nil {
		return err
	}
	if err := g.x.Reserve(first + n); err != nil {
		return err
	}
	// The chunk's rows of the graph file, mapped writable in one call per slab rather than
	// a page fault each (hnsw prefault.go).
	g.x.Prefault(first, n)
	// Each node's layer-0 neighbour distances, kept for the build (hnsw distcache.go): a
	// full list taking a new neighbour then needs no row of its neighbours. Optional: when
	// the budget has no room the build goes on without it. Dropped by the connectivity
	// pass that follows the build, or with the graph.
	if bytes := g.x.DistanceCacheBytes(); bytes > 0 && reserve("the build's distance cache", bytes) == nil {
		g.x.KeepDistanceCache()
	}
	if cap(b.buf) < len(vectors) {
		b.buf = make([]float32, len(vectors))
	}
	own := b.buf[:len(vectors)]
	copy(own, vectors)
	vectors = own
	b.first, b.vectors = first, vectors
	var next atomic.Int64
	b.running = true
	b.live.Store(int32(max(1, threads)))
	for range max(1, threads) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer b.live.Add(-1)
			defer recoverGoroutine("a build goroutine", func(err error) {
				b.setErr(err)
				b.stop.Store(true)
			})
			for !b.stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := g.x.Add(uint32(first+i), vectors[i*dims:(i+1)*dims]); err != nil {
					b.setErr(fmt.Errorf("adding element %d: %w", first+i, err))
					b.stop.Store(true)
					return
				}
				b.done.Add(1)
			}
		}()
	}
	return nil
}

// startBuild inserts the vectors under ids 0.. (tests and callers with all vectors at hand).
func (g *graph) startBuild(vectors []float32, threads int) error {
	return g.startChunk(0, vectors, threads)
}

// borealis_index_build_wait reports on the running chunk, waiting up to ms milliseconds for it
// to finish (C passes 0 and sleeps on its latch instead). It returns statusOK when the chunk is
// in the graph, statusRunning while it goes on, statusInterrupted as soon as PostgreSQL has an
// interrupt pending, statusError when an insert failed. *done counts the vectors inserted so
// far by the whole build.
//
//export borealis_index_build_wait
func borealis_index_build_wait(h C.longlong, ms C.int, done *C.longlong) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	status, n, err := g.waitBuild(time.Duration(ms) * time.Millisecond)
	*done = C.longlong(n)
	if err != nil {
		return fail(err)
	}
	return C.int(status)
}

func (g *graph) waitBuild(wait time.Duration) (status int, done int64, err error) {
	b := g.build
	if b == nil || !b.running {
		return statusError, 0, fmt.Errorf("no build is running")
	}
	deadline := time.Now().Add(wait)
	for {
		if b.live.Load() == 0 {
			b.wg.Wait() // the goroutines' last deferred calls
			b.errMu.Lock()
			defer b.errMu.Unlock()
			if b.err != nil {
				return statusError, b.done.Load(), b.err
			}
			b.running = false
			b.vectors = nil
			return statusOK, b.done.Load(), nil
		}
		if interrupted() {
			return statusInterrupted, b.done.Load(), nil
		}
		if !time.Now().Before(deadline) {
			return statusRunning, b.done.Load(), nil
		}
		time.Sleep(time.Millisecond)
	}
}

// borealis_index_export writes what the pages need of elements first..first+n-1 in one
// crossing: levels[i], the stored vector (unit length under cosine) at vecs[i*dims], and the
// neighbour lists in the page layout at slots[i*nslots] (2·m slots for layer 0, then m per
// upper layer, unused slots 0xFFFFFFFF; nslots must cover the element's level).
//
//export borealis_index_export
func borealis_index_export(h C.longlong, first C.longlong, n C.int, levels *C.int, vecs *C.float,
	slots *C.uint32_t, nslots C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	dims, ns := g.x.Dims(), int(nslots)
	lv := unsafeInts(levels, int(n))
	vs := floats(vecs, int(n)*dims)
	ss := uint32s(slots, int(n)*ns)
	for i := range int(n) {
		id := uint32(int(first) + i)
		if !g.x.VectorInto(vs[i*dims:(i+1)*dims], id) {
			return fail(fmt.Errorf("node %d is not in the graph", id))
		}
		lv[i] = C.int(g.x.Level(id))
		fillSlots(g.x, id, ss[i*ns:(i+1)*ns])
	}
	return statusOK
}
