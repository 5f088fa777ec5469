package hnsw

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// Sparse L2 and L1 walk the graph with the dense-query sums (sparsequery.go) and rescore what
// they keep with the merge: every distance a search or an iterator returns is the merge
// kernel's to the bit, results come in the merge's order, recall against a brute force over
// the merge holds, and a query with an index past the dense limit (merge traversal) works too.
func TestSparseSumsReturnTheMergesDistances(t *testing.T) {
	for _, metric := range []Metric{L2, L1} {
		t.Run(metric.String(), func(t *testing.T) {
			// The same vectors twice: indices from 0 (dense traversal), and shifted past the
			// dense limit (the merge walks the graph): the recalls must agree.
			recall := map[bool]float64{}
			for _, past := range []bool{false, true} {
				c := elementCase{Sparse, metric, 3000}
				if past {
					c.dims = sparseDenseLimit + 5000
				}
				recall[past] = sparseSumSearches(t, c)
			}
			t.Logf("recall@10 at ef 80: dense %.3f, merge %.3f", recall[false], recall[true])
			if recall[false] < recall[true]-0.03 || recall[false] < 0.8 {
				t.Fatalf("recall@10 at ef 80: dense traversal %.3f, merge traversal %.3f", recall[false], recall[true])
			}
		})
	}
}

func sparseSumSearches(t *testing.T, c elementCase) float64 {
	r := rand.New(rand.NewPCG(uint64(c.metric), 99))
	x, err := New(c.words(), c.metric, Options{M: 8, EfConstruction: 64, Threads: 1, Element: Sparse})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1500
	codes := make([][]float32, n)
	for id := range n {
		codes[id] = clusteredSparse(r, c)
		if err := x.Add(uint32(id), codes[id]); err != nil {
			t.Fatal(err)
		}
	}
	hits, total := 0, 0
	for q := range 20 {
		code := clusteredSparse(r, c)
		merge := func(id uint32) float32 { return x.reported(x.distance(code, codes[id])) }
		got, err := x.SearchInto(nil, code, 10, 80)
		if err != nil {
			t.Fatal(err)
		}
		for k, res := range got {
			if want := merge(res.ID); math.Float32bits(res.Distance) != math.Float32bits(want) {
				t.Fatalf("query %d rank %d: id %d distance %v, merge %v", q, k, res.ID, res.Distance, want)
			}
			if k > 0 && (res.Distance < got[k-1].Distance || res.Distance == got[k-1].Distance && res.ID < got[k-1].ID) {
				t.Fatalf("query %d rank %d: %v after %v, not the merge's order", q, k, res, got[k-1])
			}
		}
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = uint32(i)
		}
		sort.SliceStable(ids, func(i, j int) bool { return merge(ids[i]) < merge(ids[j]) })
		kth := merge(ids[9])
		for _, res := range got {
			if res.Distance <= kth {
				hits++
			}
		}
		total += 10

		it, err := x.NewIterator(code, SearchOptions{Ef: 20})
		if err != nil {
			t.Fatal(err)
		}
		var last float32
		for k := 0; k < 60; k++ {
			res, ok := it.Next()
			if !ok {
				break
			}
			if want := merge(res.ID); math.Float32bits(res.Distance) != math.Float32bits(want) {
				t.Fatalf("query %d iterator result %d: id %d distance %v, merge %v", q, k, res.ID, res.Distance, want)
			}
			if res.Distance < last {
				t.Fatalf("query %d iterator result %d: %v after %v (strict order)", q, k, res.Distance, last)
			}
			last = res.Distance
		}
		it.Close()
	}
	return float64(hits) / float64(total)
}

// clusteredSparse makes a sparse code with 4-16 non-zeros among 64 indices, so vectors
// overlap as real sparse embeddings do; past the dense limit they sit at the top of the range.
func clusteredSparse(r *rand.Rand, c elementCase) []float32 {
	code := make([]float32, c.words())
	room := (len(code) - 1) / 2
	n := 4 + r.IntN(13)
	base := 0
	if c.dims > sparseDenseLimit {
		base = c.dims - 200
	}
	perm := r.Perm(64)[:n]
	sort.Ints(perm)
	code[0] = math.Float32frombits(uint32(n))
	for k, p := range perm {
		code[1+k] = math.Float32frombits(uint32(base + p))
		code[1+room+k] = float32(r.NormFloat64())
	}
	return code
}
