package dataset

import (
	"fmt"
	"math"
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
	// Spread chosen so clusters overlap a little: a graph must still cross between them.
	spread := 0.5 / math.Sqrt(math.Max(1, float64(d)/16))
	spread = math.Max(spread, 0.1)
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
