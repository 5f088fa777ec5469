package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestL1MatchesFloat64Reference(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for n := 0; n <= 1100; n++ {
			if n > 80 && n%16 != 0 && r.IntN(6) != 0 {
				continue
			}
			for _, mag := range magnitudes {
				a, b := randVec(r, n, r.IntN(4), mag), randVec(r, n, r.IntN(4), mag)
				want, sa := refL1(a, b)
				if got := L1(a, b); !closeTo(got, want, tol(n, sa)) {
					t.Fatalf("L1 n=%d mag=%g: got %g want %g (tol %g)", n, mag, got, want, tol(n, sa))
				}
				if got := L1(a, a); got != 0 {
					t.Fatalf("L1 to itself n=%d: %g", n, got)
				}
			}
		}
	})
}

func TestL1SpecialValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 9, 31, 32, 33, 100} {
			for _, pos := range []int{0, n / 2, n - 1} {
				ones := make([]float32, n)
				for i := range ones {
					ones[i] = 1
				}
				a := append([]float32(nil), ones...)
				a[pos] = nan
				if got := L1(a, ones); !math.IsNaN(float64(got)) {
					t.Errorf("L1 with NaN (n=%d pos=%d) = %g", n, pos, got)
				}
				a[pos] = inf
				if got := L1(a, ones); !math.IsInf(float64(got), 1) {
					t.Errorf("L1 with +Inf = %g", got)
				}
				a[pos] = -inf
				if got := L1(a, ones); !math.IsInf(float64(got), 1) {
					t.Errorf("L1 with -Inf = %g, want +Inf", got)
				}
				b := append([]float32(nil), ones...)
				b[pos] = -inf
				if got := L1(a, b); !math.IsNaN(float64(got)) { // -Inf - -Inf
					t.Errorf("L1 Inf-Inf = %g", got)
				}
				neg := make([]float32, n)
				for i := range neg {
					neg[i] = -2
				}
				if got := L1(neg, ones); got != float32(3*n) {
					t.Errorf("L1(-2s, 1s) n=%d = %g, want %d (signs must not cancel)", n, got, 3*n)
				}
			}
		}
	})
}
