package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkCodes asserts the quantizer's contract for one element: the code is in [-127, 127]
// and, for finite x within range, decodes to within half a step.
func checkCode(t *testing.T, x float32, code int8, scale float32) {
	t.Helper()
	if code < -127 {
		t.Fatalf("code %d for %g is below -127", code, x)
	}
	v := float64(x)
	switch {
	case math.IsNaN(v):
		if code != 0 {
			t.Fatalf("NaN quantized to %d, want 0", code)
		}
	case math.IsInf(v, 0):
		if want := int8(math.Copysign(127, v)); code != want {
			t.Fatalf("%g quantized to %d, want %d", v, code, want)
		}
	case scale == 0:
		if code != 0 {
			t.Fatalf("scale 0 but code %d", code)
		}
	case math.Abs(v) <= 127*float64(scale):
		if err := math.Abs(float64(code)*float64(scale) - v); err > float64(scale)*(0.5+1e-6) {
			t.Fatalf("%g -> %d*%g: error %g exceeds half a step", x, code, scale, err)
		}
	default: // beyond the scale's range (per-dimension scales from other samples): clamped
		if want := int8(math.Copysign(127, v)); code != want {
			t.Fatalf("%g beyond range quantized to %d, want %d", v, code, want)
		}
	}
}

func TestQuantizeInt8PerVector(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, mag := range []float64{1, 1e-40, 1e30} {
		for n := 0; n < 300; n += 7 {
			src := randVec(r, n, 0, mag)
			dst := make([]int8, n)
			scale := QuantizeInt8(dst, src)
			maxCode := 0
			for i, x := range src {
				checkCode(t, x, dst[i], scale)
				maxCode = max(maxCode, int(math.Abs(float64(dst[i]))))
			}
			if n > 0 && maxCode != 127 && scale != 0 {
				t.Fatalf("mag=%g n=%d: largest code %d, want the range used up to 127", mag, n, maxCode)
			}
		}
	}
	src := []float32{float32(math.NaN()), float32(math.Inf(-1)), 2, -1, 0}
	dst := make([]int8, len(src))
	scale := QuantizeInt8(dst, src)
	if scale != 2.0/127 {
		t.Fatalf("scale %g ignores non-finite values badly, want %g", scale, 2.0/127)
	}
	if want := []int8{0, -127, 127, -64, 0}; string(int8Bytes(dst)) != string(int8Bytes(want)) {
		t.Fatalf("codes %v want %v", dst, want)
	}
	if QuantizeInt8(dst, make([]float32, len(src))) != 0 || dst[2] != 0 {
		t.Fatalf("zero vector: scale or codes not zero: %v", dst)
	}
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

func TestQuantizeInt8PerDimension(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	dim, rows := 37, 50
	samples := make([]float32, dim*rows)
	for i := range samples {
		samples[i] = float32(r.NormFloat64() * float64(1+i%dim)) // each dimension its own spread
	}
	scale := make([]float32, dim)
	Int8Scales(samples, scale)
	for j := range scale {
		var m float64
		for i := 0; i < rows; i++ {
			m = math.Max(m, math.Abs(float64(samples[i*dim+j])))
		}
		if math.Abs(float64(scale[j])-m/127) > 1e-6*m {
			t.Fatalf("scale[%d] = %g, want %g", j, scale[j], m/127)
		}
	}
	dst := make([]int8, dim)
	for i := 0; i < rows; i++ {
		src := samples[i*dim : (i+1)*dim]
		QuantizeInt8PerDim(dst, src, scale)
		for j, x := range src {
			checkCode(t, x, dst[j], scale[j])
		}
	}
	out := []float32{1e9, -1e9, float32(math.NaN())}
	QuantizeInt8PerDim(dst[:3], out, scale[:3])
	if dst[0] != 127 || dst[1] != -127 || dst[2] != 0 {
		t.Fatalf("out-of-range values not clamped: %v", dst[:3])
	}
	expectPanic(t, "simd.Int8Scales", func() { Int8Scales(make([]float32, 5), make([]float32, 2)) })
}

func TestSignBits(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{0, 1, 63, 64, 65, 130, 1536} {
		src := randVec(r, n, 0, 1)
		if n > 2 {
			src[0], src[1] = 0, float32(math.NaN())
		}
		dst := make([]uint64, (n+63)/64)
		for i := range dst {
			dst[i] = ^uint64(0) // stale bits must be cleared
		}
		SignBits(dst, src)
		for i := 0; i < len(dst)*64; i++ {
			got := dst[i/64]>>(i%64)&1 == 1
			want := i < n && src[i] > 0
			if got != want {
				t.Fatalf("n=%d bit %d = %v, want %v", n, i, got, want)
			}
		}
	}
	expectPanic(t, "simd.SignBits", func() { SignBits(make([]uint64, 1), make([]float32, 65)) })
}
