package simd

import "math/bits"

// Jaccard returns the Jaccard distance 1 - |a∧b| / |a∨b| between two bit-packed sets, as
// pgvector's jaccard_distance (<%>): the ratio in float64, and 1 when the sets share no
// bit, which includes two empty sets (pgvector returns 1 there rather than 0 or NaN; it
// tests ab == 0 before dividing). The result is rounded to float32 once, at the end, so
// it orders as pgvector's float8 does (rounding is monotonic; it can only merge ties).
func Jaccard(a, b []uint64) float32 {
	samePair("Jaccard", len(a), len(b))
	return active.Load().jaccard(a, b)
}

// jaccardFinish is the float64 division shared by every path.
func jaccardFinish(ab, aa, bb int) float32 {
	if ab == 0 {
		return 1
	}
	return float32(1 - float64(ab)/float64(aa+bb-ab))
}

// jaccardGeneric counts |a∧b|, |a| and |b| (|a∨b| = |a| + |b| - |a∧b|); as in Hamming,
// math/bits.OnesCount64 is one POPCNT on amd64, and two counters per count keep the
// three chains independent.
func jaccardGeneric(a, b []uint64) float32 {
	var ab0, ab1, aa0, aa1, bb0, bb1 int
	for len(a) >= 2 && len(b) >= 2 {
		x, y := a[:2:2], b[:2:2]
		ab0 += bits.OnesCount64(x[0] & y[0])
		ab1 += bits.OnesCount64(x[1] & y[1])
		aa0 += bits.OnesCount64(x[0])
		aa1 += bits.OnesCount64(x[1])
		bb0 += bits.OnesCount64(y[0])
		bb1 += bits.OnesCount64(y[1])
		a, b = a[2:], b[2:]
	}
	b = b[:len(a)]
	for i := range a {
		ab0 += bits.OnesCount64(a[i] & b[i])
		aa0 += bits.OnesCount64(a[i])
		bb0 += bits.OnesCount64(b[i])
	}
	return jaccardFinish(ab0+ab1, aa0+aa1, bb0+bb1)
}
