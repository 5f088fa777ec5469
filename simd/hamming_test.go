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
