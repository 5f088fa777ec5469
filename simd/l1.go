package simd

import "math"

// L1 returns the taxicab (Manhattan) distance Σ|a_i - b_i|, accumulated in float32 as
// pgvector's l1_distance (<+>) does.
//
// viterin/vek has this kernel (ManhattanDistance, AVX2) and ours is as fast from 384 dims
// (bench/results/simd.md). Ours is kept because it is the avo function that also writes
// L1Half (the element type is the only difference), it returns 0 for empty vectors where
// vek panics, and vek has no arm64 assembly, which NEON's FABD covers here.
func L1(a, b []float32) float32 {
	samePair("L1", len(a), len(b))
	return active.Load().l1(a, b)
}

func l1Generic(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 8 && len(b) >= 8 {
		x, y := a[:8:8], b[:8:8]
		s0 += abs32(x[0]-y[0]) + abs32(x[4]-y[4])
		s1 += abs32(x[1]-y[1]) + abs32(x[5]-y[5])
		s2 += abs32(x[2]-y[2]) + abs32(x[6]-y[6])
		s3 += abs32(x[3]-y[3]) + abs32(x[7]-y[7])
		a, b = a[8:], b[8:]
	}
	b = b[:len(a)]
	for i := range a {
		s0 += abs32(a[i] - b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// abs32 clears the sign bit: one AND, where float32(math.Abs(float64(x))) would convert
// twice. NaN stays NaN.
func abs32(x float32) float32 {
	return math.Float32frombits(math.Float32bits(x) &^ (1 << 31))
}
