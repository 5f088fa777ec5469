// Package hnswtest holds the synthetic test data that the index's tests share across layers:
// hnsw's own tests and the extension's integration tests (pgext) import it, so a graph-level
// test measures exactly the vectors a SQL-level test inserts. It is test support only: it
// imports nothing of the project (hnsw's tests may import it) and no production code imports it.
package hnswtest

import "math/rand/v2"

// Clustered returns n vectors of dims components around `clusters` random centres, the shape
// of real embeddings (near neighbours exist, unlike uniform noise). seed makes it repeatable,
// and the vectors come in generation order: the first k of Clustered(n, ...) are the first k
// of Clustered(m, ...) for the same dims, clusters and seed.
func Clustered(n, dims, clusters int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	centres := make([][]float32, clusters)
	for c := range centres {
		centres[c] = make([]float32, dims)
		for i := range centres[c] {
			centres[c][i] = float32(r.NormFloat64())
		}
	}
	out := make([][]float32, n)
	for k := range out {
		c := centres[r.IntN(clusters)]
		v := make([]float32, dims)
		for i := range v {
			v[i] = c[i] + float32(0.35*r.NormFloat64())
		}
		out[k] = v
	}
	return out
}
