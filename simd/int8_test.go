package simd

import (
	"math/rand/v2"
	"testing"
)

func TestInt8KernelsAreExact(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for n := 0; n <= 1100; n++ {
			if n > 80 && n%16 != 0 && r.IntN(6) != 0 {
				continue
			}
			off := r.IntN(4)
			a := make([]int8, n+off)[off:]
			b := make([]int8, n)
			for i := range a {
				a[i], b[i] = int8(r.IntN(256)-128), int8(r.IntN(256)-128)
			}
			if n > 2 { // the extremes, where int16 intermediates would overflow
				a[0], b[0], a[1], b[1], a[2], b[2] = -128, -128, 127, -128, -128, 127
			}
			var dot, l2 int64
			for i := range a {
				dot += int64(a[i]) * int64(b[i])
				d := int64(a[i]) - int64(b[i])
				l2 += d * d
			}
			if got := DotInt8(a, b); int64(got) != dot {
				t.Fatalf("DotInt8 n=%d: got %d want %d", n, got, dot)
			}
			if got := SquaredL2Int8(a, b); int64(got) != l2 {
				t.Fatalf("SquaredL2Int8 n=%d: got %d want %d", n, got, l2)
			}
		}
	})
}

func TestInt8KernelsAtDocumentedLimits(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		n := 33024 // largest length for which SquaredL2Int8 is documented not to overflow
		a, b := make([]int8, n), make([]int8, n)
		for i := range a {
			a[i], b[i] = -128, 127
		}
		if got, want := SquaredL2Int8(a, b), int32(n*255*255); got != want {
			t.Fatalf("SquaredL2Int8 worst case: got %d want %d", got, want)
		}
		if got, want := DotInt8(a, a), int32(n*128*128); got != want {
			t.Fatalf("DotInt8 of -128s: got %d want %d", got, want)
		}
	})
}
