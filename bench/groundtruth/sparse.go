package groundtruth

import (
	"math"

	"github.com/borealisdb/borealis/bench/dataset"
)

// sparseScores returns what writes query i's distance to every base vector of a sparse
// dataset: dot products accumulated over an inverted index of the base (only the postings
// of the query's terms are read), then each metric's distance from the dot product and the
// norms. The k found are then rescored term by term (refineSparse): for L2, norms minus
// twice the dot product cancels near duplicates.
func sparseScores(d *dataset.Dataset) func(i int, out []float32) {
	base := d.Sparse.Base
	type posting struct {
		id  int32
		val float32
	}
	postings := make([][]posting, d.Dim)
	norms := make([]float64, len(base))
	for id, v := range base {
		for j, t := range v.Indices {
			postings[t] = append(postings[t], posting{int32(id), v.Values[j]})
		}
		norms[id] = v.Norm2()
	}
	return func(i int, out []float32) {
		q := d.Sparse.Queries[i]
		dot := make([]float64, len(base))
		for j, t := range q.Indices {
			if int(t) >= len(postings) {
				continue
			}
			w := float64(q.Values[j])
			for _, p := range postings[t] {
				dot[p.id] += w * float64(p.val)
			}
		}
		qn := q.Norm2()
		for id := range out {
			switch d.Metric {
			case dataset.IP:
				out[id] = float32(-dot[id])
			case dataset.Cosine:
				if qn == 0 || norms[id] == 0 {
					out[id] = float32(math.NaN())
				} else {
					out[id] = float32(1 - max(-1, min(1, dot[id]/math.Sqrt(qn*norms[id]))))
				}
			default:
				out[id] = float32(max(0, qn+norms[id]-2*dot[id]))
			}
		}
	}
}

// RowDistance returns the distance from query q to base vector id of d, in the units of
// Distance, for dense and sparse datasets alike.
func RowDistance(d *dataset.Dataset) func(q, id int) float32 {
	if d.Sparse != nil {
		return func(q, id int) float32 {
			return dataset.SparseDistance(d.Metric, d.Sparse.Queries[q], d.Sparse.Base[id])
		}
	}
	dist := Distance(d.Metric)
	return func(q, id int) float32 { return dist(d.Query(q), d.Row(id)) }
}

// refineSparse rescores query q's k neighbours with the term-by-term distance and keeps them
// in ascending order.
func refineSparse(d *dataset.Dataset, q int, ids []int32, dists []float32) {
	for j, id := range ids {
		dists[j] = dataset.SparseDistance(d.Metric, d.Sparse.Queries[q], d.Sparse.Base[id])
	}
	for j := 1; j < len(ids); j++ {
		for l := j; l > 0 && (dists[l] < dists[l-1] || dists[l] == dists[l-1] && ids[l] < ids[l-1]); l-- {
			ids[l], ids[l-1] = ids[l-1], ids[l]
			dists[l], dists[l-1] = dists[l-1], dists[l]
		}
	}
}
