package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// Every test that touches a kernel runs once per path: the one forced by BOREALIS_SIMD if
// set (make test runs each path that way), else every path this CPU supports.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	names := Info().Available
	if os.Getenv(EnvVar) != "" {
		names = []string{Info().Path}
	}
	prev := Info().Path
	defer func() {
		if err := Select(prev); err != nil {
			t.Fatal(err)
		}
	}()
	for _, p := range names {
		if err := Select(p); err != nil {
			t.Fatal(err)
		}
		t.Run(p, f)
	}
}

// u is float32's unit roundoff. A sum of n products carries at most about n*u relative
// error against Σ|terms| (several accumulators only make it smaller); products that
// underflow lose at most one subnormal ulp each, hence the absolute n*2^-149 term.
const u = 1.0 / (1 << 24)

func tol(n int, sumAbs float64) float64 {
	return 2*float64(n+8)*u*sumAbs + float64(n+1)*math.Pow(2, -149)
}

func refDot(a, b []float32) (v, sumAbs float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		v += p
		sumAbs += math.Abs(p)
	}
	return v, sumAbs
}

func refL2(a, b []float32) (v, sumAbs float64) {
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		v += d * d
	}
	return v, v
}

func refCos(a, b []float32) float64 {
	d, _ := refDot(a, b)
	na, _ := refDot(a, a)
	nb, _ := refDot(b, b)
	s := d / math.Sqrt(na*nb)
	return 1 - math.Max(-1, math.Min(1, s))
}

func closeTo(got float32, want, tolerance float64) bool {
	g := float64(got)
	if math.IsNaN(want) || math.IsNaN(g) {
		return math.IsNaN(want) && math.IsNaN(g)
	}
	if math.IsInf(want, 0) || math.IsInf(g, 0) {
		return g == want
	}
	return math.Abs(g-want) <= tolerance
}

// randVec fills n values at the given magnitude with mixed signs, from a buffer offset by
// off elements so the kernels see every alignment.
func randVec(r *rand.Rand, n, off int, scale float64) []float32 {
	buf := make([]float32, n+off)
	for i := range buf {
		buf[i] = float32((r.Float64()*2 - 1) * scale)
	}
	return buf[off:]
}

var magnitudes = []float64{1, 1e-21, 1e17}

func TestPairKernelsMatchFloat64Reference(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for n := 0; n <= 1100; n++ {
			if n > 80 && n%16 != 0 && r.IntN(6) != 0 {
				continue // beyond 80 every remainder mod 16 is already covered; sample the rest
			}
			for _, mag := range magnitudes {
				a := randVec(r, n, r.IntN(4), mag)
				b := randVec(r, n, r.IntN(4), mag)
				want, sa := refDot(a, b)
				if got := Dot(a, b); !closeTo(got, want, tol(n, sa)) {
					t.Fatalf("Dot n=%d mag=%g: got %g want %g (tol %g)", n, mag, got, want, tol(n, sa))
				}
				want, sa = refL2(a, b)
				if got := SquaredL2(a, b); !closeTo(got, want, tol(n, sa)) {
					t.Fatalf("SquaredL2 n=%d mag=%g: got %g want %g", n, mag, got, want)
				}
				want, sa = refDot(a, a)
				if got := Norm(a); !closeTo(got, math.Sqrt(want), math.Sqrt(tol(n, sa))+2*u*math.Sqrt(want)) {
					t.Fatalf("Norm n=%d mag=%g: got %g want %g", n, mag, got, math.Sqrt(want))
				}
				if mag == 1 && n > 0 {
					// cos error is bounded by the relative error of the three sums,
					// since Σ|a_i b_i| ≤ |a||b| (Cauchy-Schwarz).
					if got, want := CosineDistance(a, b), refCos(a, b); !closeTo(got, want, 4*float64(n+8)*u) {
						t.Fatalf("CosineDistance n=%d: got %g want %g", n, got, want)
					}
				}
			}
		}
	})
}

func TestBatchAndGatherMatchReference(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, dim := range []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 100, 128, 129, 384, 1029} {
			rows := 1 + r.IntN(20)
			q := randVec(r, dim, r.IntN(4), 1)
			data := randVec(r, dim*rows, r.IntN(4), 1)
			idx := make([]uint32, 2*rows)
			for i := range idx {
				idx[i] = uint32(r.IntN(rows))
			}
			out := make([]float32, rows)
			gout := make([]float32, len(idx))
			row := func(i int) []float32 { return data[i*dim : (i+1)*dim] }
			check := func(name string, got []float32, ref func(i int) (float64, float64), rowOf func(i int) int) {
				t.Helper()
				for i, g := range got {
					w, sa := ref(rowOf(i))
					tl := tol(dim, sa)
					if strings.HasPrefix(name, "Cos") {
						tl = 4 * float64(dim+8) * u
					}
					if !closeTo(g, w, tl) {
						t.Fatalf("%s dim=%d row %d: got %g want %g", name, dim, i, g, w)
					}
				}
			}
			id := func(i int) int { return i }
			viaIdx := func(i int) int { return int(idx[i]) }
			dot := func(i int) (float64, float64) { return refDot(q, row(i)) }
			l2 := func(i int) (float64, float64) { return refL2(q, row(i)) }
			cos := func(i int) (float64, float64) { return refCos(q, row(i)), 0 }

			DotBatch(q, data, out)
			check("DotBatch", out, dot, id)
			SquaredL2Batch(q, data, out)
			check("SquaredL2Batch", out, l2, id)
			CosineDistanceBatch(q, data, out)
			check("CosineDistanceBatch", out, cos, id)
			DotGather(q, data, idx, gout)
			check("DotGather", gout, dot, viaIdx)
			SquaredL2Gather(q, data, idx, gout)
			check("SquaredL2Gather", gout, l2, viaIdx)
			CosineDistanceGather(q, data, idx, gout)
			check("CosineDistanceGather", gout, cos, viaIdx)
		}
	})
}

func TestBatchDoesNotWritePastOut(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		q := []float32{1, 2, 3}
		data := []float32{1, 1, 1, 2, 2, 2}
		buf := []float32{-7, -7, -7, -7}
		DotBatch(q, data, buf[1:3])
		SquaredL2Gather(q, data, []uint32{1}, buf[1:2])
		if buf[0] != -7 || buf[3] != -7 || buf[1] != 2 || buf[2] != 12 {
			t.Fatalf("out = %v, want [-7 2 12 -7]", buf)
		}
	})
}

func TestIEEESpecialValuesPropagate(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 16, 33, 100} {
			for _, pos := range []int{0, n / 2, n - 1} { // vector body and scalar tail
				ones := make([]float32, n)
				for i := range ones {
					ones[i] = 1
				}
				a := append([]float32(nil), ones...)
				a[pos] = nan
				if got := Dot(a, ones); !math.IsNaN(float64(got)) {
					t.Errorf("Dot with NaN (n=%d pos=%d) = %g", n, pos, got)
				}
				if got := SquaredL2(a, ones); !math.IsNaN(float64(got)) {
					t.Errorf("SquaredL2 with NaN = %g", got)
				}
				if got := CosineDistance(a, ones); !math.IsNaN(float64(got)) {
					t.Errorf("CosineDistance with NaN = %g", got)
				}
				a[pos] = inf
				if got := Dot(a, ones); !math.IsInf(float64(got), 1) {
					t.Errorf("Dot with +Inf (n=%d pos=%d) = %g", n, pos, got)
				}
				if got := SquaredL2(a, ones); !math.IsInf(float64(got), 1) {
					t.Errorf("SquaredL2 with +Inf = %g", got)
				}
				b := append([]float32(nil), ones...)
				b[pos] = 0
				if got := Dot(a, b); !math.IsNaN(float64(got)) { // Inf*0
					t.Errorf("Dot Inf*0 = %g", got)
				}
				b[pos] = inf
				if got := SquaredL2(a, b); !math.IsNaN(float64(got)) { // Inf-Inf
					t.Errorf("SquaredL2 Inf-Inf = %g", got)
				}
				big := make([]float32, n)
				for i := range big {
					big[i] = 3e38
				}
				if got := SquaredL2(big, make([]float32, n)); !math.IsInf(float64(got), 1) {
					t.Errorf("SquaredL2 overflow = %g, want +Inf", got)
				}
				zero := make([]float32, n)
				out := make([]float32, 1)
				if got := CosineDistance(zero, ones); !math.IsNaN(float64(got)) {
					t.Errorf("CosineDistance of zero vector = %g, want NaN", got)
				}
				CosineDistanceBatch(ones, zero, out)
				if !math.IsNaN(float64(out[0])) {
					t.Errorf("CosineDistanceBatch of zero row = %g, want NaN", out[0])
				}
				CosineDistanceGather(zero, ones, []uint32{0}, out)
				if !math.IsNaN(float64(out[0])) {
					t.Errorf("CosineDistanceGather of zero query = %g, want NaN", out[0])
				}
			}
		}
	})
}

func TestCosineDistanceExtremesAndClamp(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range []int{1, 5, 16, 300} {
			a := randVec(r, n, 0, 10)
			neg := make([]float32, n)
			scaled := make([]float32, n)
			for i, x := range a {
				neg[i], scaled[i] = -x, 3*x
			}
			if d := CosineDistance(a, scaled); d < 0 || d > 1e-6 {
				t.Errorf("n=%d: distance to a positive multiple = %g, want ~0 and never negative", n, d)
			}
			if d := CosineDistance(a, neg); d > 2 || d < 2-1e-6 {
				t.Errorf("n=%d: distance to the negation = %g, want ~2 and never above", n, d)
			}
		}
	})
}

// Parallel and opposite vectors in float32 often round to |similarity| slightly above 1;
// many random ones make sure the clamp (a branch on the avx2 single-pair path) is taken
// both ways and holds exactly at 0 and 2.
func TestCosineDistanceClampOnManyParallelPairs(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for trial := range 3000 {
			n := 1 + r.IntN(200)
			a := randVec(r, n, 0, 1+r.Float64()*100)
			k := float32(0.1 + r.Float64()*10)
			same, opp := make([]float32, n), make([]float32, n)
			for i, x := range a {
				same[i], opp[i] = k*x, -k*x
			}
			if d := CosineDistance(a, same); !(d >= 0 && d < 1e-5) {
				t.Fatalf("trial %d n=%d: distance to a positive multiple = %g", trial, n, d)
			}
			if d := CosineDistance(a, opp); !(d <= 2 && d > 2-1e-5) {
				t.Fatalf("trial %d n=%d: distance to a negative multiple = %g", trial, n, d)
			}
		}
	})
}

func expectPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q does not mention %q", msg, want)
		}
	}()
	f()
}

func TestShapeErrorsPanicClearly(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		a, b := make([]float32, 4), make([]float32, 5)
		out := make([]float32, 2)
		expectPanic(t, "simd.Dot: length mismatch: 4 vs 5", func() { Dot(a, b) })
		expectPanic(t, "simd.SquaredL2: length mismatch", func() { SquaredL2(a, b) })
		expectPanic(t, "simd.CosineDistance: length mismatch", func() { CosineDistance(a, b) })
		expectPanic(t, "simd.DotBatch: len(data) != len(q)*len(out)", func() { DotBatch(a, b, out) })
		expectPanic(t, "simd.SquaredL2Batch", func() { SquaredL2Batch(a, make([]float32, 12), out) })
		expectPanic(t, "simd.CosineDistanceBatch", func() { CosineDistanceBatch(a, b, out) })
		expectPanic(t, "simd.DotGather: len(rows) != len(out)", func() { DotGather(a, b, []uint32{0}, out) })
		expectPanic(t, "row index out of range of slab (got, rows): 2 vs 2", func() {
			SquaredL2Gather(a, make([]float32, 9), []uint32{0, 2}, out)
		})
		expectPanic(t, "simd.CosineDistanceGather", func() { CosineDistanceGather(a, b, []uint32{1, 1}, out) })
		expectPanic(t, "simd.DotInt8: length mismatch", func() { DotInt8(make([]int8, 3), make([]int8, 2)) })
		expectPanic(t, "simd.SquaredL2Int8", func() { SquaredL2Int8(make([]int8, 3), nil) })
		expectPanic(t, "simd.Hamming", func() { Hamming(make([]uint64, 3), nil) })
		expectPanic(t, "simd.Jaccard: length mismatch: 3 vs 0", func() { Jaccard(make([]uint64, 3), nil) })
		expectPanic(t, "simd.L1: length mismatch: 4 vs 5", func() { L1(a, b) })
		h4, h5 := make([]uint16, 4), make([]uint16, 5)
		expectPanic(t, "simd.HalfToFloat32: length mismatch: 5 vs 4", func() { HalfToFloat32(b, h4) })
		expectPanic(t, "simd.Float32ToHalf: length mismatch: 5 vs 4", func() { Float32ToHalf(h5, a) })
		expectPanic(t, "simd.SquaredL2Half: length mismatch", func() { SquaredL2Half(h4, h5) })
		expectPanic(t, "simd.DotHalf: length mismatch", func() { DotHalf(h4, h5) })
		expectPanic(t, "simd.L1Half: length mismatch", func() { L1Half(h4, h5) })
		expectPanic(t, "simd.CosineDistanceHalf: length mismatch", func() { CosineDistanceHalf(h4, h5) })
	})
}

func TestKernelsDoNotAllocate(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		q, data := make([]float32, 100), make([]float32, 1000)
		out, rows := make([]float32, 10), []uint32{9, 0, 3}
		i8 := make([]int8, 100)
		h, bits, si := make([]uint16, 100), make([]uint64, 24), []int32{1, 4, 7}
		allocs := testing.AllocsPerRun(20, func() {
			Dot(q, q)
			SquaredL2(q, q)
			CosineDistance(q, q)
			Norm(q)
			DotBatch(q, data, out)
			SquaredL2Batch(q, data, out)
			CosineDistanceBatch(q, data, out)
			DotGather(q, data, rows, out[:3])
			SquaredL2Gather(q, data, rows, out[:3])
			CosineDistanceGather(q, data, rows, out[:3])
			DotInt8(i8, i8)
			SquaredL2Int8(i8, i8)
			L1(q, q)
			HalfToFloat32(q, h)
			Float32ToHalf(h, q)
			SquaredL2Half(h, h)
			DotHalf(h, h)
			L1Half(h, h)
			CosineDistanceHalf(h, h)
			Hamming(bits, bits)
			Jaccard(bits, bits)
			SparseDot(si, q[:3], si, q[:3])
			SparseSquaredL2(si, q[:3], si, q[:3])
			SparseL1(si, q[:3], si, q[:3])
			SparseCosineDistance(si, q[:3], si, q[:3])
		})
		if allocs != 0 {
			t.Fatalf("kernels allocated %v times per run", allocs)
		}
	})
}
