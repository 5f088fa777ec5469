package simd

// Sparse vectors, pgvector's sparsevec, are passed as two parallel slices: the indices of
// the non-zero elements, strictly ascending, and their values. Every kernel merges the two
// index lists once, adding terms in ascending index order into one sum of the precision
// pgvector's sparsevec operators use, in their order. Products are rounded explicitly
// (float32(x*y)) so that no compiler fuses them into the sum (Go does on arm64): the
// result is the same on every architecture, and pgvector's to the last bit wherever its C
// compiler did not fuse multiply-adds either (it may, with -march=native on FMA machines).
//
// They are plain Go on every path: the work is a data-dependent merge (a compare and a
// branch per element, up to 1,000 non-zeros each), not arithmetic a vector unit helps with.
// A branchless merge (selects for the operands, conditional index advances) measured about
// 2x slower: it makes each step's loads wait on the previous step's compare, a latency
// chain that the branchy merge speculates past.
//
// Lengths of each index/value pair are checked (a mismatch panics); ascending order is the
// caller's to guarantee (pgvector's input function rejects unsorted or duplicate indices),
// and unsorted input gives a meaningless number, never an out-of-range read.

// SparseDot returns the inner product of two sparse vectors (sparsevec <#> is its negation).
func SparseDot(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	sparseShapes("SparseDot", ai, av, bi, bv)
	return sparseDot(ai, av, bi, bv)
}

func sparseDot(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	av, bv = av[:len(ai)], bv[:len(bi)]
	var s float32
	i, j := 0, 0
	for i < len(ai) && j < len(bi) {
		x, y := ai[i], bi[j]
		switch {
		case x == y:
			s += float32(av[i] * bv[j])
			i++
			j++
		case x < y:
			i++
		default:
			j++
		}
	}
	return s
}

// SparseSquaredL2 returns the squared Euclidean distance of two sparse vectors: (a-b)²
// where both have an index, a² or b² where only one does.
func SparseSquaredL2(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	sparseShapes("SparseSquaredL2", ai, av, bi, bv)
	av, bv = av[:len(ai)], bv[:len(bi)]
	var s float32
	i, j := 0, 0
	for i < len(ai) && j < len(bi) {
		x, y := ai[i], bi[j]
		switch {
		case x == y:
			d := av[i] - bv[j]
			s += float32(d * d)
			i++
			j++
		case x < y:
			s += float32(av[i] * av[i])
			i++
		default:
			s += float32(bv[j] * bv[j])
			j++
		}
	}
	for ; i < len(av); i++ {
		s += float32(av[i] * av[i])
	}
	for ; j < len(bv); j++ {
		s += float32(bv[j] * bv[j])
	}
	return s
}

// SparseL1 returns Σ|a_i - b_i| of two sparse vectors. Unlike the other sparse kernels it
// sums in float64 (and rounds once at the end), because pgvector's sparsevec <+> does.
func SparseL1(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	sparseShapes("SparseL1", ai, av, bi, bv)
	av, bv = av[:len(ai)], bv[:len(bi)]
	var s float64
	i, j := 0, 0
	for i < len(ai) && j < len(bi) {
		x, y := ai[i], bi[j]
		switch {
		case x == y:
			s += float64(abs32(av[i] - bv[j]))
			i++
			j++
		case x < y:
			s += float64(abs32(av[i]))
			i++
		default:
			s += float64(abs32(bv[j]))
			j++
		}
	}
	for ; i < len(av); i++ {
		s += float64(abs32(av[i]))
	}
	for ; j < len(bv); j++ {
		s += float64(abs32(bv[j]))
	}
	return float32(s)
}

// SparseCosineDistance returns 1 - cos(a, b) of two sparse vectors as CosineDistance does
// (sparsevec <=>): float32 sums, float64 division, clamped to [0, 2]; NaN if either vector
// has no non-zero element (or only zeros).
func SparseCosineDistance(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	sparseShapes("SparseCosineDistance", ai, av, bi, bv)
	return cosFinish(sparseDot(ai, av, bi, bv), SparseNormSq(av), SparseNormSq(bv))
}

// SparseNormSq returns the squared Euclidean norm of a sparse vector's values, summed in
// order; a caller scoring many vectors against one query computes the query's once.
func SparseNormSq(v []float32) float32 {
	var s float32
	for _, x := range v {
		s += float32(x * x)
	}
	return s
}

func sparseShapes(kernel string, ai []int32, av []float32, bi []int32, bv []float32) {
	if len(ai) != len(av) {
		panic(shapeError{kernel, "len(a indices) != len(a values)", len(ai), len(av)})
	}
	if len(bi) != len(bv) {
		panic(shapeError{kernel, "len(b indices) != len(b values)", len(bi), len(bv)})
	}
}
