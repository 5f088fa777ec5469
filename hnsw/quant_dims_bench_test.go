package hnsw

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Int8 against float32 traversal where `auto` chooses float32 today (below 768 dims) and at
// MNIST's 784, in the engine alone and on a mapped graph as the extension uses it: build time
// on one thread, one-at-a-time insert cost after the build, graph file size, recall@10 and
// search time per ef. The two graphs of a data set are searched in alternation, ef by ef, over
// several rounds, and the median round is reported, so load on a shared machine hits both
// alike. bench ann measures the same through SQL. "outlier" is data int8 codes represent
// badly: one component about 200 times the others on every vector, so the per-vector scale
// leaves the rest a few code steps.
//
//	go test ./hnsw -run '^$' -bench QuantizationByDims -benchtime 1x (BOREALIS_QUANTSETS=sift5k,outlier to run some)
func BenchmarkQuantizationByDims(b *testing.B) {
	sets := []struct {
		name    string
		metric  Metric
		load    func() (base, extra, queries [][]float32)
		summary string
	}{
		{"clustered-100k-128-cosine", Cosine, func() ([][]float32, [][]float32, [][]float32) {
			all := clustered(101300, 128, 64, 5)
			return all[:100000], all[100000:101000], all[101000:]
		}, "100,000 × 128 clustered Gaussians (64 centres), cosine"},
		{"clustered-100k-128-l2", L2, func() ([][]float32, [][]float32, [][]float32) {
			all := clustered(101300, 128, 64, 6)
			return all[:100000], all[100000:101000], all[101000:]
		}, "100,000 × 128 clustered Gaussians (64 centres), L2"},
		{"sift5k-128-l2", L2, func() ([][]float32, [][]float32, [][]float32) {
			base, _ := loadSIFT5k(b)
			// 3 query vectors are too few for a recall: the last 300 base rows are the queries.
			return base[:4500], base[4500:4700], base[4700:]
		}, "SIFT 5k (4,500 base, 200 inserted, 300 held-out base rows as queries), L2"},
		{"mnist-60k-784-l2", L2, func() ([][]float32, [][]float32, [][]float32) {
			base := loadMNIST(b, "train-images-idx3-ubyte.gz", 60000)
			test := loadMNIST(b, "t10k-images-idx3-ubyte.gz", 1300)
			return base, test[:1000], test[1000:]
		}, "MNIST 60,000 × 784 (1,000 test images inserted, 300 as queries), L2"},
		{"outlier-20k-128-cosine", Cosine, func() ([][]float32, [][]float32, [][]float32) {
			all := clustered(21300, 128, 64, 7)
			for _, v := range all {
				v[0] += 200
			}
			return all[:20000], all[20000:21000], all[21000:]
		}, "20,000 × 128 clustered, component 0 shifted by +200 (int8 steps ≈ 1.6 σ), cosine"},
	}
	want := os.Getenv("BOREALIS_QUANTSETS")
	efs := []int{10, 20, 40, 80, 160, 320}
	// Each point searches for at least pointTime and at least one pass over the queries.
	const rounds, pointTime = 5, 250 * time.Millisecond
	var report strings.Builder
	for b.Loop() {
		for _, set := range sets {
			if want != "" && !slices.ContainsFunc(strings.Split(want, ","), func(w string) bool { return strings.Contains(set.name, w) }) {
				continue
			}
			base, extra, queries := set.load()
			dims := len(base[0])
			type variant struct {
				q                Quantization
				x                *Index
				buildS, insertUS float64
				graphMiB         float64
				recall           []float64
				usPerQuery       [][]float64 // [ef][round]
			}
			vs := []*variant{{q: QuantNone}, {q: QuantInt8}}
			for _, v := range vs {
				opts := Options{M: 16, EfConstruction: 64, Seed: 9, Threads: 1, Quantization: v.q}
				capacity := len(base) + len(extra)
				mem := make([]byte, MappedSize(dims, set.metric, opts, capacity))
				x, err := Attach(mem, dims, set.metric, opts, capacity, true)
				if err != nil {
					b.Fatal(err)
				}
				ids := make([]uint32, len(base))
				for i := range ids {
					ids[i] = uint32(i)
				}
				start := time.Now()
				if err := x.AddBatch(ids, base); err != nil {
					b.Fatal(err)
				}
				v.buildS = time.Since(start).Seconds()
				start = time.Now()
				for i, e := range extra {
					if err := x.Add(uint32(len(base)+i), e); err != nil {
						b.Fatal(err)
					}
				}
				v.insertUS = float64(time.Since(start).Microseconds()) / float64(len(extra))
				v.graphMiB = float64(len(mem)) / (1 << 20)
				v.x = x
			}
			all := append(slices.Clip(base), extra...)
			truth := make([][]uint32, len(queries))
			for i, q := range queries {
				truth[i] = bruteForce(vs[0].x, all, nil, q, 10)
			}
			for _, v := range vs {
				v.usPerQuery = make([][]float64, len(efs))
				for _, ef := range efs {
					hit := 0
					for i, q := range queries {
						hit += found(truth[i], v.x.Search(q, 10, ef))
					}
					v.recall = append(v.recall, float64(hit)/float64(10*len(queries)))
				}
			}
			dst := make([]Result, 0, 10)
			for r := range rounds {
				for e, ef := range efs {
					order := vs
					if r%2 == 1 {
						order = []*variant{vs[1], vs[0]}
					}
					for _, v := range order {
						start, n := time.Now(), 0
						for ; n < len(queries) || time.Since(start) < pointTime; n++ {
							dst, _ = v.x.SearchInto(dst[:0], queries[n%len(queries)], 10, ef)
						}
						v.usPerQuery[e] = append(v.usPerQuery[e], float64(time.Since(start).Nanoseconds())/1e3/float64(n))
					}
				}
			}
			fmt.Fprintf(&report, "\n### %s\n\n%s; %d queries, recall@10 against exact float32 answers over base and inserted rows.\n\n", set.name, set.summary, len(queries))
			fmt.Fprintf(&report, "| traversal | build s (1 thread) | insert µs/row | graph file MiB |")
			for _, ef := range efs {
				fmt.Fprintf(&report, " ef %d recall / µs |", ef)
			}
			fmt.Fprintf(&report, "\n|---|---:|---:|---:|%s\n", strings.Repeat("---:|", len(efs)))
			for _, v := range vs {
				name := map[Quantization]string{QuantNone: "float32 (none)", QuantInt8: "int8"}[v.q]
				fmt.Fprintf(&report, "| %s | %.1f | %.0f | %.1f |", name, v.buildS, v.insertUS, v.graphMiB)
				for e := range efs {
					fmt.Fprintf(&report, " %.4f / %.1f |", v.recall[e], median(v.usPerQuery[e]))
				}
				fmt.Fprintln(&report)
			}
			fmt.Fprintf(&report, "\n| target recall | float32: cheapest ef, µs | int8: cheapest ef, µs | int8 speed-up |\n|---:|---|---|---:|\n")
			for _, target := range []float64{0.90, 0.95, 0.99} {
				cheapest := func(v *variant) (int, float64) {
					best, at := -1.0, 0
					for e, ef := range efs {
						if us := median(v.usPerQuery[e]); v.recall[e] >= target && (best < 0 || us < best) {
							best, at = us, ef
						}
					}
					return at, best
				}
				ef0, us0 := cheapest(vs[0])
				ef1, us1 := cheapest(vs[1])
				cell := func(ef int, us float64) string {
					if us < 0 {
						return "not reached"
					}
					return fmt.Sprintf("ef %d, %.1f", ef, us)
				}
				ratio := "n/a"
				if us0 > 0 && us1 > 0 {
					ratio = fmt.Sprintf("%.2fx", us0/us1)
				}
				fmt.Fprintf(&report, "| %.2f | %s | %s | %s |\n", target, cell(ef0, us0), cell(ef1, us1), ratio)
			}
			b.Logf("%s done", set.name)
		}
	}
	// Printed, not logged: the testing package truncates a benchmark's long log.
	fmt.Printf("median of %d alternating rounds, each point searching for at least %v\n%s", rounds, pointTime, report.String())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
