package dataset

import (
	"fmt"
	"math/rand/v2"
)

// Synthetic makes n base and q query vectors of dimension d from a mixture of Gaussian
// clusters. The same seed gives the same data bit for bit, so every run measures the same
// thing. Clustered rather than uniform data, because uniform high-dimensional data has no
// neighbourhood structure and makes every index look equally bad.
func Synthetic(n, d, q int, metric Metric, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 0x626f7265616c6973)) // "borealis"
	clusters := max(1, min(256, n/100))
	centres := make([]float32, clusters*d)
	for i := range centres {
		centres[i] = float32(rng.NormFloat64())
	}
	// Within-cluster spread 0.6 of the centres' own: clusters overlap, as real embeddings'
	// topics do. Disjoint islands would measure only whether a graph happens to link them,
	// and uniform data has no neighbourhood structure at all.
	const spread = 0.6
	gen := func(rows int) []float32 {
		out := make([]float32, rows*d)
		for r := 0; r < rows; r++ {
			c := centres[rng.IntN(clusters)*d:]
			for j := 0; j < d; j++ {
				out[r*d+j] = c[j] + float32(spread*rng.NormFloat64())
			}
		}
		return out
	}
	base := gen(n)
	queries := gen(q)
	return &Dataset{Name: fmt.Sprintf("synthetic:%d:%d:%s", n, d, metric), Metric: metric, Dim: d,
		Base: base, Queries: queries}
}
