package hnsw

import (
	"fmt"
	"testing"
	"time"
)

// What each quantization does to build time, memory, recall and speed, in the engine alone
// (bench ann measures the same through SQL): the same data and seed built three times.
//
//	go test ./hnsw -run '^$' -bench QuantizationSettings -benchtime 300x
func BenchmarkQuantizationSettings(b *testing.B) {
	all := clustered(10100, 768, 32, 71)
	data, queries := all[:10000], all[10000:]
	var truth [][]uint32
	for _, q := range []Quantization{QuantNone, QuantInt8, QuantBinary} {
		start := time.Now()
		x := build(b, data, Cosine, Options{M: 16, EfConstruction: 64, Seed: 9, Threads: 2, Quantization: q})
		buildSeconds := time.Since(start).Seconds()
		if truth == nil {
			for _, v := range queries {
				truth = append(truth, bruteForce(x, data, nil, v, 10))
			}
		}
		bytes := MappedSize(768, Cosine, Options{M: 16, Quantization: q}, len(data))
		for _, ef := range []int{40, 100, 200, 400} {
			b.Run(fmt.Sprintf("%v/ef=%d", q, ef), func(b *testing.B) {
				hit := 0
				for i, v := range queries {
					hit += found(truth[i], x.Search(v, 10, ef))
				}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					x.Search(queries[i%len(queries)], 10, ef)
				}
				b.ReportMetric(float64(hit)/float64(10*len(queries)), "recall@10")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
				b.ReportMetric(buildSeconds, "build-s")
				b.ReportMetric(float64(bytes)/(1<<20), "graph-MiB")
			})
		}
	}
}
