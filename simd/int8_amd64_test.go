package simd

import (
	"math/rand/v2"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// The fast int8 dot kernel is exact whenever b has no -128 (a may hold it), and must say
// so; when b holds -128 it must report that it was not exact, so DotInt8 reruns the
// widening kernel. Both kernels are checked against int64 arithmetic.
func TestDotInt8MaddKernelContract(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3) {
		t.Skip("no AVX2")
	}
	r := rand.New(rand.NewPCG(9, 10))
	want := func(a, b []int8) int32 {
		var s int64
		for i := range a {
			s += int64(a[i]) * int64(b[i])
		}
		return int32(s)
	}
	for _, n := range []int{1, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 127, 128, 129, 160, 176, 1536, 3072, 33024} {
		a, b := make([]int8, n), make([]int8, n)
		for i := range a {
			a[i], b[i] = int8(r.IntN(256)-128), int8(r.IntN(255)-127) // b in [-127, 127]
		}
		got, exact := dotInt8MaddAVX2(&a[0], &b[0], n)
		if !exact || got != want(a, b) {
			t.Fatalf("n=%d, b in [-127, 127]: got %d exact=%v, want %d exact", n, got, exact, want(a, b))
		}
		// Worst cases of the int16 pair sums: 2*128*127 and -2*128*127.
		for i := range a {
			a[i], b[i] = -128, int8(127*(1-2*(i/2%2)))
		}
		if got, exact := dotInt8MaddAVX2(&a[0], &b[0], n); !exact || got != want(a, b) {
			t.Fatalf("n=%d, a=-128 extremes: got %d exact=%v, want %d", n, got, exact, want(a, b))
		}
		// One -128 in b, at each position class (vector body, 16-byte step, scalar tail).
		for _, pos := range []int{0, n / 2, n - 1} {
			for i := range a {
				a[i], b[i] = int8(r.IntN(256)-128), int8(r.IntN(255)-127)
			}
			a[pos], b[pos] = -5, -128
			got, exact := dotInt8MaddAVX2(&a[0], &b[0], n)
			tailOnly := n%16 != 0 && pos >= n-n%16 // the scalar tail is exact by itself
			if exact && (!tailOnly || got != want(a, b)) {
				t.Fatalf("n=%d: -128 at b[%d] reported exact, got %d want %d", n, pos, got, want(a, b))
			}
			if got := dotInt8WideAVX2(&a[0], &b[0], n); got != want(a, b) {
				t.Fatalf("n=%d: wide kernel got %d want %d", n, got, want(a, b))
			}
			if got := dotInt8AVX2(a, b); got != want(a, b) {
				t.Fatalf("n=%d: dotInt8AVX2 with -128 at b[%d] got %d want %d", n, pos, got, want(a, b))
			}
		}
	}
}
