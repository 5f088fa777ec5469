package simd

import "math/bits"

// jaccardBlocks and hammingBlocks run a vector popcount kernel, which takes whole 4-word
// blocks, over at most chunk words per call (the NEON kernels count in 16-bit lanes), and
// count the last 0-3 words in Go; inputs shorter than minWords are counted in Go
// entirely (one call less than handing them to the generic kernel).

func jaccardBlocks(k func(a, b *uint64, n int) (inter, union int), chunk, minWords int, a, b []uint64) float32 {
	b = b[:len(a)]
	var inter, union int
	for len(a) >= 4 && len(a) >= minWords {
		n := min(len(a), chunk) &^ 3
		i, u := k(&a[0], &b[0], n)
		inter, union = inter+i, union+u
		a, b = a[n:], b[n:]
	}
	for i := range a {
		inter += bits.OnesCount64(a[i] & b[i])
		union += bits.OnesCount64(a[i] | b[i])
	}
	return jaccardFinish(inter, union)
}

func hammingBlocks(k func(a, b *uint64, n int) int, chunk, minWords int, a, b []uint64) int {
	b = b[:len(a)]
	d := 0
	for len(a) >= 4 && len(a) >= minWords {
		n := min(len(a), chunk) &^ 3
		d += k(&a[0], &b[0], n)
		a, b = a[n:], b[n:]
	}
	for i := range a {
		d += bits.OnesCount64(a[i] ^ b[i])
	}
	return d
}
