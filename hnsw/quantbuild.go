package hnsw

import (
	"slices"

	"github.com/borealisdb/borealis/simd"
)

// Int8 construction. On an index with int8 codes (QuantInt8, float32 elements) an insert
// searches the graph as a query does: with int8 distances, a quarter of the float32 bytes
// per node visited. At 1,536 dims a build's distance work is memory-bound (a float32 row is
// 6 kB and the rows a search visits are scattered over the whole slab), so this is where
// its time goes. Each layer's beam is then rescored with exact float32 distances in one
// gather, and everything after the search (neighbour selection, the distances stored with
// the links, pruning) uses exact distances as before: int8 only decides which nodes the
// search visits and which ef it keeps.

// quantBuild says whether inserts search with int8 codes.
func (x *Index) quantBuild() bool {
	return x.quant && !x.bin && (x.elem == Float32 || x.elem == Half) && !x.noQuantBuild
}

// ownCodesAsQuery prepares s to search for id's own stored vector: its codes are already
// stored (storeCodes, from the same vector by the same function), so quantizing it again as
// a query would compute the same bytes.
func (x *Index) ownCodesAsQuery(s *scratch, id uint32) {
	s.quant = true
	if len(s.qcodes) != x.cdims {
		s.qcodes = make([]int8, x.cdims)
	}
	copy(s.qcodes, x.codeOf(id))
	if coarseCodes(s.qcodes) {
		s.quant = false // as quantizeQuery: this insert's searches walk with float32
		return
	}
	s.qscale = x.scales[id]
	if x.metric == L2 {
		s.qnorm2 = x.norms2[id]
	}
}

// rescoreGather replaces the distances of cs by exact ones, in one gather call, and sorts
// cs by them, ascending (ties by id).
func (x *Index) rescoreGather(s *scratch, q []float32, cs []candidate) {
	ids := s.rescoreIDs[:0]
	for _, c := range cs {
		ids = append(ids, c.id)
	}
	s.rescoreIDs = ids
	if cap(s.rescoreDists) < len(ids) {
		s.rescoreDists = make([]float32, len(ids))
	}
	d := s.rescoreDists[:len(ids)]
	if x.halfCos() {
		x.halfCosDistances(s, q, ids, d) // the same bits as distances, from the prepared query
	} else {
		x.distances(q, ids, d)
	}
	for i := range cs {
		cs[i].dist = d[i]
	}
	slices.SortFunc(cs, compareCandidates)
}

// approxGather is approx for every id of ids (int8 codes), with one gather call.
func (x *Index) approxGather(s *scratch, ids []uint32, out []float32) {
	if cap(s.dots) < len(ids) {
		s.dots = make([]int32, len(ids))
	}
	dots := s.dots[:len(ids)]
	simd.DotInt8Gather(s.qcodes, x.codes, ids, dots)
	for i, id := range ids {
		d := float32(dots[i]) * s.qscale * x.scales[id]
		switch x.metric {
		case L2:
			out[i] = max(s.qnorm2+x.norms2[id]-2*d, 0)
		case Cosine:
			out[i] = 1 - d
		default:
			out[i] = -d
		}
	}
}
