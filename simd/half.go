package simd

import "math"

// Half-precision (IEEE 754 binary16) vectors, pgvector's halfvec, are passed as their raw
// bits in []uint16 (sign, 5 exponent bits, 10 fraction bits), little-endian in memory as
// PostgreSQL stores them. Distances convert each element to float32 exactly and then follow
// pgvector's halfvec operators: float32 accumulation, and for cosine the float64 finish of
// CosineDistance.
//
// The AVX2 path converts with F16C (VCVTPH2PS straight from memory, so the half kernels
// run at the float32 kernels' speed on half the bytes); the generic code converts each
// element with integer operations and is some 30-40x slower, there for CPUs without F16C.
//
// NaN: both conversions keep the sign and the top fraction bits and set the quiet bit,
// which is what F16C's VCVTPH2PS/VCVTPS2PH and ARM's FCVT do, so every path gives the same
// bits for every input.

// HalfToFloat32 writes src converted to float32 into dst; the conversion is exact for every
// binary16 value (subnormals, infinities, signed zeros). len(dst) must equal len(src).
func HalfToFloat32(dst []float32, src []uint16) {
	samePair("HalfToFloat32", len(dst), len(src))
	active.Load().fromHalf(dst, src)
}

// Float32ToHalf writes src rounded to binary16 (round to nearest, ties to even) into dst.
// Magnitudes from 65520 up become ±Inf and below 2^-25 ±0, as IEEE 754 says; callers that
// must reject out-of-range values (pgvector's halfvec input does) check before converting.
// len(dst) must equal len(src).
func Float32ToHalf(dst []uint16, src []float32) {
	samePair("Float32ToHalf", len(dst), len(src))
	active.Load().toHalf(dst, src)
}

// SquaredL2Half returns the squared Euclidean distance of two half vectors (halfvec <->
// squared), each difference taken in float32.
func SquaredL2Half(a, b []uint16) float32 {
	samePair("SquaredL2Half", len(a), len(b))
	return active.Load().l2Half(a, b)
}

// DotHalf returns the inner product of two half vectors, accumulated in float32 (halfvec
// <#> is its negation).
func DotHalf(a, b []uint16) float32 {
	samePair("DotHalf", len(a), len(b))
	return active.Load().dotHalf(a, b)
}

// L1Half returns Σ|a_i - b_i| of two half vectors in float32 (halfvec <+>).
func L1Half(a, b []uint16) float32 {
	samePair("L1Half", len(a), len(b))
	return active.Load().l1Half(a, b)
}

// CosineDistanceHalf returns 1 - cos(a, b) of two half vectors as CosineDistance does
// (halfvec <=>): sums in float32, division in float64, clamped to [0, 2], NaN for a zero
// vector.
func CosineDistanceHalf(a, b []uint16) float32 {
	samePair("CosineDistanceHalf", len(a), len(b))
	return active.Load().cosHalf(a, b)
}

// HalfQuery is a half vector prepared to be compared with many others under cosine, as a
// search compares its query with every node it visits: Set converts it to float32 and
// computes its squared norm once, so each CosineDistanceHalfQuery converts and sums only
// the other vector. The zero value is an empty query; a HalfQuery is not safe for
// concurrent Set.
type HalfQuery struct {
	h     []uint16
	f     []float32
	norm2 float32
}

// Set makes q the half vector h (copied; h may be reused afterwards).
func (q *HalfQuery) Set(h []uint16) {
	if cap(q.h) < len(h) {
		q.h = make([]uint16, len(h))
		q.f = make([]float32, len(h))
	}
	q.h, q.f = q.h[:len(h)], q.f[:len(h)]
	copy(q.h, h)
	HalfToFloat32(q.f, q.h)
	// On the AVX2 path DotHalf(h, h) sums exactly as CosineDistanceHalf sums |h|² (the same
	// accumulators, trips, reduction and tail), which makes the result below bit-identical;
	// the other paths do not use it.
	q.norm2 = DotHalf(q.h, q.h)
}

// Len is the number of components of the query.
func (q *HalfQuery) Len() int { return len(q.h) }

// CosineDistanceHalfQuery returns CosineDistanceHalf(h, b) for the h of q.Set, bit for bit,
// at about the cost of a dot product on the AVX2 path (one conversion and two sums per
// element instead of two and three); other paths compute CosineDistanceHalf itself.
func CosineDistanceHalfQuery(q *HalfQuery, b []uint16) float32 {
	samePair("CosineDistanceHalfQuery", len(q.h), len(b))
	return active.Load().cosHalfQ(q, b, b)
}

// CosineDistanceHalfQueryNext is CosineDistanceHalfQuery(q, b), same bits, and starts loading
// next (the vector the caller scores after b, of the same length) into the cache while it
// sums b: a search scores a node's neighbours one after another, each a few kB scattered over
// the graph, so the next one arrives while this one is summed (AVX2 path; elsewhere next is
// ignored).
func CosineDistanceHalfQueryNext(q *HalfQuery, b, next []uint16) float32 {
	samePair("CosineDistanceHalfQueryNext", len(q.h), len(b))
	samePair("CosineDistanceHalfQueryNext", len(q.h), len(next))
	return active.Load().cosHalfQ(q, b, next)
}

// h2f converts one binary16 value exactly. Finite values (normal and subnormal alike) are
// the half's exponent and fraction moved into float32's fields, scaled by 2^112 (the
// difference of the exponent biases, 127 - 15): the product is exact, and a subnormal half
// lands on a subnormal float32 that the multiply normalises. The branch for Inf/NaN is
// never taken on real data, so it predicts perfectly.
func h2f(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	em := uint32(h & 0x7fff)
	if em >= 0x7c00 {
		bits := sign | 0x7f800000 | (em&0x3ff)<<13
		if em != 0x7c00 {
			bits |= 0x400000 // quiet NaN
		}
		return math.Float32frombits(bits)
	}
	return math.Float32frombits(sign|em<<13) * 0x1p112
}

// f2h rounds one float32 to binary16, to nearest with ties to even, in integer arithmetic.
func f2h(f float32) uint16 {
	x := math.Float32bits(f)
	sign := uint16(x>>16) & 0x8000
	x &^= 1 << 31
	switch {
	case x > 0x7f800000: // NaN: keep the top fraction bits, set the quiet bit
		return sign | 0x7e00 | uint16(x>>13)&0x3ff
	case x >= 0x47800000: // 2^16 and up, and Inf
		return sign | 0x7c00
	case x >= 0x38800000: // a normal half: 2^-14 <= |f| < 2^16
		// Rebias the exponent (127 -> 15) and drop 13 fraction bits; a carry out of the
		// fraction correctly bumps the exponent, up to Inf from 65520.
		h := (x - 0x38000000) >> 13
		rem := x & 0x1fff
		if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	case x < 0x33000000: // below 2^-25, half the smallest subnormal (and ties to it): ±0
		return sign
	}
	// A subnormal half: |f| = m·2^(e-150) with the implicit bit in m, and the result
	// counts units of 2^-24, so it is m shifted right by 126-e (14..24), rounded to even.
	// A carry out of the top reaches 0x400, the smallest normal, as it should.
	e := x >> 23
	m := x&0x7fffff | 0x800000
	shift := 126 - e
	h := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || rem == half && h&1 == 1 {
		h++
	}
	return sign | uint16(h)
}

func halfToFloat32Generic(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = h2f(h)
	}
}

func float32ToHalfGeneric(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = f2h(f)
	}
}

func dotHalfGeneric(a, b []uint16) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		s0 += h2f(x[0]) * h2f(y[0])
		s1 += h2f(x[1]) * h2f(y[1])
		s2 += h2f(x[2]) * h2f(y[2])
		s3 += h2f(x[3]) * h2f(y[3])
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		s0 += h2f(a[i]) * h2f(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

func l2HalfGeneric(a, b []uint16) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		d0, d1 := h2f(x[0])-h2f(y[0]), h2f(x[1])-h2f(y[1])
		d2, d3 := h2f(x[2])-h2f(y[2]), h2f(x[3])-h2f(y[3])
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		d := h2f(a[i]) - h2f(b[i])
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

func l1HalfGeneric(a, b []uint16) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		s0 += abs32(h2f(x[0]) - h2f(y[0]))
		s1 += abs32(h2f(x[1]) - h2f(y[1]))
		s2 += abs32(h2f(x[2]) - h2f(y[2]))
		s3 += abs32(h2f(x[3]) - h2f(y[3]))
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		s0 += abs32(h2f(a[i]) - h2f(b[i]))
	}
	return (s0 + s1) + (s2 + s3)
}

func cosHalfGeneric(a, b []uint16) float32 {
	var d0, d1, a0, a1, b0, b1 float32
	for len(a) >= 2 && len(b) >= 2 {
		x0, x1 := h2f(a[0]), h2f(a[1])
		y0, y1 := h2f(b[0]), h2f(b[1])
		d0 += x0 * y0
		d1 += x1 * y1
		a0 += x0 * x0
		a1 += x1 * x1
		b0 += y0 * y0
		b1 += y1 * y1
		a, b = a[2:], b[2:]
	}
	b = b[:len(a)]
	for i := range a {
		x, y := h2f(a[i]), h2f(b[i])
		d0 += x * y
		a0 += x * x
		b0 += y * y
	}
	return cosFinish(d0+d1, a0+a1, b0+b1)
}
