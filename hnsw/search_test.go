package hnsw

import (
	"math"
	"testing"
)

func TestDistancesArePgvectorValues(t *testing.T) {
	a := []float32{1, 2, 3}
	b := []float32{-2, 0.5, 4}
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		x, _ := New(3, m, Options{})
		if err := x.Add(0, a); err != nil {
			t.Fatal(err)
		}
		got := x.Search(b, 1, 10)
		want := exactDistance(m, b, a)
		if len(got) != 1 || math.Abs(float64(got[0].Distance)-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("%v: distance %v, want %v", m, got, want)
		}
	}
}

func TestSearchResultsAreSortedAndExact(t *testing.T) {
	data := clustered(2000, 16, 8, 4)
	x := build(t, data, Cosine, Options{M: 8, Seed: 1})
	res := x.Search(data[10], 20, 64)
	if len(res) != 20 || res[0].ID != 10 || res[0].Distance > 1e-6 {
		t.Fatalf("self search: %v", res[:1])
	}
	for i, r := range res {
		if i > 0 && r.Distance < res[i-1].Distance {
			t.Fatalf("results out of order at %d", i)
		}
		if want := exactDistance(Cosine, data[10], data[r.ID]); math.Abs(float64(r.Distance)-want) > 1e-5 {
			t.Fatalf("result %d distance %v, want %v", i, r.Distance, want)
		}
	}
}

func TestFilter(t *testing.T) {
	all := clustered(5050, 32, 16, 8)
	data, queries := all[:5000], all[5000:]
	x := build(t, data, L2, Options{M: 12, Seed: 2})
	even := func(id uint32) bool { return id%2 == 0 }
	hit, total := 0, 0
	for _, q := range queries {
		got, err := x.SearchWith(nil, q, 10, SearchOptions{Ef: 64, Filter: even})
		if err != nil {
			t.Fatal(err)
		}
		truth := bruteForce(x, data, func(i int) bool { return i%2 == 0 }, q, 10)
		in := map[uint32]bool{}
		for _, id := range truth {
			in[id] = true
		}
		for _, r := range got {
			if !even(r.ID) {
				t.Fatalf("filtered-out id %d returned", r.ID)
			}
			if in[r.ID] {
				hit++
			}
		}
		total += len(truth)
	}
	if r := float64(hit) / float64(total); r < 0.95 {
		t.Fatalf("filtered recall@10 = %.3f, want ≥ 0.95", r)
	}
}

func TestMaxDistanceBound(t *testing.T) {
	all := clustered(3050, 32, 16, 9)
	data, queries := all[:3000], all[3000:]
	x := build(t, data, Cosine, Options{M: 12, Seed: 2})
	const bound = 0.1 // WHERE 1 - (e <=> q) > 0.9
	found, unbounded := 0, 0
	for _, q := range queries {
		got, err := x.SearchWith(nil, q, 50, SearchOptions{Ef: 64, MaxDistance: bound, UseMaxDistance: true})
		if err != nil {
			t.Fatal(err)
		}
		found += len(got)
		for _, r := range got {
			if r.Distance > bound {
				t.Fatalf("result %v beyond the bound", r)
			}
		}
		// The early stop may lose a few of what the unbounded search finds
		// within the bound; count them.
		for _, r := range x.Search(q, 50, 64) {
			if r.Distance <= bound {
				unbounded++
			}
		}
	}
	if float64(found) < 0.97*float64(unbounded) {
		t.Fatalf("bounded search found %d, unbounded %d within the bound", found, unbounded)
	}
	if found == 0 || found == 50*len(queries) {
		t.Fatalf("%d results within the bound: the bound does not split the data", found)
	}
	t.Logf("%d results within the bound over %d queries (unbounded search: %d)", found, len(queries), unbounded)
	// A bound nothing satisfies returns nothing.
	if got, _ := x.SearchWith(nil, queries[0], 10, SearchOptions{MaxDistance: -1, UseMaxDistance: true}); len(got) != 0 {
		t.Fatalf("impossible bound returned %v", got)
	}
}

func TestIteratorGoesPastEfInOrder(t *testing.T) {
	all := clustered(4010, 32, 16, 12)
	data, queries := all[:4000], all[4000:]
	x := build(t, data, L2, Options{M: 12, Seed: 3})
	for _, q := range queries {
		it, err := x.NewIterator(q, SearchOptions{Ef: 20})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint32]bool{}
		var got []uint32
		last := float32(-1)
		for len(got) < 200 {
			r, ok := it.Next()
			if !ok {
				break
			}
			if r.Distance < last {
				t.Fatalf("iterator went backwards: %v after %v", r.Distance, last)
			}
			if seen[r.ID] {
				t.Fatalf("id %d returned twice", r.ID)
			}
			seen[r.ID], last = true, r.Distance
			got = append(got, r.ID)
		}
		it.Close()
		if len(got) < 200 {
			t.Fatalf("iterator with ef 20 stopped after %d results", len(got))
		}
		// 10× past ef, the results should still be (nearly) the true top 200.
		truth := bruteForce(x, data, nil, q, 200)
		hit := 0
		for _, id := range truth {
			if seen[id] {
				hit++
			}
		}
		if r := float64(hit) / 200; r < 0.9 {
			t.Fatalf("iterator recall@200 = %.3f", r)
		}
	}
}

func TestIteratorExhaustsGraphAndHonoursFilterAndBound(t *testing.T) {
	data := clustered(300, 8, 3, 5)
	x := build(t, data, L2, Options{M: 4, Seed: 1})
	it, _ := x.NewIterator(data[0], SearchOptions{Ef: 5, Filter: func(id uint32) bool { return id%3 == 0 }})
	n := 0
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		if r.ID%3 != 0 {
			t.Fatalf("filtered id %d", r.ID)
		}
		n++
	}
	it.Close()
	if n < 95 { // 100 admissible ids; order-preserving skips may drop a few
		t.Fatalf("iterator yielded %d of 100 admissible nodes", n)
	}
	it, _ = x.NewIterator(data[0], SearchOptions{Ef: 5, MaxDistance: 1, UseMaxDistance: true})
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		if r.Distance > 1 {
			t.Fatalf("bound exceeded: %v", r)
		}
	}
	it.Close()
}

func TestSearchIntoDoesNotAllocate(t *testing.T) {
	data := clustered(3000, 64, 8, 6)
	for _, m := range []Metric{L2, Cosine} {
		x := build(t, data, m, Options{M: 8, Seed: 1})
		dst := make([]Result, 0, 10)
		q := data[17]
		x.SearchInto(dst, q, 10, 64) // warm the scratch pool
		allocs := testing.AllocsPerRun(200, func() {
			var err error
			if dst, err = x.SearchInto(dst[:0], q, 10, 64); err != nil || len(dst) != 10 {
				t.Fatal(err, len(dst))
			}
		})
		if allocs != 0 {
			t.Fatalf("%v: SearchInto made %.1f allocations per call", m, allocs)
		}
	}
}
