package hnsw

import "github.com/borealisdb/borealis/simd"

// Half elements under cosine: a search compares one query with every node it visits, and
// CosineDistanceHalf converts both vectors and sums the query's norm again for each. The
// scratch keeps the query prepared once (simd.HalfQuery: float32 copy and squared norm), so
// each visit converts and sums only the stored vector, with the same bits as
// CosineDistanceHalf: traversal order, results and reported distances do not change.

// halfQuery returns s's prepared form of q, preparing it when s last prepared another
// slice. q is the same slice for the whole of one search, insert or iterator, and put
// forgets the preparation, so a reused scratch never scores with a stale query.
func (x *Index) halfQuery(s *scratch, q []float32) *simd.HalfQuery {
	if s.hqFor != &q[0] {
		s.hq.Set(halves(q))
		s.hqFor = &q[0]
	}
	return &s.hq
}

// halfCos says whether the traversal distance is cosine over half elements.
func (x *Index) halfCos() bool { return x.elem == Half && x.metric == Cosine }

// halfCosDistances is distances for halfCos indexes, from the prepared query.
func (x *Index) halfCosDistances(s *scratch, q []float32, ids []uint32, out []float32) {
	hq := x.halfQuery(s, q)
	for i, id := range ids {
		next := id
		if i+1 < len(ids) {
			next = ids[i+1]
		}
		out[i] = simd.CosineDistanceHalfQueryNext(hq, halves(x.vec(id)), halves(x.vec(next)))
	}
}
