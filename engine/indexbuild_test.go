package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/borealisdb/borealis/hnsw"
)

// C polls a build every 100 ms; each poll used to start a goroutine that lived until the build
// ended. Polling 40 times must not leave 40 goroutines behind.
func TestBuildWaitDoesNotPileUpGoroutines(t *testing.T) {
	const n, dims = 20000, 64
	x, err := hnsw.New(dims, hnsw.L2, hnsw.Options{M: 16, EfConstruction: 200})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	vecs := make([]float32, n*dims)
	for i := range vecs {
		vecs[i] = r.Float32()
	}
	g := &graph{x: x}
	before := runtime.NumGoroutine()
	if err := g.startBuild(vecs, 1); err != nil {
		t.Fatal(err)
	}
	polls, most := 0, 0
	for ; polls < 40; polls++ {
		status, _, err := g.waitBuild(time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, runtime.NumGoroutine()-before)
		if status == statusOK {
			t.Fatalf("build of %d vectors finished after %d polls: too fast to show anything", n, polls)
		}
	}
	g.build.cancel()
	// The build's own goroutine (and a spare, for a poll racing its start).
	if most > 2 {
		t.Fatalf("%d goroutines more than before the build after %d polls", most, polls)
	}
}

// A cancelled build is abandoned, not waited for: free returns while its goroutine may still be
// inserting, the goroutine reads only the engine's copy of the chunk (the caller's memory is
// overwritten here at once), and a mapping handed over meanwhile is unmapped once, after the
// goroutine has stopped.
func TestFreeAbandonsABuildAndUnmapsAfterIt(t *testing.T) {
	const n, dims = 20000, 64
	x, err := hnsw.New(dims, hnsw.L2, hnsw.Options{M: 16, EfConstruction: 200})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	vecs := make([]float32, n*dims)
	for i := range vecs {
		vecs[i] = r.Float32()
	}
	// The graph lies past the file's header, as hnswcache.c attaches it.
	var fake [64]byte
	base := unsafe.Pointer(&fake[0])
	g := &graph{x: x, mappedBase: unsafe.Pointer(&fake[16]), mappedSize: 48}
	h := register(g)
	if err := g.startBuild(vecs, 2); err != nil {
		t.Fatal(err)
	}
	for i := range vecs {
		vecs[i] = float32(math.NaN()) // C's chunk is gone after a cancel; the build must not see it
	}
	type call struct {
		base unsafe.Pointer
		live int32
	}
	calls := make(chan call, 4)
	old := munmap
	munmap = func(p unsafe.Pointer, size int64) error {
		calls <- call{p, g.build.live.Load()}
		return nil
	}
	defer func() { munmap = old }()

	for g.build.done.Load() < 10 {
		time.Sleep(time.Millisecond)
	}
	releaseGraph(h)
	graphsMu.Lock()
	_, still := graphs[h]
	graphsMu.Unlock()
	if still {
		t.Fatal("the freed graph is still registered")
	}
	later, err := unmapAfterDrain(base, int64(len(fake)))
	if err != nil {
		t.Fatal(err)
	}
	if !later {
		t.Fatal("the build's goroutines had stopped before free returned: free waited for them")
	}
	select {
	case c := <-calls:
		if c.base != base || c.live != 0 {
			t.Fatalf("unmapped %p with %d goroutines still running, want %p after all stopped", c.base, c.live, base)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the abandoned build's mapping was never unmapped")
	}
	g.build.errMu.Lock()
	err = g.build.err
	g.build.errMu.Unlock()
	if err != nil {
		t.Fatalf("the build read the caller's overwritten chunk: %v", err)
	}
	if d := g.build.done.Load(); d >= n {
		t.Fatalf("the abandoned build inserted all %d vectors: it never stopped", d)
	}
	graphsMu.Lock()
	left := len(draining)
	graphsMu.Unlock()
	if left != 0 {
		t.Fatalf("%d builds still draining", left)
	}
	if later, _ := unmapAfterDrain(base, int64(len(fake))); later {
		t.Fatal("a drained mapping was handed to the drain again")
	}
}
