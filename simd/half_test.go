package simd

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refHalf decodes binary16 from its definition, in float64: (-1)^s · 2^(e-15) · 1.f for
// normal numbers, 2^-14 · 0.f for subnormals.
func refHalf(h uint16) float64 {
	s, e, f := h>>15, int(h>>10)&0x1f, float64(h&0x3ff)
	var v float64
	switch {
	case e == 31 && f == 0:
		v = math.Inf(1)
	case e == 31:
		v = math.NaN()
	case e == 0:
		v = math.Ldexp(f, -24)
	default:
		v = math.Ldexp(1024+f, e-25)
	}
	if s == 1 {
		v = math.Copysign(v, -1)
	}
	return v
}

func allHalves() []uint16 {
	hs := make([]uint16, 1<<16)
	for i := range hs {
		hs[i] = uint16(i)
	}
	return hs
}

func TestHalfToFloat32IsExactForAll65536Values(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, off := range []int{0, 1, 3} { // every alignment of the vector body
			hs := allHalves()[off:]
			got := make([]float32, len(hs))
			HalfToFloat32(got, hs)
			for i, h := range hs {
				want := refHalf(h)
				g := got[i]
				if math.IsNaN(want) {
					// Sign and payload kept, quiet bit set (as F16C and ARM FCVT do).
					wantBits := uint32(h&0x8000)<<16 | 0x7fc00000 | uint32(h&0x3ff)<<13
					if math.Float32bits(g) != wantBits {
						t.Fatalf("h=%#04x: got bits %#08x want %#08x", h, math.Float32bits(g), wantBits)
					}
					continue
				}
				if float64(g) != want || math.Signbit(float64(g)) != math.Signbit(want) {
					t.Fatalf("h=%#04x: got %g want %g", h, g, want)
				}
			}
		}
	})
}

// sortedHalves is every finite non-negative half (0x0000..0x7bff), in increasing order,
// as float64: the reference rounding searches it.
func sortedHalves() []float64 {
	out := make([]float64, 0x7c00)
	for h := range out {
		out[h] = refHalf(uint16(h))
	}
	return out
}

// refToHalf rounds x to the nearest half by search, ties to the even code, overflow to Inf
// by IEEE's rule (|x| >= 65520, the midpoint between 65504 and the next power 65536).
func refToHalf(table []float64, x float32) uint16 {
	v := float64(x)
	var sign uint16
	if math.Signbit(v) {
		sign, v = 0x8000, -v
	}
	if math.IsNaN(v) {
		return sign | 0x7e00 | uint16(math.Float32bits(x)>>13)&0x3ff
	}
	if v >= 65520 {
		return sign | 0x7c00
	}
	// 65536 stands where code 0x7c00 (Inf) would be if the exponent went on.
	i, _ := slices.BinarySearch(table, v) // table[i-1] < v <= table[i]
	hi := 65536.0
	if i < len(table) {
		hi = table[i]
	}
	if i < len(table) && table[i] == v {
		return sign | uint16(i)
	}
	lo := table[i-1]
	switch {
	case v-lo < hi-v:
		return sign | uint16(i-1)
	case v-lo > hi-v:
		return sign | uint16(i)
	case (i-1)%2 == 0:
		return sign | uint16(i-1)
	}
	return sign | uint16(i)
}

func TestFloat32ToHalfRoundsToNearestEven(t *testing.T) {
	table := sortedHalves()
	forEachPath(t, func(t *testing.T) {
		conv := func(xs []float32) []uint16 {
			out := make([]uint16, len(xs))
			Float32ToHalf(out, xs)
			return out
		}
		// Every half survives the round trip (NaNs come back quiet).
		hs := allHalves()
		fs := make([]float32, len(hs))
		HalfToFloat32(fs, hs)
		for i, got := range conv(fs) {
			want := hs[i]
			if want&0x7c00 == 0x7c00 && want&0x3ff != 0 {
				want |= 0x200
			}
			if got != want {
				t.Fatalf("round trip of %#04x gave %#04x", hs[i], got)
			}
		}
		// Each midpoint between neighbours goes to the even one, and the floats just
		// either side of it to the nearer one; both signs, subnormals and the top included.
		var xs []float32
		var want []uint16
		for h := 0; h < 0x7c00; h++ {
			next := math.Inf(1)
			if h+1 < 0x7c00 {
				next = table[h+1]
			} else {
				next = 65536 // where Inf would sit if the exponent went on
			}
			mid := float32((table[h] + next) / 2) // exact: 12 significant bits
			even := uint16(h)
			if h%2 == 1 {
				even = uint16(h + 1)
			}
			below := math.Nextafter32(mid, 0)
			above := math.Nextafter32(mid, float32(math.Inf(1)))
			for _, s := range []float32{1, -1} {
				sb := uint16(0)
				if s < 0 {
					sb = 0x8000
				}
				xs = append(xs, s*mid, s*below, s*above)
				want = append(want, sb|even, sb|uint16(h), sb|uint16(h+1))
			}
		}
		for i, got := range conv(xs) {
			if got != want[i] {
				t.Fatalf("Float32ToHalf(%g) = %#04x, want %#04x", xs[i], got, want[i])
			}
		}
		// Random float32 bit patterns of every exponent, against the search.
		r := rand.New(rand.NewPCG(21, 22))
		xs = xs[:0]
		for range 100_000 {
			xs = append(xs, math.Float32frombits(r.Uint32()))
		}
		for range 100_000 { // concentrated where halves live
			xs = append(xs, float32(math.Ldexp(r.Float64()*2-1, r.IntN(44)-28)))
		}
		xs = append(xs, 0, float32(math.Copysign(0, -1)), 65504, 65519.996, 65520, 1e30,
			float32(math.Inf(1)), float32(math.Inf(-1)), 0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1p-26,
			0x1.ffcp-15, 0x1.ffep-15, 0x1p-14, math.SmallestNonzeroFloat32)
		for i, got := range conv(xs) {
			if want := refToHalf(table, xs[i]); got != want {
				t.Fatalf("Float32ToHalf(%g, bits %#08x) = %#04x, want %#04x", xs[i], math.Float32bits(xs[i]), got, want)
			}
		}
	})
}

// randHalves returns n halves of values in ±scale (rounded from float64), from a buffer
// offset by off so every alignment is seen.
func randHalves(r *rand.Rand, n, off int, scale float64) []uint16 {
	buf := make([]uint16, n+off)
	for i := range buf {
		buf[i] = f2h(float32((r.Float64()*2 - 1) * scale))
	}
	return buf[off:]
}

func decodeHalves(h []uint16) []float32 {
	out := make([]float32, len(h))
	for i := range h {
		out[i] = float32(refHalf(h[i]))
	}
	return out
}

func refL1(a, b []float32) (v, sumAbs float64) {
	for i := range a {
		v += math.Abs(float64(a[i]) - float64(b[i]))
	}
	return v, v
}

func TestHalfDistancesMatchFloat64Reference(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for n := 0; n <= 600; n++ {
			if n > 70 && r.IntN(8) != 0 {
				continue
			}
			for _, mag := range []float64{1, 1e-4, 6e4 / math.Sqrt(float64(n+1))} {
				ha, hb := randHalves(r, n, r.IntN(4), mag), randHalves(r, n, r.IntN(4), mag)
				a, b := decodeHalves(ha), decodeHalves(hb)
				want, sa := refDot(a, b)
				if got := DotHalf(ha, hb); !closeTo(got, want, tol(n, sa)) {
					t.Fatalf("DotHalf n=%d mag=%g: got %g want %g", n, mag, got, want)
				}
				want, sa = refL2(a, b)
				if got := SquaredL2Half(ha, hb); !closeTo(got, want, tol(n, sa)) {
					t.Fatalf("SquaredL2Half n=%d mag=%g: got %g want %g", n, mag, got, want)
				}
				want, sa = refL1(a, b)
				if got := L1Half(ha, hb); !closeTo(got, want, tol(n, sa)) {
					t.Fatalf("L1Half n=%d mag=%g: got %g want %g", n, mag, got, want)
				}
				if n > 0 && mag == 1 {
					if got, want := CosineDistanceHalf(ha, hb), refCos(a, b); !closeTo(got, want, 4*float64(n+8)*u) {
						t.Fatalf("CosineDistanceHalf n=%d: got %g want %g", n, got, want)
					}
				}
			}
		}
	})
}

func TestHalfDistancesSpecialValues(t *testing.T) {
	const one, nan, inf, zero = 0x3c00, 0x7e00, 0x7c00, 0x0000
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 9, 16, 17, 40} {
			for _, pos := range []int{0, n / 2, n - 1} {
				ones := slices.Repeat([]uint16{one}, n)
				a := slices.Clone(ones)
				a[pos] = nan
				for name, k := range map[string]func(a, b []uint16) float32{
					"DotHalf": DotHalf, "SquaredL2Half": SquaredL2Half, "L1Half": L1Half, "CosineDistanceHalf": CosineDistanceHalf,
				} {
					if got := k(a, ones); !math.IsNaN(float64(got)) {
						t.Errorf("%s with NaN (n=%d pos=%d) = %g", name, n, pos, got)
					}
				}
				a[pos] = inf
				if got := SquaredL2Half(a, ones); !math.IsInf(float64(got), 1) {
					t.Errorf("SquaredL2Half with Inf = %g", got)
				}
				if got := L1Half(a, ones); !math.IsInf(float64(got), 1) {
					t.Errorf("L1Half with Inf = %g", got)
				}
				if got := DotHalf(a, ones); !math.IsInf(float64(got), 1) {
					t.Errorf("DotHalf with Inf = %g", got)
				}
				zeros := slices.Repeat([]uint16{zero}, n)
				if got := CosineDistanceHalf(zeros, ones); !math.IsNaN(float64(got)) {
					t.Errorf("CosineDistanceHalf of a zero vector = %g, want NaN", got)
				}
				if got := CosineDistanceHalf(ones, ones); got != 0 {
					t.Errorf("CosineDistanceHalf to itself = %g", got)
				}
				// 65504² overflows float32 only past 2^128: n of them stays finite.
				big := slices.Repeat([]uint16{0x7bff}, n)
				negBig := slices.Repeat([]uint16{0xfbff}, n)
				if got, want := SquaredL2Half(big, negBig), float64(n)*4*65504*65504; !closeTo(got, want, tol(n, want)) {
					t.Errorf("SquaredL2Half(max, -max) = %g, want %g", got, want)
				}
				if got, want := L1Half(big, negBig), float64(n)*2*65504; !closeTo(got, want, tol(n, want)) {
					t.Errorf("L1Half(max, -max) = %g, want %g", got, want)
				}
			}
		}
	})
}
