package simd

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// A prepared query must give CosineDistanceHalf's bits on every path: a search traverses
// with it and reports its distances, which SQL compares with the <=> operator's.
func TestCosineDistanceHalfQueryIsBitIdentical(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 17))
		var q HalfQuery
		lengths := []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 39, 40, 41, 63, 64, 65, 100, 768, 1536, 3071}
		for _, n := range lengths {
			for _, scale := range []float64{1e-6, 1, 300} { // subnormals, ordinary, large
				for range 20 {
					a, b := randHalves(r, n, r.IntN(3), scale), randHalves(r, n, r.IntN(3), scale)
					q.Set(a)
					if q.Len() != n {
						t.Fatalf("Len %d, want %d", q.Len(), n)
					}
					got, want := CosineDistanceHalfQuery(&q, b), CosineDistanceHalf(a, b)
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("n=%d scale=%g: prepared %v (%08x), CosineDistanceHalf %v (%08x)",
							n, scale, got, math.Float32bits(got), want, math.Float32bits(want))
					}
				}
			}
		}
		// The query is copied: reusing the caller's slice changes nothing.
		a, b := randHalves(r, 40, 0, 1), randHalves(r, 40, 0, 1)
		q.Set(a)
		want := CosineDistanceHalf(a, b)
		orig := slices.Clone(a)
		for i := range a {
			a[i] = 0x3c00
		}
		if got := CosineDistanceHalfQuery(&q, b); got != want {
			t.Fatalf("after the caller reused its slice: %v, want %v", got, want)
		}
		// Special values: NaN anywhere, a zero vector, the vector itself, an empty query.
		q.Set(orig)
		if got := CosineDistanceHalfQuery(&q, orig); got != CosineDistanceHalf(orig, orig) {
			t.Fatalf("to itself: %v", got)
		}
		withNaN := slices.Clone(b)
		withNaN[17] = 0x7e00
		if got := CosineDistanceHalfQuery(&q, withNaN); !math.IsNaN(float64(got)) {
			t.Fatalf("with NaN: %v", got)
		}
		q.Set(make([]uint16, 40))
		if got := CosineDistanceHalfQuery(&q, b); !math.IsNaN(float64(got)) {
			t.Fatalf("zero query: %v, want NaN", got)
		}
		q.Set(nil)
		if got := CosineDistanceHalfQuery(&q, nil); !math.IsNaN(float64(got)) {
			t.Fatalf("empty: %v, want NaN as CosineDistanceHalf", got)
		}
	})
}

func TestCosineDistanceHalfQueryLengthMismatchPanics(t *testing.T) {
	var q HalfQuery
	q.Set(make([]uint16, 8))
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a length mismatch")
		}
	}()
	CosineDistanceHalfQuery(&q, make([]uint16, 9))
}

// The prefetching form gives the same bits whatever it prefetches, and checks next's length.
func TestCosineDistanceHalfQueryNext(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(6, 18))
		var q HalfQuery
		for _, n := range []int{1, 8, 31, 32, 33, 100, 1536, 3071} {
			a, b, next := randHalves(r, n, 0, 1), randHalves(r, n, 0, 1), randHalves(r, n, 0, 1)
			q.Set(a)
			want := CosineDistanceHalf(a, b)
			for _, nx := range [][]uint16{next, b, a} {
				if got := CosineDistanceHalfQueryNext(&q, b, nx); math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("n=%d: %v (%08x), want %v (%08x)", n, got, math.Float32bits(got), want, math.Float32bits(want))
				}
			}
		}
		q.Set(nil)
		if got := CosineDistanceHalfQueryNext(&q, nil, nil); !math.IsNaN(float64(got)) {
			t.Fatalf("empty: %v, want NaN", got)
		}
		q.Set(randHalves(r, 16, 0, 1))
		defer func() {
			if recover() == nil {
				t.Fatal("a next of another length did not panic")
			}
		}()
		CosineDistanceHalfQueryNext(&q, randHalves(r, 16, 0, 1), randHalves(r, 15, 0, 1))
	})
}
