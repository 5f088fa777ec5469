package hnsw

import (
	"math"

	"github.com/borealisdb/borealis/simd"
)

// Internally every metric is reduced to one kernel call whose result orders
// like the pgvector distance:
//   L2:           squared Euclidean distance (sqrt is monotonic, applied on output)
//   Cosine:       1 − a·b on unit-length stored vectors and a unit-length query
//   InnerProduct: −a·b
//   L1, Hamming, Jaccard: the pgvector distance itself
// Half elements under cosine compute the whole cosine (a unit-length copy in
// binary16 would round); sparse ones are stored at unit length as float32 is.
// reported converts the internal value to the pgvector value.

// distance between a (query or stored) vector and a stored vector.
func (x *Index) distance(a, b []float32) float32 {
	if x.elem != Float32 {
		return x.codeDistance(a, b)
	}
	switch x.metric {
	case L2:
		return simd.SquaredL2(a, b)
	case Cosine:
		return 1 - simd.Dot(a, b)
	case L1:
		return simd.L1(a, b)
	default:
		return -simd.Dot(a, b)
	}
}

// distances writes the internal distance from q to each stored node of ids
// into out, in one simd gather call (the vectors are rows of one slab).
func (x *Index) distances(q []float32, ids []uint32, out []float32) {
	if x.elem != Float32 || x.metric == L1 {
		for i, id := range ids {
			out[i] = x.distance(q, x.vec(id))
		}
		return
	}
	switch x.metric {
	case L2:
		simd.SquaredL2Gather(q, x.vectors, ids, out)
	case Cosine:
		simd.DotGather(q, x.vectors, ids, out)
		for i, d := range out {
			out[i] = 1 - d
		}
	default:
		simd.DotGather(q, x.vectors, ids, out)
		for i, d := range out {
			out[i] = -d
		}
	}
}

// reported turns an internal distance into the metric's pgvector value.
func (x *Index) reported(d float32) float32 {
	switch x.metric {
	case L2:
		if d <= 0 {
			return 0
		}
		return float32(math.Sqrt(float64(d)))
	case Cosine:
		// pgvector clamps the similarity to [-1, 1]; rounding can leave a·b of
		// unit vectors just outside it.
		return min(max(d, 0), 2)
	default:
		return d
	}
}

// internal turns a pgvector distance bound into the internal scale.
func (x *Index) internal(d float32) float32 {
	if x.metric == L2 {
		if d < 0 {
			return -1 // nothing qualifies: every internal L2 distance is ≥ 0
		}
		return d * d
	}
	return d
}

// checkVector validates a caller vector: length, finiteness, and non-zero
// under cosine. It returns the squared norm.
func (x *Index) checkVector(v []float32) (norm2 float64, err error) {
	if len(v) != x.dims {
		return 0, &DimensionError{Got: len(v), Want: x.dims}
	}
	if x.elem != Float32 {
		return x.checkCode(v)
	}
	for _, c := range v {
		if c != c || c > math.MaxFloat32 || c < -math.MaxFloat32 {
			return 0, ErrNonFinite
		}
		norm2 += float64(c) * float64(c)
	}
	if x.metric == Cosine && norm2 == 0 {
		return 0, ErrZeroVector
	}
	return norm2, nil
}

// store writes v into dst in stored form: a unit-length copy under cosine.
func (x *Index) store(dst, v []float32, norm2 float64) {
	if x.elem != Float32 {
		x.storeCode(dst, v, norm2)
		return
	}
	if x.metric != Cosine {
		copy(dst, v)
		return
	}
	inv := 1 / math.Sqrt(norm2)
	for i, c := range v {
		dst[i] = float32(float64(c) * inv)
	}
}
