package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// SparseDotDense gives SparseDot's bits, whichever vector is denser, with indices past the
// dense array, with negative products that miss (adding -0), and with empty vectors.
func TestSparseDotDenseMatchesSparseDot(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 4))
	for trial := range 3000 {
		dim := 1 + r.IntN(3000)
		a := randSparse(r, dim, r.Float64()*0.2, 1+r.Float64()*100)
		b := randSparse(r, dim, r.Float64()*0.2, 1+r.Float64()*100)
		if trial%7 == 0 {
			b = sparseVec{} // empty
		}
		dense := a.dense(dim)
		if trial%3 == 0 && len(a.idx) > 0 {
			dense = dense[:a.idx[len(a.idx)-1]+1] // just covers a: b's later indices are past it
		}
		want := SparseDot(a.idx, a.vals, b.idx, b.vals)
		got := SparseDotDense(dense, b.idx, b.vals)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("trial %d: SparseDotDense %v (%#x), SparseDot %v (%#x)", trial, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	if got := SparseDotDense(nil, []int32{1, 5}, []float32{-1, 2}); math.Float32bits(got) != 0 {
		t.Fatalf("empty dense: %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("mismatched lengths did not panic")
		}
	}()
	SparseDotDense(make([]float32, 4), []int32{1, 2}, []float32{1})
}

func BenchmarkSparseDot100(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, y := randSparse(r, 30000, 100.0/30000, 1), randSparse(r, 30000, 100.0/30000, 1)
	dense := x.dense(30000)
	b.Run("merge", func(b *testing.B) {
		for b.Loop() {
			SparseDot(x.idx, x.vals, y.idx, y.vals)
		}
	})
	b.Run("dense", func(b *testing.B) {
		for b.Loop() {
			SparseDotDense(dense, y.idx, y.vals)
		}
	})
}

// The dense-query L2 and L1 (‖q‖² or Σ|q| plus the delta over b's non-zeros, in float64) agree
// with an exact float64 sum in index order to float64 rounding, and with the merge kernels to
// the merge's own float32 rounding; with empty vectors, b's indices past the dense array, and
// far-apart magnitudes (cancellation in (b-q)² - q²).
func TestSparseSumsDenseAgreeWithMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 5))
	for trial := range 3000 {
		dim := 1 + r.IntN(3000)
		a := randSparse(r, dim, r.Float64()*0.2, 1+r.Float64()*100)
		b := randSparse(r, dim, r.Float64()*0.2, math.Pow(10, r.Float64()*8-4))
		switch trial % 7 {
		case 0:
			b = sparseVec{}
		case 1:
			a = sparseVec{}
		case 2:
			b = a // identical: the distance is 0
		}
		dense := a.dense(dim)
		if trial%3 == 0 && len(a.idx) > 0 {
			dense = dense[:a.idx[len(a.idx)-1]+1]
		}
		var q2, q1 float64
		for _, v := range a.vals {
			q2 += float64(v) * float64(v)
			q1 += math.Abs(float64(v))
		}
		l2 := q2 + SparseSquaredL2DenseDelta(dense, b.idx, b.vals)
		l1 := q1 + SparseL1DenseDelta(dense, b.idx, b.vals)
		exact2 := inOrder64(a, b, dim, func(x, y float64) float64 { return (x - y) * (x - y) })
		exact1 := inOrder64(a, b, dim, func(x, y float64) float64 { return math.Abs(x - y) })
		scale2, scale1 := q2+inOrder64(b, sparseVec{}, dim, func(x, _ float64) float64 { return x * x }), q1+inOrder64(b, sparseVec{}, dim, func(x, _ float64) float64 { return math.Abs(x) })
		if math.Abs(l2-exact2) > 1e-12*scale2 || math.Abs(l1-exact1) > 1e-12*scale1 {
			t.Fatalf("trial %d: dense L2 %v L1 %v, exact %v %v", trial, l2, l1, exact2, exact1)
		}
		if trial%7 == 2 && (l2 > 1e-12*scale2 || l1 > 1e-12*scale1) {
			t.Fatalf("trial %d: identical vectors at L2 %v L1 %v", trial, l2, l1)
		}
		m2 := float64(SparseSquaredL2(a.idx, a.vals, b.idx, b.vals))
		m1 := float64(SparseL1(a.idx, a.vals, b.idx, b.vals))
		n := float64(len(a.idx) + len(b.idx) + 1)
		if math.Abs(m2-exact2) > n*1.2e-7*scale2 || math.Abs(m1-exact1) > 1.2e-7*scale1 {
			t.Fatalf("trial %d: merge L2 %v L1 %v, exact %v %v", trial, m2, m1, exact2, exact1)
		}
	}
	for _, f := range []func([]float32, []int32, []float32) float64{SparseSquaredL2DenseDelta, SparseL1DenseDelta} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("mismatched lengths did not panic")
				}
			}()
			f(make([]float32, 4), []int32{1, 2}, []float32{1})
		}()
	}
}

// inOrder64 sums term over the union of a's and b's indices in float64 (0 where one has none).
func inOrder64(a, b sparseVec, dim int, term func(x, y float64) float64) float64 {
	da, db := a.dense(dim), b.dense(dim)
	var s float64
	for i := range dim + 1 {
		if da[i] != 0 || db[i] != 0 {
			s += term(float64(da[i]), float64(db[i]))
		}
	}
	return s
}
