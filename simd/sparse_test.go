package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

type sparseVec struct {
	idx  []int32
	vals []float32
}

// randSparse draws each index of [1, dim] with probability p, values in ±scale.
func randSparse(r *rand.Rand, dim int, p, scale float64) sparseVec {
	var s sparseVec
	for i := 1; i <= dim; i++ {
		if r.Float64() < p {
			s.idx = append(s.idx, int32(i))
			s.vals = append(s.vals, float32((r.Float64()*2-1)*scale))
		}
	}
	return s
}

func (s sparseVec) dense(dim int) []float32 {
	d := make([]float32, dim+1)
	for k, i := range s.idx {
		d[i] = s.vals[k]
	}
	return d
}

// inOrder is the sparse sum written the simplest way: walk every index of the dense forms
// in order and add the term where either vector has the index; the kernels must give
// exactly this (same order, same precision), and close to the float64 value.
func inOrder(a, b sparseVec, dim int, term func(x, y float32) float32) float32 {
	da, db := a.dense(dim), b.dense(dim)
	present := make([]bool, dim+1)
	for _, i := range a.idx {
		present[i] = true
	}
	for _, i := range b.idx {
		present[i] = true
	}
	var s float32
	for i := range da {
		if present[i] {
			s += term(da[i], db[i])
		}
	}
	return s
}

func checkSparse(t *testing.T, what string, a, b sparseVec, dim int) {
	t.Helper()
	da, db := a.dense(dim), b.dense(dim)
	dot := func(x, y float32) float32 { return float32(x * y) }
	l2 := func(x, y float32) float32 { d := x - y; return float32(d * d) }
	if got, want := SparseDot(a.idx, a.vals, b.idx, b.vals), inOrder(a, b, dim, dot); got != want {
		t.Fatalf("%s: SparseDot %g, in-order sum %g", what, got, want)
	}
	if got, want := SparseSquaredL2(a.idx, a.vals, b.idx, b.vals), inOrder(a, b, dim, l2); got != want {
		t.Fatalf("%s: SparseSquaredL2 %g, in-order sum %g", what, got, want)
	}
	want, sa := refDot(da, db)
	if got := SparseDot(a.idx, a.vals, b.idx, b.vals); !closeTo(got, want, tol(dim, sa)) {
		t.Fatalf("%s: SparseDot %g, float64 %g", what, got, want)
	}
	want, sa = refL2(da, db)
	if got := SparseSquaredL2(a.idx, a.vals, b.idx, b.vals); !closeTo(got, want, tol(dim, sa)) {
		t.Fatalf("%s: SparseSquaredL2 %g, float64 %g", what, got, want)
	}
	// L1 sums in float64 like pgvector: within one float32 rounding of the exact value.
	want, _ = refL1(da, db)
	if got := SparseL1(a.idx, a.vals, b.idx, b.vals); !closeTo(got, want, 2*u*want+float64(dim)*1e-16*want) {
		t.Fatalf("%s: SparseL1 %g, float64 %g", what, got, want)
	}
	gotCos := SparseCosineDistance(a.idx, a.vals, b.idx, b.vals)
	if len(a.idx) == 0 || len(b.idx) == 0 {
		if !math.IsNaN(float64(gotCos)) {
			t.Fatalf("%s: SparseCosineDistance with an empty vector = %g, want NaN", what, gotCos)
		}
	} else if wantCos := refCos(da, db); !closeTo(gotCos, wantCos, 4*float64(dim+8)*u) {
		t.Fatalf("%s: SparseCosineDistance %g, float64 %g", what, gotCos, wantCos)
	}
	// Every kernel is symmetric.
	if SparseDot(a.idx, a.vals, b.idx, b.vals) != SparseDot(b.idx, b.vals, a.idx, a.vals) ||
		SparseL1(a.idx, a.vals, b.idx, b.vals) != SparseL1(b.idx, b.vals, a.idx, a.vals) {
		t.Fatalf("%s: not symmetric", what)
	}
}

func TestSparseKernelsMatchDenseReference(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for trial := range 400 {
		dim := 1 + r.IntN(3000)
		pa, pb := r.Float64()*0.4, r.Float64()*0.4
		if trial%4 == 0 {
			pb = pa // same density: more overlap
		}
		a, b := randSparse(r, dim, pa, 1), randSparse(r, dim, pb, 1)
		checkSparse(t, "random", a, b, dim)
		checkSparse(t, "with itself", a, a, dim)
		if got := SparseSquaredL2(a.idx, a.vals, a.idx, a.vals); got != 0 {
			t.Fatalf("SparseSquaredL2 to itself = %g", got)
		}
	}
	// 1,000 non-zeros each (sparsevec's limit for an index), 100% overlap and interleaved.
	var full, evens, odds sparseVec
	for i := int32(1); i <= 2000; i++ {
		v := float32(i%7) - 3.5
		if i%2 == 0 {
			evens.idx, evens.vals = append(evens.idx, i), append(evens.vals, v)
		} else {
			odds.idx, odds.vals = append(odds.idx, i), append(odds.vals, v)
		}
		full.idx, full.vals = append(full.idx, i), append(full.vals, -v)
	}
	checkSparse(t, "interleaved", evens, odds, 2000)
	checkSparse(t, "subset", evens, full, 2000)
}

func TestSparseEdgeCases(t *testing.T) {
	empty := sparseVec{}
	a := sparseVec{[]int32{1, 5, 9}, []float32{1, -2, 3}}
	b := sparseVec{[]int32{2, 6, 10}, []float32{4, 5, -6}} // disjoint, interleaved
	c := sparseVec{[]int32{100, 200}, []float32{1, 1}}     // disjoint, all after a
	d := sparseVec{[]int32{5, 200}, []float32{2, 1}}       // one shared index
	for _, tc := range []struct {
		name             string
		x, y             sparseVec
		dot, l2, l1, cos float64
	}{
		{"both empty", empty, empty, 0, 0, 0, math.NaN()},
		{"one empty", a, empty, 0, 14, 6, math.NaN()},
		{"disjoint interleaved", a, b, 0, 14 + 77, 6 + 15, 1},
		{"disjoint after", a, c, 0, 16, 8, 1},
		{"one shared", a, d, -4, 1 + 16 + 9 + 1, 1 + 4 + 3 + 1, 1 - (-4 / math.Sqrt(14*5))},
	} {
		for _, swap := range []bool{false, true} {
			x, y := tc.x, tc.y
			if swap {
				x, y = y, x
			}
			if got := SparseDot(x.idx, x.vals, y.idx, y.vals); float64(got) != tc.dot {
				t.Errorf("%s: SparseDot %g want %g", tc.name, got, tc.dot)
			}
			if got := SparseSquaredL2(x.idx, x.vals, y.idx, y.vals); float64(got) != tc.l2 {
				t.Errorf("%s: SparseSquaredL2 %g want %g", tc.name, got, tc.l2)
			}
			if got := SparseL1(x.idx, x.vals, y.idx, y.vals); float64(got) != tc.l1 {
				t.Errorf("%s: SparseL1 %g want %g", tc.name, got, tc.l1)
			}
			if got := SparseCosineDistance(x.idx, x.vals, y.idx, y.vals); !closeTo(got, tc.cos, 1e-6) {
				t.Errorf("%s: SparseCosineDistance %g want %g", tc.name, got, tc.cos)
			}
		}
	}
	// Opposite vectors clamp at exactly 2, parallel ones at 0.
	neg := sparseVec{a.idx, []float32{-1, 2, -3}}
	if got := SparseCosineDistance(a.idx, a.vals, neg.idx, neg.vals); got != 2 {
		t.Errorf("opposite: %g want 2", got)
	}
	if got := SparseCosineDistance(a.idx, a.vals, a.idx, a.vals); got != 0 {
		t.Errorf("parallel: %g want 0", got)
	}
	if got := SparseNormSq(a.vals); got != 14 {
		t.Errorf("SparseNormSq %g", got)
	}
	expectPanic(t, "simd.SparseDot: len(a indices) != len(a values): 3 vs 2", func() {
		SparseDot(a.idx, a.vals[:2], b.idx, b.vals)
	})
	expectPanic(t, "simd.SparseL1: len(b indices) != len(b values)", func() {
		SparseL1(a.idx, a.vals, b.idx[:1], b.vals)
	})
	expectPanic(t, "simd.SparseSquaredL2", func() { SparseSquaredL2(nil, a.vals, nil, nil) })
	expectPanic(t, "simd.SparseCosineDistance", func() { SparseCosineDistance(a.idx, nil, nil, nil) })
}
