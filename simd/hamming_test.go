package simd

import (
	"math/rand/v2"
	"testing"
)

func TestHammingCountsDifferingBits(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for n := 0; n <= 70; n++ {
		a, b := make([]uint64, n), make([]uint64, n)
		want := 0
		for i := range a {
			a[i], b[i] = r.Uint64(), r.Uint64()
			for bit := 0; bit < 64; bit++ {
				if (a[i]>>bit)&1 != (b[i]>>bit)&1 {
					want++
				}
			}
		}
		if got := Hamming(a, b); got != want {
			t.Fatalf("n=%d: got %d want %d", n, got, want)
		}
		if got := Hamming(a, a); got != 0 {
			t.Fatalf("n=%d: distance to itself %d", n, got)
		}
	}
}

// Long inputs cross the NEON kernels' chunk of 4,096 words (where 16-bit lane counts are
// folded) and its 4-word blocks; all-ones words are the worst case for the lane counts.
func TestPopcountsAcrossChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{4095, 4096, 4097, 8192 + 7, 20000} {
			ones, zeros, half := make([]uint64, n), make([]uint64, n), make([]uint64, n)
			x, y := make([]uint64, n), make([]uint64, n)
			for i := range ones {
				ones[i], half[i] = ^uint64(0), 0xffffffff00000000
				x[i], y[i] = r.Uint64(), r.Uint64()
			}
			if got := Hamming(ones, zeros); got != 64*n {
				t.Fatalf("n=%d: Hamming(ones, zeros) = %d, want %d", n, got, 64*n)
			}
			if got := Jaccard(ones, ones); got != 0 {
				t.Fatalf("n=%d: Jaccard(ones, ones) = %g", n, got)
			}
			if got := Jaccard(half, ones); got != 0.5 {
				t.Fatalf("n=%d: Jaccard(half, ones) = %g", n, got)
			}
			if got, want := Hamming(x, y), hammingGeneric(x, y); got != want {
				t.Fatalf("n=%d: Hamming %d, generic %d", n, got, want)
			}
			if got, want := Jaccard(x, y), refJaccard(x, y); got != want {
				t.Fatalf("n=%d: Jaccard %g, reference %g", n, got, want)
			}
		}
	})
}
