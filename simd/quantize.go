package simd

import "math"

// Scalar quantization maps x to round(x/scale) clamped to [-127, 127]. The code range is
// symmetric (no -128) so negating a code never overflows and |code| ≤ 127 on every path.

// QuantizeInt8 writes the int8 codes of src into dst with one scale for the whole vector,
// chosen so the largest finite |x| maps to 127, and returns that scale: x ≈ code*scale.
// NaN maps to 0 and ±Inf to ±127. An all-zero (or all non-finite) vector gets scale 0 and
// zero codes. It panics if len(dst) != len(src).
func QuantizeInt8(dst []int8, src []float32) (scale float32) {
	samePair("QuantizeInt8", len(dst), len(src))
	var m float32
	for _, x := range src {
		if a := float32(math.Abs(float64(x))); a > m && !math.IsInf(float64(a), 0) {
			m = a
		}
	}
	scale = m / 127
	if scale == 0 || math.IsInf(float64(scale), 0) {
		// A subnormal max underflows m/127 to 0; keep the vector representable anyway.
		scale = m
	}
	dst = dst[:len(src)]
	if scale == 0 {
		for i, x := range src {
			dst[i] = quantizeOne(x, 1, 0)
		}
		return 0
	}
	inv := 1 / float64(scale)
	for i, x := range src {
		dst[i] = quantizeOne(x, inv, 127)
	}
	return scale
}

// Int8Scales computes per-dimension scales from sample vectors (row-major, len(scale)
// columns): scale[j] = max |x_j| / 127 over the finite samples, for QuantizeInt8PerDim.
func Int8Scales(samples []float32, scale []float32) {
	dim := len(scale)
	if dim == 0 || len(samples)%dim != 0 {
		panic(shapeError{"Int8Scales", "len(samples) not a multiple of len(scale)", len(samples), dim})
	}
	for j := range scale {
		scale[j] = 0
	}
	for o := 0; o < len(samples); o += dim {
		row := samples[o : o+dim]
		for j, x := range row {
			a := float32(math.Abs(float64(x)))
			if a > scale[j] && !math.IsInf(float64(a), 0) {
				scale[j] = a
			}
		}
	}
	for j := range scale {
		scale[j] /= 127
	}
}

// QuantizeInt8PerDim writes round(src[j]/scale[j]) clamped to [-127, 127] into dst[j].
// A zero scale maps finite values of its dimension to 0; NaN maps to 0 and ±Inf to ±127.
func QuantizeInt8PerDim(dst []int8, src, scale []float32) {
	samePair("QuantizeInt8PerDim", len(dst), len(src))
	samePair("QuantizeInt8PerDim", len(scale), len(src))
	dst, scale = dst[:len(src)], scale[:len(src)]
	for j, x := range src {
		if scale[j] == 0 {
			dst[j] = quantizeOne(x, 1, 0) // finite values to 0, ±Inf still to ±127
			continue
		}
		dst[j] = quantizeOne(x, 1/float64(scale[j]), 127)
	}
}

func quantizeOne(x float32, inv float64, limit float64) int8 {
	v := float64(x)
	if math.IsNaN(v) {
		return 0
	}
	if math.IsInf(v, 0) {
		return int8(math.Copysign(127, v))
	}
	r := math.RoundToEven(v * inv)
	if r > limit {
		r = limit
	} else if r < -limit {
		r = -limit
	}
	return int8(r)
}

// SignBits packs the sign of each value into dst: bit i%64 of dst[i/64] is set when
// src[i] > 0 (zero, negative and NaN give 0), for Hamming search over binary codes.
// len(dst) must be (len(src)+63)/64; unused high bits of the last word are cleared.
func SignBits(dst []uint64, src []float32) {
	samePair("SignBits", len(dst), (len(src)+63)/64)
	for w := range dst {
		lo := w * 64
		hi := min(lo+64, len(src))
		var word uint64
		for i, x := range src[lo:hi] {
			if x > 0 {
				word |= 1 << uint(i)
			}
		}
		dst[w] = word
	}
}
