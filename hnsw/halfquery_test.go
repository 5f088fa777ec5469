package hnsw

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/borealisdb/borealis/simd"
)

// Searches on half elements under cosine score with a query prepared once per search
// (halfquery.go). The scratch that holds it is reused by the next search, in the same query
// buffer: each search must score with its own query, and every reported distance must be
// CosineDistanceHalf's bits, through SearchWith and through the iterator.
func TestHalfCosinePreparedQueryPerSearch(t *testing.T) {
	const n, dims = 300, 64
	c := elementCase{Half, Cosine, dims}
	r := rand.New(rand.NewPCG(3, 4))
	x, err := New(c.words(), Cosine, Options{M: 8, EfConstruction: 64, Threads: 1, Element: Half})
	if err != nil {
		t.Fatal(err)
	}
	codes := make([][]float32, n)
	for id := range n {
		codes[id], _ = c.random(r)
		if err := x.Add(uint32(id), codes[id]); err != nil {
			t.Fatal(err)
		}
	}
	exact := func(q []float32, k int) []uint32 {
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = uint32(i)
		}
		d := func(i uint32) float32 { return simd.CosineDistanceHalf(halves(q), halves(codes[i])) }
		sort.SliceStable(ids, func(a, b int) bool { return d(ids[a]) < d(ids[b]) })
		return ids[:k]
	}
	for round := range 20 {
		q, _ := c.random(r)
		want := exact(q, 10)
		check := func(how string, res []Result) {
			t.Helper()
			if len(res) != 10 {
				t.Fatalf("round %d %s: %d results", round, how, len(res))
			}
			for k, got := range res {
				d := simd.CosineDistanceHalf(halves(q), halves(codes[got.ID]))
				if math.Float32bits(got.Distance) != math.Float32bits(d) {
					t.Fatalf("round %d %s rank %d: distance %v, CosineDistanceHalf %v", round, how, k, got.Distance, d)
				}
				if wd := simd.CosineDistanceHalf(halves(q), halves(codes[want[k]])); d != wd {
					t.Fatalf("round %d %s rank %d: id %d at %v, exact order has %d at %v", round, how, k, got.ID, d, want[k], wd)
				}
			}
		}
		// ef = n: the whole graph, so the exact order is what any correct scoring returns.
		res, err := x.SearchWith(nil, q, 10, SearchOptions{Ef: n})
		if err != nil {
			t.Fatal(err)
		}
		check("search", res)
		check("iterator", drain(t, x, q, SearchOptions{Ef: n}, 10))
	}
}
