package hnsw

import (
	"fmt"
	"sort"
	"sync"
	"testing"
)

// Is a filter pushed into the graph walk (pgvectorscale's label filtering; here
// SearchOptions.Filter, which lets rejected nodes route but keeps them out of
// the beam) worth it against what PostgreSQL does with an iterative scan (the
// iterator hands nodes nearest first and the executor drops those the WHERE
// rejects)? Same graph, same labels (a hash of the id, independent of the
// vectors, as bench ann's cat column), recall against the exact filtered top 10.
//
//	go test ./hnsw -run '^$' -bench FilteredSearch -benchtime 200x

var filterBench struct {
	once    sync.Once
	x       *Index
	data    [][]float32
	queries [][]float32
}

func filterLabel(id uint32) uint32 {
	z := uint64(id) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return uint32((z ^ (z >> 31)) % 1000)
}

func BenchmarkFilteredSearch(b *testing.B) {
	fb := &filterBench
	fb.once.Do(func() {
		all := clustered(50200, 64, 64, 61)
		fb.data, fb.queries = all[:50000], all[50000:]
		fb.x = build(b, fb.data, L2, Options{M: 16, EfConstruction: 64, Seed: 8})
	})
	x := fb.x
	for _, sel := range []uint32{100, 10, 1} { // cat < sel of 1000: 10%, 1%, 0.1%
		keep := func(id uint32) bool { return filterLabel(id) < sel }
		truth := make([][]uint32, len(fb.queries))
		for i, q := range fb.queries {
			truth[i] = bruteForce(x, fb.data, func(id int) bool { return keep(uint32(id)) }, q, 10)
		}
		run := func(b *testing.B, name string, search func(q []float32) []uint32) {
			b.Run(fmt.Sprintf("kept=%.1f%%/%s", float64(sel)/10, name), func(b *testing.B) {
				hit, full := 0, 0
				for i, q := range fb.queries {
					got := search(q)
					if len(got) == 10 {
						full++
					}
					in := map[uint32]bool{}
					for _, id := range truth[i] {
						in[id] = true
					}
					for _, id := range got {
						if in[id] {
							hit++
						}
					}
				}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					search(fb.queries[i%len(fb.queries)])
				}
				b.ReportMetric(float64(hit)/float64(10*len(fb.queries)), "recall@10")
				b.ReportMetric(float64(full)/float64(len(fb.queries)), "full")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
			})
		}
		// What an iterative scan does: walk nearest first, drop rejected rows after.
		run(b, "iterator+postfilter", func(q []float32) []uint32 {
			it, _ := x.NewIterator(q, SearchOptions{Ef: 40, RelaxedOrder: true, MaxVisited: 20000})
			defer it.Close()
			var out []uint32
			for len(out) < 10 {
				r, ok := it.Next()
				if !ok {
					break
				}
				if keep(r.ID) {
					out = append(out, r.ID)
				}
			}
			sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
			return out
		})
		// The filter inside the walk, at the same ef and at a wider one.
		for _, ef := range []int{40, 200} {
			run(b, fmt.Sprintf("in-walk-ef%d", ef), func(q []float32) []uint32 {
				res, _ := x.SearchWith(nil, q, 10, SearchOptions{Ef: ef, Filter: keep})
				out := make([]uint32, len(res))
				for i, r := range res {
					out[i] = r.ID
				}
				return out
			})
		}
	}
}
