package simd

// paths on arm64: NEON (Advanced SIMD), which every arm64 CPU has, so it is always
// supported. The assembly (kernels_arm64.s) is hand-written; avo does not target arm64.
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
	l2I8:     l2Int8Generic,
	l1:       l1Generic,
	fromHalf: halfToFloat32Generic,
	toHalf:   float32ToHalfGeneric,
	l2Half:   l2HalfGeneric,
	dotHalf:  dotHalfGeneric,
	l1Half:   l1HalfGeneric,
	cosHalf:  cosHalfGeneric,
	jaccard:  jaccardGeneric,
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
