package hnsw

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/borealisdb/borealis/simd"
)

// Element says how the words of a stored node are read. Every node is dims
// 32-bit words (its code); for Float32 those are the components, for the other
// types the []float32 a caller passes (Add, Insert, Search, Restore) carries
// the code's bit patterns, laid out as pgext/src/hnswtypes.h says:
//
//	Half    binary16 components, two per word (pgvector's halfvec)
//	Bits    a bit string in 64-bit words, two words each (PostgreSQL's bit)
//	Sparse  word 0 the number of non-zeros n, then (dims−1)/2 int32 indices
//	        (ascending, the first n used), then as many float32 values
//	        (pgvector's sparsevec)
//
// Zero padding past the end of a code changes no distance. Only Float32 and
// Half support quantized traversal (quanthalf.go).
type Element uint8

const (
	// Float32 components, pgvector's vector (the default).
	Float32 Element = iota
	// Half components, pgvector's halfvec, kept as binary16 (half the memory of
	// float32; distances accumulate in float32 as pgvector's do).
	Half
	// Bits is a bit string for Hamming and Jaccard.
	Bits
	// Sparse is a sparse vector of at most (dims−1)/2 non-zeros.
	Sparse
)

func (e Element) String() string {
	switch e {
	case Float32:
		return "float32"
	case Half:
		return "half"
	case Bits:
		return "bits"
	case Sparse:
		return "sparse"
	}
	return fmt.Sprintf("Element(%d)", uint8(e))
}

// supports says whether metric is defined on the element type (as pgvector's
// operator classes define them).
func (e Element) supports(m Metric) bool {
	switch e {
	case Float32, Half, Sparse:
		return m >= L2 && m <= L1
	case Bits:
		return m == Hamming || m == Jaccard
	}
	return false
}

// checkElementOptions refuses a combination New cannot build.
func checkElementOptions(dims int, metric Metric, opts Options) error {
	e := opts.Element
	if !e.supports(metric) {
		return fmt.Errorf("%w: metric %v is not defined on %v elements", ErrInvalidOptions, metric, e)
	}
	if opts.Quantization != QuantNone && ((e != Float32 && e != Half) || metric == L1) {
		return fmt.Errorf("%w: %v quantization needs float32 or half elements under l2, cosine or inner product", ErrInvalidOptions, opts.Quantization)
	}
	if e == Bits && dims%2 != 0 {
		return fmt.Errorf("%w: bit elements need an even number of words, got %d", ErrInvalidOptions, dims)
	}
	if e == Sparse && (dims < 3 || dims%2 == 0) {
		return fmt.Errorf("%w: sparse elements need 1 + 2·n words, got %d", ErrInvalidOptions, dims)
	}
	return nil
}

func halves(v []float32) []uint16 {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&v[0])), 2*len(v))
}

func words64(v []float32) []uint64 {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&v[0])), len(v)/2)
}

// sparseParts splits a sparse code into its used indices and values.
func sparseParts(v []float32) (idx []int32, val []float32) {
	room := (len(v) - 1) / 2
	n := int(math.Float32bits(v[0]))
	if n > room {
		n = room // checkCode refuses such a code; a torn read must not index out of range
	}
	if n == 0 {
		return nil, nil // the compact empty code is one word: no v[1] to point at
	}
	idx = unsafe.Slice((*int32)(unsafe.Pointer(&v[1])), n)
	return idx, v[1+room : 1+room+n]
}

// codeDistance is the internal distance between two codes of a non-Float32
// element type (see distance.go for what "internal" means per metric).
func (x *Index) codeDistance(a, b []float32) float32 {
	switch x.elem {
	case Half:
		ha, hb := halves(a), halves(b)
		switch x.metric {
		case L2:
			return simd.SquaredL2Half(ha, hb)
		case Cosine:
			return simd.CosineDistanceHalf(ha, hb)
		case L1:
			return simd.L1Half(ha, hb)
		default:
			return -simd.DotHalf(ha, hb)
		}
	case Bits:
		wa, wb := words64(a), words64(b)
		if x.metric == Jaccard {
			return simd.Jaccard(wa, wb)
		}
		return float32(simd.Hamming(wa, wb))
	default: // Sparse
		ia, va := sparseParts(a)
		ib, vb := sparseParts(b)
		switch x.metric {
		case L2:
			return simd.SparseSquaredL2(ia, va, ib, vb)
		case Cosine:
			return 1 - simd.SparseDot(ia, va, ib, vb) // unit-length values (store)
		case L1:
			return simd.SparseL1(ia, va, ib, vb)
		default:
			return -simd.SparseDot(ia, va, ib, vb)
		}
	}
}

// checkCode validates a non-Float32 code and returns its squared norm (for
// cosine: zero is refused, sparse values are normalised by store).
func (x *Index) checkCode(v []float32) (norm2 float64, err error) {
	switch x.elem {
	case Half:
		for _, h := range halves(v) {
			if h&0x7C00 == 0x7C00 {
				return 0, ErrNonFinite
			}
		}
		if x.metric == Cosine {
			h := halves(v)
			norm2 = float64(simd.DotHalf(h, h))
		}
	case Bits:
		return 0, nil
	case Sparse:
		room := (len(v) - 1) / 2
		if n := int(math.Float32bits(v[0])); n > room {
			return 0, fmt.Errorf("%w: sparse vector with %d non-zero elements, room for %d", ErrInvalidOptions, n, room)
		}
		idx, val := sparseParts(v)
		for i, c := range val {
			if c != c || c > math.MaxFloat32 || c < -math.MaxFloat32 {
				return 0, ErrNonFinite
			}
			if idx[i] < 0 || (i > 0 && idx[i] <= idx[i-1]) {
				return 0, fmt.Errorf("%w: sparse indices not ascending", ErrInvalidGraph)
			}
			norm2 += float64(c) * float64(c)
		}
	}
	if x.metric == Cosine && norm2 == 0 {
		return 0, ErrZeroVector
	}
	return norm2, nil
}

// storeCode writes a non-Float32 code in stored form: as given, except a
// sparse vector under cosine, whose values are scaled to unit length.
func (x *Index) storeCode(dst, v []float32, norm2 float64) {
	copy(dst, v)
	if x.elem == Sparse && x.metric == Cosine {
		inv := 1 / math.Sqrt(norm2)
		_, val := sparseParts(dst)
		for i, c := range val {
			val[i] = float32(float64(c) * inv)
		}
	}
}

// Check reports what Add would refuse about v (its length, a non-finite
// component, a zero vector under cosine, a malformed code), without adding it.
func (x *Index) Check(v []float32) error {
	_, err := x.checkVector(v)
	return err
}
