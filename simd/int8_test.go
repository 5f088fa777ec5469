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

func TestDotInt8GatherMatchesPairs(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for dim := 0; dim <= 200; dim++ {
			if dim > 130 && dim%32 != 0 && r.IntN(4) != 0 {
				continue
			}
			rows := 1 + r.IntN(9)
			q := make([]int8, dim)
			slab := make([]int8, dim*rows)
			for i := range q {
				q[i] = int8(r.IntN(256) - 128)
			}
			for i := range slab {
				slab[i] = int8(r.IntN(256) - 128)
			}
			if dim > 0 {
				q[0], slab[0] = -128, -128 // the value VPMADDUBSW cannot take: exact here
			}
			idx := make([]uint32, 2*rows)
			for i := range idx {
				idx[i] = uint32(r.IntN(rows))
			}
			out := make([]int32, len(idx))
			DotInt8Gather(q, slab, idx, out)
			for i, row := range idx {
				if want := dotInt8Generic(q, slab[int(row)*dim:int(row+1)*dim]); out[i] != want {
					t.Fatalf("dim %d row %d: %d, want %d", dim, row, out[i], want)
				}
			}
		}
	})
}
