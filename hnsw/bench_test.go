package hnsw

import (
	"testing"
)

// BenchmarkSearchInto reports ns and allocations per search (0 in steady state).
func BenchmarkSearchInto(b *testing.B) {
	all := clustered(20100, 128, 64, 1)
	data, queries := all[:20000], all[20000:]
	x := build(b, data, L2, Options{M: 16, EfConstruction: 64, Seed: 1})
	dst := make([]Result, 0, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dst, _ = x.SearchInto(dst[:0], queries[i%len(queries)], 10, 64)
	}
}

// BenchmarkBuildMNIST5k builds a graph of 5,000 MNIST images (784 dims) on one thread.
func BenchmarkBuildMNIST5k(b *testing.B) {
	data := loadMNIST(b, "train-images-idx3-ubyte.gz", 5000)
	b.ResetTimer()
	for b.Loop() {
		build(b, data, L2, Options{M: 16, EfConstruction: 64, Seed: 1, Threads: 1})
	}
}

// BenchmarkBuild20k128 builds 20,000 clustered 128-dim vectors on one thread.
func BenchmarkBuild20k128(b *testing.B) {
	data := clustered(20000, 128, 64, 1)
	b.ResetTimer()
	for b.Loop() {
		build(b, data, L2, Options{M: 16, EfConstruction: 64, Seed: 1, Threads: 1})
	}
}
