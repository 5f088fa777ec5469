package simd

import (
	"math/rand/v2"
	"testing"
)

// refJaccard counts bit by bit and divides in float64, with pgvector's rule that sets
// sharing no bit (two empty sets included) are at distance 1.
func refJaccard(a, b []uint64) float32 {
	var inter, union int
	for i := range a {
		for bit := 0; bit < 64; bit++ {
			x, y := a[i]>>bit&1, b[i]>>bit&1
			if x&y == 1 {
				inter++
			}
			if x|y == 1 {
				union++
			}
		}
	}
	if inter == 0 {
		return 1
	}
	return float32(1 - float64(inter)/float64(union))
}

func TestJaccardMatchesBitCountReference(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for n := 0; n <= 140; n++ {
			for _, density := range []int{0, 1, 8, 32, 63} { // set bits per 64, roughly
				a, b := make([]uint64, n+1)[1:], make([]uint64, n) // a misaligned by a word
				for i := range a {
					for range density {
						a[i] |= 1 << r.IntN(64)
						b[i] |= 1 << r.IntN(64)
					}
				}
				if got, want := Jaccard(a, b), refJaccard(a, b); got != want {
					t.Fatalf("n=%d density=%d: got %g want %g", n, density, got, want)
				}
				if got, want := Jaccard(a, a), refJaccard(a, a); got != want || (density > 0 && n > 0 && got != 0) {
					t.Fatalf("n=%d: distance to itself %g (reference %g)", n, got, want)
				}
			}
		}
	})
}

func TestJaccardEdgeCasesAsPgvector(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 3, 4, 5, 16, 33} {
			empty := make([]uint64, n)
			full := make([]uint64, n)
			half := make([]uint64, n)
			for i := range full {
				full[i], half[i] = ^uint64(0), 0x00000000ffffffff
			}
			// Two empty sets: pgvector returns 1 (it tests |a∧b| == 0 before dividing).
			if got := Jaccard(empty, empty); got != 1 {
				t.Errorf("n=%d: two empty sets = %g, want 1", n, got)
			}
			if got := Jaccard(empty, full); got != 1 {
				t.Errorf("n=%d: empty vs full = %g, want 1", n, got)
			}
			if n == 0 {
				continue
			}
			if got := Jaccard(full, full); got != 0 {
				t.Errorf("n=%d: full vs full = %g", n, got)
			}
			if got := Jaccard(half, full); got != 0.5 {
				t.Errorf("n=%d: half vs full = %g, want 0.5", n, got)
			}
			disjoint := make([]uint64, n)
			for i := range disjoint {
				disjoint[i] = ^half[i]
			}
			if got := Jaccard(half, disjoint); got != 1 {
				t.Errorf("n=%d: disjoint = %g, want 1", n, got)
			}
		}
		// One shared bit out of 64,000 (bit's index limit): 1 - 1/64000 in float64, then float32.
		a, b := make([]uint64, 1000), make([]uint64, 1000)
		for i := range a {
			a[i] = ^uint64(0)
		}
		b[999] = 1 << 63
		if got, want := Jaccard(a, b), float32(1-1.0/64000); got != want {
			t.Errorf("1 of 64000: got %g want %g", got, want)
		}
	})
}
