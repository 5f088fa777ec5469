package hnsw

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/borealisdb/borealis/simd"
)

// halfBench is a 10,000 × 1,536 cosine graph of halfvec elements, the shape of
// bench ann's halfvec-1536 suite, with float32 copies of the same (rounded)
// values for a float32 graph on identical data.
type halfBenchData struct {
	once          sync.Once
	half, f32     *Index
	halfQ         *Index      // the half graph with int8 traversal (quanthalf.go)
	codes         [][]float32 // half codes (two binary16 per word)
	dense         [][]float32 // the same values in float32
	qcodes, qs    [][]float32
	truth         [][]uint32
	buildH, build time.Duration
	buildQ        time.Duration
}

var halfBench halfBenchData

func halfCodes(v []float32) []float32 {
	code := make([]float32, (len(v)+1)/2)
	simd.Float32ToHalf(halves(code)[:len(v)], v)
	simd.HalfToFloat32(v, halves(code)[:len(v)]) // v now holds exactly the half values
	return code
}

func halfBenchGraphs(b *testing.B) *halfBenchData {
	hb := &halfBench
	hb.once.Do(func() {
		const n, dims = 10000, 1536
		all := clustered(n+200, dims, 64, 17)
		for _, v := range all {
			hb.codes = append(hb.codes, halfCodes(v))
		}
		hb.dense, hb.qs = all[:n], all[n:]
		hb.qcodes = hb.codes[n:]
		hb.codes = hb.codes[:n]
		start := time.Now()
		hb.half = build(b, hb.codes, Cosine, Options{M: 16, EfConstruction: 64, Seed: 1, Threads: 2, Element: Half})
		hb.buildH = time.Since(start)
		start = time.Now()
		hb.halfQ = build(b, hb.codes, Cosine, Options{M: 16, EfConstruction: 64, Seed: 1, Threads: 2, Element: Half, Quantization: QuantInt8})
		hb.buildQ = time.Since(start)
		start = time.Now()
		hb.f32 = build(b, hb.dense, Cosine, Options{M: 16, EfConstruction: 64, Seed: 1, Threads: 2})
		hb.build = time.Since(start)
		for _, q := range hb.qs {
			hb.truth = append(hb.truth, bruteForce(hb.f32, hb.dense, nil, q, 10))
		}
	})
	b.Logf("build: half %v, half int8 %v, float32 %v", hb.buildH, hb.buildQ, hb.build)
	return hb
}

// BenchmarkHalfIterator1536 is the index AM's path on halfvec(1536) under
// cosine: the first 10 results of an iterator (ORDER BY … LIMIT 10), on a half
// graph, on the half graph with int8 traversal and, for reference, on a float32
// graph of the same values.
//
//	go test ./hnsw -run '^$' -bench HalfIterator1536 -benchtime 400x
func BenchmarkHalfIterator1536(b *testing.B) {
	hb := halfBenchGraphs(b)
	for _, ef := range []int{10, 20, 40, 80} {
		for _, kind := range []string{"half", "half-int8", "float32"} {
			x, qs := hb.half, hb.qcodes
			switch kind {
			case "half-int8":
				x = hb.halfQ
			case "float32":
				x, qs = hb.f32, hb.qs
			}
			b.Run(fmt.Sprintf("ef=%d/%s", ef, kind), func(b *testing.B) {
				first10 := func(q []float32) []Result { return drain(b, x, q, SearchOptions{Ef: ef}, 10) }
				hit := 0
				for i, q := range qs {
					hit += found(hb.truth[i], first10(q))
				}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					first10(qs[i%len(qs)])
				}
				b.ReportMetric(float64(hit)/float64(10*len(qs)), "recall@10")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
			})
		}
	}
}
