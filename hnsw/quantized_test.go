package hnsw

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/borealisdb/borealis/simd"
)

// checkExactSorted fails unless res is non-decreasing and every distance is the
// exact pgvector distance from q to the stored data.
func checkExactSorted(t testing.TB, m Metric, q []float32, data [][]float32, res []Result) {
	t.Helper()
	for i, r := range res {
		if i > 0 && r.Distance < res[i-1].Distance {
			t.Fatalf("%v: result %d distance %v after %v: out of order", m, i, r.Distance, res[i-1].Distance)
		}
		want := exactDistance(m, q, data[r.ID])
		if math.Abs(float64(r.Distance)-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Fatalf("%v: result %d (id %d) distance %v, exact %v", m, i, r.ID, r.Distance, want)
		}
	}
}

func TestQuantizedRecallClusteredAllMetrics(t *testing.T) {
	all := clustered(20200, 128, 64, 1)
	data, queries := all[:20000], all[20000:]
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		t.Run(m.String(), func(t *testing.T) {
			if m != L2 && testing.Short() {
				t.Skip("short")
			}
			x := build(t, data, m, Options{M: 16, EfConstruction: 64, Seed: 7, QuantizedSearch: true})
			r := recallAt(t, x, data, queries, nil, 10, 64)
			t.Logf("%s quantized recall@10 ef=64: %.4f", m, r)
			if r < 0.95 {
				t.Fatalf("quantized recall@10 = %.4f, want ≥ 0.95", r)
			}
			for _, q := range queries[:20] {
				checkExactSorted(t, m, q, data, x.Search(q, 10, 64))
			}
		})
	}
}

func TestQuantizedRecallHighDim(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	all := clustered(5100, 768, 32, 3)
	data, queries := all[:5000], all[5000:]
	for _, m := range []Metric{Cosine, L2} {
		t.Run(m.String(), func(t *testing.T) {
			x := build(t, data, m, Options{M: 16, EfConstruction: 64, Seed: 7, QuantizedSearch: true})
			r := recallAt(t, x, data, queries, nil, 10, 64)
			t.Logf("%s 5000x768 quantized recall@10 ef=64: %.4f", m, r)
			if r < 0.95 {
				t.Fatalf("quantized recall@10 = %.4f, want ≥ 0.95", r)
			}
			for _, q := range queries[:20] {
				checkExactSorted(t, m, q, data, x.Search(q, 10, 64))
			}
		})
	}
}

// The option changes only how searches traverse: the graph built is the same,
// and results agree with the float32 search on almost every id.
func TestQuantizedSameGraphAndResults(t *testing.T) {
	all := clustered(3050, 64, 16, 5)
	data, queries := all[:3000], all[3000:]
	opts := Options{M: 12, Seed: 3, Threads: 1}
	plain := build(t, data, Cosine, opts)
	opts.QuantizedSearch = true
	// With float32 insert searches (quantbuild.go off) the option changes nothing in the
	// graph; with int8 insert searches (the default) the graph may differ, and the search
	// results must agree as well.
	quant, err := New(64, Cosine, opts)
	if err != nil {
		t.Fatal(err)
	}
	quant.noQuantBuild = true
	for i, v := range data {
		if err := quant.Add(uint32(i), v); err != nil {
			t.Fatal(err)
		}
	}
	a := plain.Encode(nil)
	b := quant.Encode(nil)
	if string(a) != string(b) {
		t.Fatal("QuantizedSearch changed the graph built with float32 insert searches")
	}
	agree(t, plain, quant, data, queries)
	agree(t, plain, build(t, data, Cosine, opts), data, queries)
}

// agree checks that quant's searches are exact and find ≥ 97% of plain's results.
func agree(t *testing.T, plain, quant *Index, data, queries [][]float32) {
	t.Helper()
	same, total := 0, 0
	for _, q := range queries {
		want := plain.Search(q, 10, 64)
		got := quant.Search(q, 10, 64)
		checkExactSorted(t, Cosine, q, data, got)
		in := map[uint32]bool{}
		for _, r := range want {
			in[r.ID] = true
		}
		for _, r := range got {
			if in[r.ID] {
				same++
			}
		}
		total += len(want)
	}
	if f := float64(same) / float64(total); f < 0.97 {
		t.Fatalf("quantized search agrees with float32 search on %.3f of results, want ≥ 0.97", f)
	}
}

// Decode rebuilds through Restore, which must fill the int8 slab too.
func TestQuantizedAfterDecode(t *testing.T) {
	all := clustered(2050, 32, 8, 6)
	data, queries := all[:2000], all[2000:]
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		x := build(t, data, m, Options{M: 8, Seed: 1, QuantizedSearch: true})
		x.Delete(5)
		enc := x.Encode(nil)
		y, err := Decode(enc, Options{QuantizedSearch: true})
		if err != nil {
			t.Fatal(err)
		}
		if !y.Options().QuantizedSearch {
			t.Fatal("Options() lost QuantizedSearch")
		}
		for _, q := range queries {
			want, got := x.Search(q, 10, 40), y.Search(q, 10, 40)
			if fmt.Sprint(want) != fmt.Sprint(got) {
				t.Fatalf("%v: decoded quantized index answers %v, original %v", m, got, want)
			}
			for _, r := range got {
				if r.ID == 5 {
					t.Fatalf("%v: deleted id returned", m)
				}
			}
		}
	}
}

func TestQuantizedIteratorExactAndOrdered(t *testing.T) {
	all := clustered(3010, 32, 8, 8)
	data, queries := all[:3000], all[3000:]
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		x := build(t, data, m, Options{M: 8, Seed: 1, QuantizedSearch: true})
		for _, q := range queries {
			res := drain(t, x, q, SearchOptions{Ef: 20}, 300)
			if len(res) < 200 {
				t.Fatalf("%v: iterator stopped after %d results", m, len(res))
			}
			checkExactSorted(t, m, q, data, res)
		}
	}
}

func TestQuantizedSearchIntoAllocatesNothing(t *testing.T) {
	data := clustered(2000, 64, 8, 2)
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		x := build(t, data, m, Options{M: 8, Seed: 1, QuantizedSearch: true})
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
			t.Fatalf("%v: quantized SearchInto made %.1f allocations per call", m, allocs)
		}
	}
}

// quantBench is the 50,000 × 1,536 cosine graph, built once for all sub-benchmarks.
var quantBench struct {
	once          sync.Once
	x             *Index
	data, queries [][]float32
	truth         [][]uint32
	buildTime     time.Duration
}

// BenchmarkQuantizedIterator1536 is the index AM's path: the first 10 results
// of an iterator (ORDER BY … LIMIT 10), quantized or not, on the same graph.
func BenchmarkQuantizedIterator1536(b *testing.B) {
	qb := quantBenchGraph(b)
	x := qb.x
	for _, ef := range []int{16, 40, 64, 100} {
		for _, quant := range []bool{false, true} {
			b.Run(fmt.Sprintf("ef=%d/quantized=%v", ef, quant), func(b *testing.B) {
				x.quant = quant
				defer func() { x.quant = true }()
				first10 := func(q []float32) []Result { return drain(b, x, q, SearchOptions{Ef: ef}, 10) }
				hit := 0
				for i, q := range qb.queries {
					hit += found(qb.truth[i], first10(q))
				}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					first10(qb.queries[i%len(qb.queries)])
				}
				b.ReportMetric(float64(hit)/float64(10*len(qb.queries)), "recall@10")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
			})
		}
	}
}

func quantBenchGraph(b *testing.B) *struct {
	once          sync.Once
	x             *Index
	data, queries [][]float32
	truth         [][]uint32
	buildTime     time.Duration
} {
	qb := &quantBench
	qb.once.Do(func() {
		all := clustered(50200, 1536, 256, 11)
		qb.data, qb.queries = all[:50000], all[50000:]
		start := time.Now()
		qb.x = build(b, qb.data, Cosine, Options{M: 16, EfConstruction: 64, Seed: 1, QuantizedSearch: true})
		qb.buildTime = time.Since(start)
		for _, q := range qb.queries {
			qb.truth = append(qb.truth, bruteForce(qb.x, qb.data, nil, q, 10))
		}
	})
	b.Logf("graph build %v", qb.buildTime)
	return qb
}

// BenchmarkQuantizedSearch1536 compares float32 and int8 traversal on the same
// 50,000 × 1,536 cosine graph (the float32 slab, 300 MB, is far larger than
// L3): QPS is 1e9/ns-per-op, recall@10 is reported per ef so the two can be
// compared at matched recall. Building the graph takes minutes.
func BenchmarkQuantizedSearch1536(b *testing.B) {
	qb := quantBenchGraph(b)
	x := qb.x
	for _, ef := range []int{10, 16, 24, 32, 48, 64, 96} {
		for _, quant := range []bool{false, true} {
			b.Run(fmt.Sprintf("ef=%d/quantized=%v", ef, quant), func(b *testing.B) {
				x.quant = quant // same graph; only the traversal distance changes
				defer func() { x.quant = true }()
				hit := 0
				for i, q := range qb.queries {
					res, _ := x.SearchInto(nil, q, 10, ef)
					hit += found(qb.truth[i], res)
				}
				dst := make([]Result, 0, 10)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					dst, _ = x.SearchInto(dst[:0], qb.queries[i%len(qb.queries)], 10, ef)
				}
				b.ReportMetric(float64(hit)/float64(10*len(qb.queries)), "recall@10")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
			})
		}
	}
}

// Real embeddings often have a few components far larger than the rest in
// every vector. They set each vector's int8 scale, so the other components get
// few levels and int8 distances reorder near neighbours. Traversal may be
// approximate, but rescoring must not cap recall: at high ef the quantized
// index (the same graph) must find what the float32 search finds, through the
// iterator (the index AM's path) and through SearchWith. (Before the whole
// beam was rescored, this data capped the iterator at 0.873 and SearchWith at
// 0.960 for every ef, where float32 reaches 0.999.) The outliers are ±12: from about ±16
// the codes are so coarse that queries walk with float32 (minMeanCode,
// TestCoarseQueriesWalkWithFloat32).
func TestQuantizedRecallNotCappedByOutliers(t *testing.T) {
	all := clustered(3100, 768, 30, 23)
	for _, v := range all {
		v[0] += 12 // components are ~1 elsewhere
		v[1] -= 12
	}
	data, queries := all[:3000], all[3000:]
	x := build(t, data, Cosine, Options{M: 16, EfConstruction: 64, Seed: 7})
	y, err := Decode(x.Encode(nil), Options{QuantizedSearch: true})
	if err != nil {
		t.Fatal(err)
	}
	truth := make([]map[uint32]bool, len(queries))
	for i, q := range queries {
		truth[i] = map[uint32]bool{}
		for _, id := range bruteForce(x, data, nil, q, 10) {
			truth[i][id] = true
		}
	}
	recall := func(g *Index, ef int, iterator bool) float64 {
		hit := 0
		for i, q := range queries {
			var res []Result
			if iterator {
				res = drain(t, g, q, SearchOptions{Ef: ef}, 10)
			} else if res, err = g.SearchWith(nil, q, 10, SearchOptions{Ef: ef}); err != nil {
				t.Fatal(err)
			}
			checkExactSorted(t, Cosine, q, data, res)
			for _, r := range res {
				if truth[i][r.ID] {
					hit++
				}
			}
		}
		return float64(hit) / float64(10*len(queries))
	}
	low := recall(y, 10, true)
	for _, ef := range []int{100, 200} {
		exact := recall(x, ef, true)
		it, search := recall(y, ef, true), recall(y, ef, false)
		t.Logf("ef %d: float32 %.3f, quantized iterator %.3f, quantized search %.3f (iterator at ef 10: %.3f)", ef, exact, it, search, low)
		if exact < 0.99 {
			t.Fatalf("setup: the float32 search reaches only %.3f at ef %d", exact, ef)
		}
		if it < exact-0.002 || search < exact-0.002 {
			t.Fatalf("ef %d: quantized recall iterator %.3f, search %.3f; float32 reaches %.3f", ef, it, search, exact)
		}
	}
	// The outliers really do make int8 distances coarse: the case tests something.
	if low > 0.9 {
		t.Fatalf("setup: quantized recall at ef 10 is already %.3f; the outliers do not bite", low)
	}
}

// A query whose int8 codes are too coarse (one component dwarfs the rest: mean |code| under
// minMeanCode) walks with float32 distances, so the int8 index finds what the float32 one
// does at every ef. Without the guard the int8 walk found 0.11 of the top 10 at ef 10 on
// this data (0.88 with float32) and 0.51 at ef 80.
func TestCoarseQueriesWalkWithFloat32(t *testing.T) {
	all := clustered(3100, 128, 32, 7)
	for _, v := range all {
		v[0] += 200
	}
	data, queries := all[:3000], all[3000:]
	for _, m := range []Metric{Cosine, L2, InnerProduct} {
		x := build(t, data, m, Options{M: 16, EfConstruction: 64, Seed: 9, Threads: 1})
		y := build(t, data, m, Options{M: 16, EfConstruction: 64, Seed: 9, Threads: 1, Quantization: QuantInt8})
		for _, ef := range []int{10, 40} {
			rx, ry := recallAt(t, x, data, queries, nil, 10, ef), recallAt(t, y, data, queries, nil, 10, ef)
			t.Logf("%v ef %d: float32 %.3f, int8 index %.3f", m, ef, rx, ry)
			if ry < rx-0.01 {
				t.Fatalf("%v ef %d: int8 index recall %.3f, float32 %.3f: coarse queries walked with int8", m, ef, ry, rx)
			}
		}
		for _, q := range queries[:10] {
			checkExactSorted(t, m, q, data, y.Search(q, 10, 40))
		}
	}
	codes := make([]int8, 128)
	for _, c := range []struct {
		name   string
		v      func(i int) float32
		coarse bool
	}{
		{"gaussian", func(i int) float32 { return all[0][i] - map[bool]float32{true: 200}[i == 0] }, false},
		{"offset", func(i int) float32 { return all[0][i] }, true},
		{"zero", func(int) float32 { return 0 }, true},
		{"one-hot", func(i int) float32 { return map[bool]float32{true: 1}[i == 3] }, true},
		{"constant", func(int) float32 { return -2 }, false},
	} {
		v := make([]float32, 128)
		for i := range v {
			v[i] = c.v(i)
		}
		simd.QuantizeInt8(codes, v)
		if got := coarseCodes(codes); got != c.coarse {
			t.Errorf("%s: coarseCodes = %v, want %v", c.name, got, c.coarse)
		}
	}
}
