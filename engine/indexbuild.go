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

// A build runs in goroutines while the backend's thread waits in C: C hands the heap's vectors
// over in batches (borealis_index_build_add), starts the build, then calls
// borealis_index_build_wait in a loop, running CHECK_FOR_INTERRUPTS and reporting progress
// between waits. On a cancel C calls borealis_index_free, which stops the goroutines before it
// returns, so no goroutine touches the graph once the backend has moved on.

type buildJob struct {
	dims    int
	vectors []float32 // pending vectors, id i at [i*dims:(i+1)*dims]
	done    atomic.Int64
	stop    atomic.Bool
	wg      sync.WaitGroup
	running bool
	// finished is closed when the goroutines are done; made by the first wait.
	finished chan struct{}
	errMu    sync.Mutex
	err      error
}

func (b *buildJob) setErr(err error) {
	b.errMu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.errMu.Unlock()
}

func (b *buildJob) cancel() {
	b.stop.Store(true)
	b.wg.Wait()
}

// borealis_index_build_add validates n vectors of the graph's dims and queues them under the
// next ids. On a bad vector it returns statusError with *bad set to its position in the batch
// (so C can name the row) and queues nothing of the batch.
//
//export borealis_index_build_add
func borealis_index_build_add(h C.longlong, n C.int, vecs *C.float, bad *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	dims := g.x.Dims()
	if g.build == nil {
		g.build = &buildJob{dims: dims}
	}
	in := floats(vecs, int(n)*dims)
	for i := range int(n) {
		if err := checkVector(g.x, in[i*dims:(i+1)*dims]); err != nil {
			*bad = C.int(i)
			return fail(err)
		}
	}
	g.build.vectors = append(g.build.vectors, in...)
	return statusOK
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

// borealis_index_build_start inserts the queued vectors with threads goroutines.
//
//export borealis_index_build_start
func borealis_index_build_start(h C.longlong, threads C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	if err := g.startBuild(int(threads)); err != nil {
		return fail(err)
	}
	return statusOK
}

func (g *graph) startBuild(threads int) error {
	if g.build == nil {
		g.build = &buildJob{dims: g.x.Dims()}
	}
	b := g.build
	n := len(b.vectors) / b.dims
	if err := g.x.Reserve(n); err != nil {
		return err
	}
	var next atomic.Int64
	b.running = true
	for range max(1, threads) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			// A panic here would kill the backend (and restart the node): turn it into
			// the build's error, which C raises as an ERROR.
			defer func() {
				if r := recover(); r != nil {
					b.setErr(fmt.Errorf("engine panic in a build goroutine: %v", r))
					b.stop.Store(true)
				}
			}()
			for !b.stop.Load() {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := g.x.Add(uint32(i), b.vectors[int(i)*b.dims:(int(i)+1)*b.dims]); err != nil {
					b.setErr(fmt.Errorf("adding element %d: %w", i, err))
					b.stop.Store(true)
					return
				}
				b.done.Add(1)
			}
		}()
	}
	return nil
}

// borealis_index_build_wait waits up to ms milliseconds for the build to finish. It returns
// statusOK when the graph is complete, statusRunning while it goes on, statusInterrupted as
// soon as PostgreSQL has an interrupt pending, statusError when an insert failed. *done counts
// the vectors inserted so far.
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
	// One goroutine per build closes finished; each call used to start its own, and every
	// one of them lived until the build ended (10 a second of a long build).
	if b.finished == nil {
		b.finished = make(chan struct{})
		go func() { b.wg.Wait(); close(b.finished) }()
	}
	finished := b.finished
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			b.errMu.Lock()
			defer b.errMu.Unlock()
			if b.err != nil {
				return statusError, b.done.Load(), b.err
			}
			b.running = false
			b.vectors = nil
			return statusOK, b.done.Load(), nil
		case <-tick.C:
		}
		if interrupted() {
			return statusInterrupted, b.done.Load(), nil
		}
		if time.Now().After(deadline) {
			return statusRunning, b.done.Load(), nil
		}
	}
}
