package hnsw

import (
	"math"
	"sync"

	"github.com/borealisdb/borealis/simd"
)

// Quantized traversal over Half elements (pgvector's halfvec). The codes are those of a
// float32 index over the same values: each binary16 row is converted to float32 (exactly),
// and under cosine scaled to unit length, since a Half code is stored as given and the
// approximate cosine (1 − d, quantized.go) needs unit vectors on both sides. A row of 2·dims
// halves gives 2·dims int8 codes (a trailing zero pad changes no dot product), half the
// bytes of the binary16 row a search would otherwise read per visit. Candidates are rescored
// exactly from the binary16 rows (under cosine with the prepared query, halfquery.go), so
// every reported distance is the one an unquantized Half index reports.

// codeDims is the number of components a stored row of dims words quantizes to.
func codeDims(dims int, e Element) int {
	if e == Half {
		return 2 * dims
	}
	return dims
}

// halfBufs holds float32 rows for converting a Half row before it is quantized (inserts
// and restores have no scratch of their own to lend).
var halfBufs sync.Pool

// quantSource is v as the float32 components its codes are computed from, and the factor
// the codes' scale is multiplied by (1 except a Half row under cosine: 1/‖v‖). For Float32
// rows it is v itself; for Half rows buf (grown to the component count) is filled. A zero
// Half row under cosine keeps factor 1 (cosine refuses zero vectors before they get here).
func (x *Index) quantSource(v []float32, buf []float32) (f []float32, factor float32, out []float32) {
	if x.elem != Half {
		return v, 1, buf
	}
	n := x.cdims
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	f = buf[:n]
	simd.HalfToFloat32(f, halves(v))
	factor = 1
	if x.metric == Cosine {
		if n2 := simd.Dot(f, f); n2 > 0 {
			factor = float32(1 / math.Sqrt(float64(n2)))
		}
	}
	return f, factor, buf
}

// storeCodesOf writes the codes of stored row v into code (int8) or bits (binary) and
// returns the int8 scale and, under L2, the squared norm of the values coded.
func (x *Index) storeCodesOf(v []float32, code []int8, bits []uint64) (scale, norm2 float32) {
	var buf []float32
	if x.elem == Half {
		if p, ok := halfBufs.Get().(*[]float32); ok {
			buf = *p
		}
	}
	f, factor, buf := x.quantSource(v, buf)
	if x.elem == Half {
		defer halfBufs.Put(&buf)
	}
	if x.bin {
		simd.SignBits(bits, f)
		return 0, 0
	}
	scale = simd.QuantizeInt8(code, f) * factor
	if x.metric == L2 {
		norm2 = simd.Dot(f, f)
	}
	return scale, norm2
}
