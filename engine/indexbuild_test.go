package main

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

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
	// The build's own goroutine plus the one that watches for its end.
	if most > 3 {
		t.Fatalf("%d goroutines more than before the build after %d polls", most, polls)
	}
}
