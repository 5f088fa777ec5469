package hnsw

import (
	"cmp"
	"slices"

	"github.com/borealisdb/borealis/simd"
)

// Quantized traversal (Options.QuantizedSearch). Next to the float32 slab the
// index keeps an int8 copy of every stored vector, one per-vector scale
// (v ≈ code·scale, codes in [-127, 127]) and, under L2, the exact squared
// norm. Searches and iterators walk the graph with int8 distances, which read a
// quarter of the memory per node: at high dimensions the float32 slab does not
// fit in cache and traversal is memory-bound. The candidates a search returns
// are then rescored with the exact float32 distance and re-sorted, so every
// Distance the caller sees is the exact pgvector value. The whole beam (ef
// candidates) is rescored, not a fixed head: int8 rounding reorders near-ties
// (badly when a few components dominate every vector, as in real embeddings),
// and a true neighbour ranked past a fixed window would be lost at any ef. Inserts on
// float32 elements search with int8 too (quantbuild.go) but rescore their beams, and
// neighbour selection and deletes always use float32 distances: the option changes which
// nodes an insert's search visits, not how neighbours are chosen among them.
//
// Approximate internal distances, with d = qscale·scale·(qcodes·codes):
//   Cosine:       1 − d (both sides are unit length)
//   InnerProduct: −d
//   L2:           ‖q‖² + ‖v‖² − 2d (exact norms, only the dot is quantized)
//
// Binary quantization (Options.Quantization QuantBinary) keeps only the sign
// of each component and traverses by the Hamming distance between the query's
// sign bits and each vector's, whatever the metric: it orders neighbours by
// how many components disagree in sign, which tracks cosine and inner product
// on zero-centred embeddings, at 1/32 of the float32 bytes and one popcount
// per 64 components. It is coarse (ties are common), so the beam is rescored
// as for int8 and a larger ef recovers recall. A distance bound
// (MaxDistance) cannot end a Hamming walk early; it is applied after rescoring.

// storeCodes quantizes the stored vector of id into the int8 slab (caller
// holds grow shared and owns id: it is pending, not yet linked).
func (x *Index) storeCodes(id uint32) {
	if !x.quant {
		return
	}
	if x.bin {
		x.storeCodesOf(x.vec(id), nil, x.bitsOf(id))
		return
	}
	scale, norm2 := x.storeCodesOf(x.vec(id), x.codeOf(id), nil)
	x.scales[id] = scale
	if x.metric == L2 {
		x.norms2[id] = norm2
	}
}

// codeOf is the int8 row of id (caller holds grow).
func (x *Index) codeOf(id uint32) []int8 {
	o := int(id) * x.cdims
	return x.codes[o : o+x.cdims : o+x.cdims]
}

// bitsOf is the binary code of id (caller holds grow).
func (x *Index) bitsOf(id uint32) []uint64 {
	o := int(id) * x.words
	return x.bits[o : o+x.words : o+x.words]
}

// quantizeQuery prepares s for quantized traversal of q (stored form) when the
// index has the option on; inserts never call it, so their scratches score in
// float32.
func (x *Index) quantizeQuery(s *scratch, q []float32) {
	if !x.quant {
		return
	}
	s.quant = true
	f, factor, buf := x.quantSource(q, s.qhalf)
	s.qhalf = buf
	if x.bin {
		if len(s.qbits) != x.words {
			s.qbits = make([]uint64, x.words)
		}
		simd.SignBits(s.qbits, f)
		return
	}
	if len(s.qcodes) != x.cdims {
		s.qcodes = make([]int8, x.cdims)
	}
	s.qscale = simd.QuantizeInt8(s.qcodes, f) * factor
	if coarseCodes(s.qcodes) {
		s.quant = false
		return
	}
	if x.metric == L2 {
		s.qnorm2 = simd.Dot(f, f)
	}
}

// minMeanCode is the least mean |code| of a vector whose int8 codes may steer a walk. The
// per-vector scale is set by the largest component, so when one component dwarfs the rest
// (a constant offset, or an embedding's "massive activation" dimension) the others keep
// only a few code steps and int8 distances stop ordering neighbours. At 128 dims with
// component 0 shifted by +20 (mean |code| 6.2) the int8 walk found 0.71 of the top 10 at
// ef 10 and 0.94 at ef 20 where float32 found 0.98 and 1.00; shifted by +200 (mean 1.5),
// 0.11 at ef 10 and 0.51 at ef 80 against 0.88 and 0.998, so no ef pays for it
// (bench/results/2026-12-02-i10i-int8-traversal.md). Such a query walks with float32
// distances instead; the answer is exact either way. Clustered Gaussians code to a mean
// |code| near 30, SIFT near 39, MNIST near 17 (4% of its images, thin digits, fall under 8
// and walk with float32 at no cost in recall). The guard reads the query only: data coded
// coarsely under well-coded queries is not caught (a count of coarse stored rows would
// need a graph-file field).
const minMeanCode = 8

// coarseCodes says whether codes are too coarse to walk with (minMeanCode).
func coarseCodes(codes []int8) bool {
	sum := 0
	for _, c := range codes {
		sum += max(int(c), -int(c))
	}
	return sum < minMeanCode*len(codes)
}

// approx is the int8 internal distance from the quantized query in s to id.
func (x *Index) approx(s *scratch, id uint32) float32 {
	if x.bin {
		return float32(simd.Hamming(s.qbits, x.bitsOf(id)))
	}
	d := float32(simd.DotInt8(s.qcodes, x.codeOf(id))) * s.qscale * x.scales[id]
	switch x.metric {
	case L2:
		return max(s.qnorm2+x.norms2[id]-2*d, 0)
	case Cosine:
		return 1 - d
	default:
		return -d
	}
}

// scoreOne is the traversal distance from q to id: int8 when s is quantized.
func (x *Index) scoreOne(s *scratch, q []float32, id uint32) float32 {
	if s.quant {
		return x.approx(s, id)
	}
	if x.halfCos() {
		return simd.CosineDistanceHalfQuery(x.halfQuery(s, q), halves(x.vec(id)))
	}
	if x.sparseDot() {
		return x.sparseDotScore(x.sparseQueryOf(s, q), q, x.vec(id))
	}
	if x.sparseSum() {
		return x.sparseSumScore(x.sparseQueryOf(s, q), q, x.vec(id))
	}
	return x.distance(q, x.vec(id))
}

// score writes the traversal distance from q to each of ids into out.
func (x *Index) score(s *scratch, q []float32, ids []uint32, out []float32) {
	if !s.quant {
		if x.halfCos() {
			x.halfCosDistances(s, q, ids, out)
			return
		}
		if x.sparseDot() {
			x.sparseDotDistances(s, q, ids, out)
			return
		}
		if x.sparseSum() {
			sq := x.sparseQueryOf(s, q)
			for i, id := range ids {
				out[i] = x.sparseSumScore(sq, q, x.vec(id))
			}
			return
		}
		x.distances(q, ids, out)
		return
	}
	if !x.bin {
		x.approxGather(s, ids, out)
		return
	}
	for i, id := range ids {
		out[i] = x.approx(s, id)
	}
}

// rescore replaces the approximate distances of cs by exact ones and sorts
// cs by them, ascending (ties by id, so the order is deterministic). Half rows
// under cosine are scored from s's prepared query (the same bits as distance).
func (x *Index) rescore(s *scratch, q []float32, cs []candidate) {
	if x.halfCos() {
		hq := x.halfQuery(s, q)
		for i := range cs {
			cs[i].dist = simd.CosineDistanceHalfQuery(hq, halves(x.vec(cs[i].id)))
		}
	} else {
		for i := range cs {
			cs[i].dist = x.distance(q, x.vec(cs[i].id))
		}
	}
	slices.SortFunc(cs, compareCandidates)
}

func compareCandidates(a, b candidate) int {
	if c := cmp.Compare(a.dist, b.dist); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}
