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
