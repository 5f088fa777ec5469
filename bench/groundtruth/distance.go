package groundtruth

import (
	"github.com/borealisdb/borealis/bench/dataset"
	"github.com/borealisdb/borealis/simd"
)

// Distance is the order PostgreSQL's operator for metric sorts by, in the same units for
// ground truth and for scoring an index's answers: squared L2 for <->, cosine distance for
// <=>, negative inner product for <#>.
func Distance(m dataset.Metric) func(a, b []float32) float32 {
	switch m {
	case dataset.Cosine:
		return simd.CosineDistance
	case dataset.IP:
		return func(a, b []float32) float32 { return -simd.Dot(a, b) }
	}
	return simd.SquaredL2
}

// batchDistance writes the distance from q to each row of data into out.
func batchDistance(m dataset.Metric) func(q, data, out []float32) {
	switch m {
	case dataset.Cosine:
		return simd.CosineDistanceBatch
	case dataset.IP:
		return func(q, data, out []float32) {
			simd.DotBatch(q, data, out)
			for i := range out {
				out[i] = -out[i]
			}
		}
	}
	return simd.SquaredL2Batch
}
