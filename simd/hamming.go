package simd

import "math/bits"

// Hamming returns the number of differing bits between two bit-packed vectors.
//
// On amd64 it is plain Go: math/bits.OnesCount64 compiles to POPCNT, and with four
// independent counters the loop runs at the one-popcount-per-cycle limit; binary codes are
// tens of words (1,536 dims = 24 words), too short for a vector popcount to pay back its
// setup. On arm64 OnesCount64 is a round trip through a vector register per word (FMOV,
// CNT, UADDLV, FMOV), so NEON counts 32 bytes per CNT pair instead (hammingNEON).
func Hamming(a, b []uint64) int {
	samePair("Hamming", len(a), len(b))
	return active.Load().hamming(a, b)
}

func hammingGeneric(a, b []uint64) int {
	var c0, c1, c2, c3 int
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		c0 += bits.OnesCount64(x[0] ^ y[0])
		c1 += bits.OnesCount64(x[1] ^ y[1])
		c2 += bits.OnesCount64(x[2] ^ y[2])
		c3 += bits.OnesCount64(x[3] ^ y[3])
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		c0 += bits.OnesCount64(a[i] ^ b[i])
	}
	return c0 + c1 + c2 + c3
}
