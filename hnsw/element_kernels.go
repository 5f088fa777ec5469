package hnsw

import (
	"math"
	"math/bits"
)

// Portable kernels for the element types beyond float32, with pgvector's
// definitions (float32 accumulation, as pgvector's C does). simd gains
// dispatched versions of these (issue 17, helper i17a); the graph moves to
// them once they are on main, and these stay as the reference the tests
// compare with.

// halfToFloat32 converts an IEEE binary16 to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1F
	frac := uint32(h) & 0x3FF
	switch {
	case exp == 0x1F: // Inf, NaN
		return math.Float32frombits(sign | 0x7F800000 | frac<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: value = frac · 2^-24.
	f := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		return -f
	}
	return f
}

func l1(a, b []float32) float32 {
	var s float32
	for i := range a {
		d := a[i] - b[i]
		if d < 0 {
			d = -d
		}
		s += d
	}
	return s
}

func squaredL2Half(a, b []uint16) float32 {
	var s float32
	for i := range a {
		d := halfToFloat32(a[i]) - halfToFloat32(b[i])
		s += d * d
	}
	return s
}

func dotHalf(a, b []uint16) float32 {
	var s float32
	for i := range a {
		s += halfToFloat32(a[i]) * halfToFloat32(b[i])
	}
	return s
}

func l1Half(a, b []uint16) float32 {
	var s float32
	for i := range a {
		d := halfToFloat32(a[i]) - halfToFloat32(b[i])
		if d < 0 {
			d = -d
		}
		s += d
	}
	return s
}

// cosineDistanceHalf is pgvector's halfvec_cosine_distance: 1 − a·b/(|a||b|),
// the similarity clamped to [−1, 1].
func cosineDistanceHalf(a, b []uint16) float32 {
	var dot, na, nb float32
	for i := range a {
		x, y := halfToFloat32(a[i]), halfToFloat32(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	sim := float64(dot) / math.Sqrt(float64(na)*float64(nb))
	sim = min(max(sim, -1), 1)
	return float32(1 - sim)
}

// jaccard is pgvector's jaccard_distance: 1 − |a∧b| / (|a| + |b| − |a∧b|),
// and 1 when a and b share no bit.
func jaccard(a, b []uint64) float32 {
	var ab, aa, bb int
	for i := range a {
		ab += bits.OnesCount64(a[i] & b[i])
		aa += bits.OnesCount64(a[i])
		bb += bits.OnesCount64(b[i])
	}
	if ab == 0 {
		return 1
	}
	return float32(1 - float64(ab)/float64(aa+bb-ab))
}

func sparseDot(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	var s float32
	for i, j := 0, 0; i < len(ai) && j < len(bi); {
		switch {
		case ai[i] == bi[j]:
			s += av[i] * bv[j]
			i++
			j++
		case ai[i] < bi[j]:
			i++
		default:
			j++
		}
	}
	return s
}

func sparseSquaredL2(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	var s float32
	i, j := 0, 0
	for i < len(ai) && j < len(bi) {
		switch {
		case ai[i] == bi[j]:
			d := av[i] - bv[j]
			s += d * d
			i++
			j++
		case ai[i] < bi[j]:
			s += av[i] * av[i]
			i++
		default:
			s += bv[j] * bv[j]
			j++
		}
	}
	for ; i < len(ai); i++ {
		s += av[i] * av[i]
	}
	for ; j < len(bi); j++ {
		s += bv[j] * bv[j]
	}
	return s
}

func sparseL1(ai []int32, av []float32, bi []int32, bv []float32) float32 {
	abs := func(f float32) float32 {
		if f < 0 {
			return -f
		}
		return f
	}
	var s float32
	i, j := 0, 0
	for i < len(ai) && j < len(bi) {
		switch {
		case ai[i] == bi[j]:
			s += abs(av[i] - bv[j])
			i++
			j++
		case ai[i] < bi[j]:
			s += abs(av[i])
			i++
		default:
			s += abs(bv[j])
			j++
		}
	}
	for ; i < len(ai); i++ {
		s += abs(av[i])
	}
	for ; j < len(bi); j++ {
		s += abs(bv[j])
	}
	return s
}
