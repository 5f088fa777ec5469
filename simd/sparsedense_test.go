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
