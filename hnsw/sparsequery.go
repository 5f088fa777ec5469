package hnsw

import "github.com/borealisdb/borealis/simd"

// Sparse elements under inner product and cosine: a search compares one query with every node
// it visits, and the merge of two index lists costs a compare and an unpredictable branch per
// non-zero of either (~90% of a sparse build's CPU was that merge). The scratch keeps the
// query scattered into a dense array by index, once per search, insert or iterator
// (simd.SparseDotDense), so each visit is one pass over the stored vector's non-zeros with the
// same bits as the merge: traversal order, results and reported distances do not change.
// L2 and L1 sum over the query's own non-zeros too, which a pass over the stored vector's
// cannot add in the merge's order; they walk the graph with ‖q‖² (Σ|q|) plus a float64 pass
// over the stored vector's non-zeros (simd.SparseSquaredL2DenseDelta), within float64
// rounding of the true distance, and every beam a search, iterator round or insert keeps is
// rescored with the merge, as int8 traversal is (quantized.go): what callers see, and what
// neighbour selection compares, are the merge's bits. Queries with an index at or past
// sparseDenseLimit (sparsevec allows up to 10^9 dimensions) keep the merge.

// sparseDenseLimit bounds the dense query array (4 MB of float32; only the pages its indices
// touch are ever written).
const sparseDenseLimit = 1 << 20

// sparseQuery is a query scattered by index into dense (zero elsewhere).
type sparseQuery struct {
	dense []float32
	set   []int32 // indices written into dense, cleared before the next query
	ok    bool    // dense holds the query (false: out of range, merge instead)
	forQ  *float32
	base  float64 // L2: Σq², L1: Σ|q| (float64), the distance's query-only part
}

// sparseDot says whether the traversal distance is a dot product of sparse elements.
func (x *Index) sparseDot() bool {
	return x.sparse && (x.metric == InnerProduct || x.metric == Cosine)
}

// sparseSum says whether sparse elements walk the graph with the dense-query L2 or L1, which
// are not the merge's bits: what a search keeps is rescored.
func (x *Index) sparseSum() bool {
	return x.sparse && (x.metric == L2 || x.metric == L1)
}

// approxTraversal says whether s walks the graph with distances that must be rescored
// before anyone sees them (int8 or binary codes, or the sparse L2/L1 sums).
func (x *Index) approxTraversal(s *scratch) bool {
	return s.quant || x.sparseSum()
}

// sparseQueryOf returns s's dense form of q, scattering it when s last prepared another slice
// (as halfQuery: q is one slice for a whole search, and put forgets the preparation).
func (x *Index) sparseQueryOf(s *scratch, q []float32) *sparseQuery {
	return x.scatter(&s.sq, q)
}

// scatter makes sq the dense form of q unless it already is.
func (x *Index) scatter(sq *sparseQuery, q []float32) *sparseQuery {
	if sq.forQ == &q[0] {
		return sq
	}
	for _, i := range sq.set {
		sq.dense[i] = 0
	}
	sq.set = sq.set[:0]
	idx, val := sparseParts(q)
	sq.ok = len(idx) == 0 || (idx[0] >= 0 && idx[len(idx)-1] < sparseDenseLimit)
	sq.base = 0
	for _, v := range val {
		if x.metric == L1 {
			sq.base += abs64(float64(v))
		} else {
			sq.base += float64(v) * float64(v)
		}
	}
	if sq.ok && len(idx) > 0 {
		if need := int(idx[len(idx)-1]) + 1; len(sq.dense) < need {
			sq.dense = make([]float32, max(need, min(2*len(sq.dense), sparseDenseLimit)))
		}
		for k, i := range idx {
			sq.dense[i] = val[k]
		}
		sq.set = append(sq.set, idx...)
	}
	sq.forQ = &q[0]
	return sq
}

// sparseDotScore is the internal distance from q to stored code v, from the prepared query.
func (x *Index) sparseDotScore(sq *sparseQuery, q, v []float32) float32 {
	if !sq.ok {
		return x.distance(q, v)
	}
	idx, val := sparseParts(v)
	d := simd.SparseDotDense(sq.dense, idx, val)
	if x.metric == Cosine {
		return 1 - d
	}
	return -d
}

// sparseSumScore is the traversal distance from q to stored code v under L2 or L1 (see the
// file comment): the merge's when q could not be scattered.
func (x *Index) sparseSumScore(sq *sparseQuery, q, v []float32) float32 {
	if !sq.ok {
		return x.distance(q, v)
	}
	idx, val := sparseParts(v)
	var d float64
	if x.metric == L1 {
		d = sq.base + simd.SparseL1DenseDelta(sq.dense, idx, val)
	} else {
		d = sq.base + simd.SparseSquaredL2DenseDelta(sq.dense, idx, val)
	}
	return float32(max(d, 0))
}

func abs64(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// sparseDotDistances is distances for sparseDot indexes, from the prepared query.
func (x *Index) sparseDotDistances(s *scratch, q []float32, ids []uint32, out []float32) {
	sq := x.sparseQueryOf(s, q)
	for i, id := range ids {
		out[i] = x.sparseDotScore(sq, q, x.vec(id))
	}
}

// pairDistance is distance(a, b) for two stored codes, where a is compared with several b in a
// row (neighbour selection): for sparseDot indexes a is scattered once into s's second dense
// array (not the query's, which the same insert goes on using).
func (x *Index) pairDistance(s *scratch, a, b []float32) float32 {
	if !x.sparseDot() {
		return x.distance(a, b)
	}
	return x.sparseDotScore(x.scatter(&s.sqPair, a), a, b)
}

// pairDistances is distances(a, ids, out) with a scattered as in pairDistance.
func (x *Index) pairDistances(s *scratch, a []float32, ids []uint32, out []float32) {
	if !x.sparseDot() {
		x.distances(a, ids, out)
		return
	}
	sq := x.scatter(&s.sqPair, a)
	for i, id := range ids {
		out[i] = x.sparseDotScore(sq, a, x.vec(id))
	}
}
