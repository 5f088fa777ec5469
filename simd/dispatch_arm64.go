package simd

// paths on arm64: NEON (Advanced SIMD), which every arm64 CPU has, so it is always
// supported. vek has no arm64 assembly (its kernels fall back to Go there), hence our own. The assembly (kernels_arm64.s) is hand-written; avo does not target arm64.
// It covers the per-row float32 work; rows are looped over in Go (a call costs a few ns,
// against ~100 ns for a 768-dim row). int8 uses the generic code on arm64: the Go compiler's
// scalar loop is what we have until an SDOT (ARMv8.2 dotprod) path is written and tested.
var paths = []pathEntry{
	{&neonImpl, func() bool { return true }},
}

//go:noescape
func dotNEON(a, b *float32, n int) float32

//go:noescape
func l2NEON(a, b *float32, n int) float32

//go:noescape
func dotNormNEON(a, b *float32, n int) (dot, nb float32)

// The kernels of kernels_types_arm64.s.

//go:noescape
func l1NEON(a, b *float32, n int) float32

//go:noescape
func dotHalfNEON(a, b *uint16, n int) float32

//go:noescape
func l2HalfNEON(a, b *uint16, n int) float32

//go:noescape
func l1HalfNEON(a, b *uint16, n int) float32

//go:noescape
func cosHalfNEON(a, b *uint16, n int) (dot, na, nb float32)

//go:noescape
func halfToFloat32NEON(dst *float32, src *uint16, n int)

//go:noescape
func float32ToHalfNEON(dst *uint16, src *float32, n int)

//go:noescape
func jaccardNEON(a, b *uint64, n int) (inter, union int)

//go:noescape
func hammingNEON(a, b *uint64, n int) int

var neonImpl = impl{
	name:   "neon",
	dot:    func(a, b []float32) float32 { return pairNEON(dotNEON, a, b) },
	l2:     func(a, b []float32) float32 { return pairNEON(l2NEON, a, b) },
	cos:    func(a, b []float32) float32 { return cosFinish(dotNormPairNEON(a, b, normSqNEON(a))) },
	normSq: normSqNEON,
	dotBatch: func(q, data, out []float32) {
		batch(func(a, b []float32) float32 { return pairNEON(dotNEON, a, b) }, q, data, out)
	},
	l2Batch: func(q, data, out []float32) {
		batch(func(a, b []float32) float32 { return pairNEON(l2NEON, a, b) }, q, data, out)
	},
	cosBatch: func(q, data, out []float32) {
		na := normSqNEON(q)
		batch(func(a, b []float32) float32 { return cosFinish(dotNormPairNEON(a, b, na)) }, q, data, out)
	},
	dotGather: func(q, slab []float32, rows []uint32, out []float32) {
		gather(func(a, b []float32) float32 { return pairNEON(dotNEON, a, b) }, q, slab, rows, out)
	},
	l2Gather: func(q, slab []float32, rows []uint32, out []float32) {
		gather(func(a, b []float32) float32 { return pairNEON(l2NEON, a, b) }, q, slab, rows, out)
	},
	cosGather: func(q, slab []float32, rows []uint32, out []float32) {
		na := normSqNEON(q)
		gather(func(a, b []float32) float32 { return cosFinish(dotNormPairNEON(a, b, na)) }, q, slab, rows, out)
	},
	dotI8:    dotInt8Generic,
	dotI8G:   func(q, slab []int8, rows []uint32, out []int32) { gatherInt8(dotInt8Generic, q, slab, rows, out) },
	l2I8:     l2Int8Generic,
	l1:       func(a, b []float32) float32 { return pairNEON(l1NEON, a, b) },
	fromHalf: halfToFloat32NEONSlice,
	toHalf:   float32ToHalfNEONSlice,
	l2Half:   func(a, b []uint16) float32 { return halfPairNEON(l2HalfNEON, a, b) },
	dotHalf:  func(a, b []uint16) float32 { return halfPairNEON(dotHalfNEON, a, b) },
	l1Half:   func(a, b []uint16) float32 { return halfPairNEON(l1HalfNEON, a, b) },
	cosHalf:  cosHalfNEONSlice,
	cosHalfQ: func(q *HalfQuery, b, _ []uint16) float32 { return cosHalfNEONSlice(q.h, b) },
	jaccard:  jaccardNEONSlice,
	hamming:  hammingNEONSlice,
}

func pairNEON(k func(a, b *float32, n int) float32, a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return k(&a[0], &b[0], len(a))
}

func normSqNEON(a []float32) float32 { return pairNEON(dotNEON, a, a) }

// dotNormPairNEON returns (a·b, |a|², |b|²) for cosFinish, given |a|² = na.
func dotNormPairNEON(a, b []float32, na float32) (dot, naOut, nb float32) {
	if len(a) == 0 {
		return 0, na, 0
	}
	dot, nb = dotNormNEON(&a[0], &b[0], len(a))
	return dot, na, nb
}

func halfPairNEON(k func(a, b *uint16, n int) float32, a, b []uint16) float32 {
	if len(a) == 0 {
		return 0
	}
	return k(&a[0], &b[0], len(a))
}

func cosHalfNEONSlice(a, b []uint16) float32 {
	if len(a) == 0 {
		return cosHalfGeneric(a, b)
	}
	return cosFinish(cosHalfNEON(&a[0], &b[0], len(a)))
}

func halfToFloat32NEONSlice(dst []float32, src []uint16) {
	if len(src) > 0 {
		halfToFloat32NEON(&dst[0], &src[0], len(src))
	}
}

func float32ToHalfNEONSlice(dst []uint16, src []float32) {
	if len(src) > 0 {
		float32ToHalfNEON(&dst[0], &src[0], len(src))
	}
}

// popChunk bounds one call of the NEON popcount kernels: each 4-word trip adds at most 32
// to a 16-bit lane, so 2,047 trips fit; 4,096 words is 1,024 trips. bit's limit, 64,000
// bits, is 1,000 words, so real codes take one call.
const popChunk = 4096

func jaccardNEONSlice(a, b []uint64) float32 { return jaccardBlocks(jaccardNEON, popChunk, 4, a, b) }

func hammingNEONSlice(a, b []uint64) int { return hammingBlocks(hammingNEON, popChunk, 4, a, b) }
