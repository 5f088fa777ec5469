package simd

// SparseDotDense is SparseDot with the first vector scattered into a dense array: dense[i] is
// its value at index i (0 where it has none; indices at or past len(dense) count as 0). A
// search compares one query with many stored vectors, so it scatters the query once and each
// comparison is one pass over the stored vector's non-zeros, a load from dense each, with no
// merge and no data-dependent branch but the bounds check (always taken once dense covers the
// vocabulary). Products that miss the query add ±0, which leaves the sum as it is, and matches
// are added in ascending index order as SparseDot adds them: the result is SparseDot's to the
// last bit.
func SparseDotDense(dense []float32, bi []int32, bv []float32) float32 {
	if len(bi) != len(bv) {
		panic(shapeError{"SparseDotDense", "len(b indices) != len(b values)", len(bi), len(bv)})
	}
	var s float32
	n := uint32(len(dense))
	for k, i := range bi {
		if uint32(i) < n {
			s += float32(dense[i] * bv[k])
		}
	}
	return s
}

// SparseSquaredL2DenseDelta and SparseL1DenseDelta are the parts of a sparse squared L2 and L1
// distance that depend on the stored vector b, with the query scattered into dense as for
// SparseDotDense: the distance is ‖q‖² + SparseSquaredL2DenseDelta (Σ|q_i| + SparseL1DenseDelta
// for L1), since every index b has replaces the query's own term by the pair's. That needs
// no merge with the query's index list, only one pass over b's non-zeros. The sums run in
// float64 over products that are exact there (float32 operands), so the distance is within
// float64 rounding of the true value, closer than the float32 merge (SparseSquaredL2) gets,
// but not its bits: a search walks the graph with it and rescores what it returns with the
// merge (hnsw sparsequery.go), so every distance a caller sees is the merge's.
func SparseSquaredL2DenseDelta(dense []float32, bi []int32, bv []float32) float64 {
	if len(bi) != len(bv) {
		panic(shapeError{"SparseSquaredL2DenseDelta", "len(b indices) != len(b values)", len(bi), len(bv)})
	}
	var s float64
	n := uint32(len(dense))
	for k, i := range bi {
		b := float64(bv[k])
		if uint32(i) < n {
			q := float64(dense[i])
			s += b * (b - 2*q) // (b-q)² - q²
		} else {
			s += b * b
		}
	}
	return s
}

// SparseL1DenseDelta: see SparseSquaredL2DenseDelta.
func SparseL1DenseDelta(dense []float32, bi []int32, bv []float32) float64 {
	if len(bi) != len(bv) {
		panic(shapeError{"SparseL1DenseDelta", "len(b indices) != len(b values)", len(bi), len(bv)})
	}
	var s float64
	n := uint32(len(dense))
	for k, i := range bi {
		b := float64(bv[k])
		if uint32(i) < n {
			q := float64(dense[i])
			s += abs64(b-q) - abs64(q)
		} else {
			s += abs64(b)
		}
	}
	return s
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
