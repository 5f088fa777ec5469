package simd

import (
	"encoding/binary"
	"math"
	"testing"
)

// floatsFrom reinterprets fuzz bytes as float32s, so the fuzzer reaches NaN payloads,
// infinities, subnormals and every magnitude, not just the values a generator would pick.
func floatsFrom(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// Batch and gather kernels on the active path must agree with the generic single-pair
// kernels row by row, for any bytes: same NaN-ness and infinities, finite values within the
// summation error bound.
func FuzzBatchKernels(f *testing.F) {
	f.Add(uint8(3), []byte("0123456789abcdef0123456789abcdef0123456789abcdefXYZW"), []byte{0, 1, 1, 0})
	f.Add(uint8(17), make([]byte, 4*17*3), []byte{2, 0})
	f.Add(uint8(1), []byte{0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f, 1, 0, 0, 0}, []byte{1, 2})
	f.Fuzz(func(t *testing.T, dim uint8, raw []byte, picks []byte) {
		d := int(dim%40) + 1
		vals := floatsFrom(raw)
		if len(vals) < 2*d {
			return
		}
		q := vals[:d]
		data := vals[d : d+(len(vals)-d)/d*d]
		rows := len(data) / d
		idx := make([]uint32, len(picks))
		for i, p := range picks {
			idx[i] = uint32(int(p) % rows)
		}
		out := make([]float32, rows)
		gout := make([]float32, len(idx))
		type kernels struct {
			name   string
			pair   func(a, b []float32) float32
			batch  func(q, data, out []float32)
			gather func(q, slab []float32, rows []uint32, out []float32)
			cos    bool
		}
		for _, k := range []kernels{
			{"dot", dotGeneric, DotBatch, DotGather, false},
			{"l2", l2Generic, SquaredL2Batch, SquaredL2Gather, false},
			{"cos", cosGeneric, CosineDistanceBatch, CosineDistanceGather, true},
		} {
			k.batch(q, data, out)
			k.gather(q, data, idx, gout)
			for i := range out {
				fuzzAgree(t, k.name+"Batch", out[i], k.pair(q, data[i*d:(i+1)*d]), q, data[i*d:(i+1)*d], k.cos)
			}
			for i, r := range idx {
				fuzzAgree(t, k.name+"Gather", gout[i], out[r], q, data[int(r)*d:int(r+1)*d], k.cos)
			}
		}
	})
}

func fuzzAgree(t *testing.T, name string, got, want float32, a, b []float32, cos bool) {
	t.Helper()
	g, w := float64(got), float64(want)
	if math.IsNaN(g) || math.IsNaN(w) || math.IsInf(g, 0) || math.IsInf(w, 0) {
		// Order of summation decides between Inf and NaN when Infs of both signs (or
		// overflow) meet; both paths must at least agree that the result is not finite.
		if !math.IsNaN(g) && !math.IsInf(g, 0) || !math.IsNaN(w) && !math.IsInf(w, 0) {
			if !(math.IsInf(g, 0) && math.IsInf(w, 0) && g == w) && !bothOverflowEdge(g, w) {
				t.Fatalf("%s: got %g, generic %g (a=%v b=%v)", name, got, want, a, b)
			}
		}
		return
	}
	if cos {
		if math.Abs(g-w) > 1e-3 && !(g >= 0 && g <= 2) {
			t.Fatalf("%s: got %g, generic %g", name, got, want)
		}
		return
	}
	var sumAbs float64
	for i := range a {
		sumAbs += math.Abs(float64(a[i]) * float64(b[i]))
		sumAbs += float64(a[i])*float64(a[i]) + float64(b[i])*float64(b[i])
	}
	if math.Abs(g-w) > 2*tol(len(a), sumAbs) {
		t.Fatalf("%s: got %g, generic %g, beyond tolerance %g", name, got, want, 2*tol(len(a), sumAbs))
	}
}

// bothOverflowEdge allows one order of summation to overflow where another stays just
// finite: near MaxFloat32 that is rounding, not a bug.
func bothOverflowEdge(g, w float64) bool {
	lim := math.MaxFloat32 / 2
	return (math.IsInf(g, 0) || math.Abs(g) > lim) && (math.IsInf(w, 0) || math.Abs(w) > lim)
}

// Quantizers must keep codes in [-127, 127], decode within half a step, and SignBits must
// agree with the comparison it documents, for any float bits.
func FuzzQuantizers(f *testing.F) {
	f.Add([]byte("\x00\x00\x80\x3f\x00\x00\x80\xbf\x00\x00\xc0\x7f\x00\x00\x80\x7f"))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0x7f, 0x7f})
	f.Fuzz(func(t *testing.T, raw []byte) {
		src := floatsFrom(raw)
		dst := make([]int8, len(src))
		scale := QuantizeInt8(dst, src)
		if math.IsNaN(float64(scale)) || math.IsInf(float64(scale), 0) || scale < 0 {
			t.Fatalf("scale %g", scale)
		}
		for i, x := range src {
			checkCode(t, x, dst[i], scale)
		}
		scales := make([]float32, len(src))
		if len(src) > 0 {
			Int8Scales(src, scales)
			QuantizeInt8PerDim(dst, src, scales)
			for i, x := range src {
				checkCode(t, x, dst[i], scales[i])
			}
		}
		bits := make([]uint64, (len(src)+63)/64)
		SignBits(bits, src)
		for i, x := range src {
			if got := bits[i/64]>>(i%64)&1 == 1; got != (x > 0) {
				t.Fatalf("bit %d for %g = %v", i, x, got)
			}
		}
		flipped := make([]uint64, len(bits))
		for i, w := range bits {
			flipped[i] = ^w
		}
		if h := Hamming(bits, bits); h != 0 {
			t.Fatalf("Hamming to itself %d", h)
		}
		if h := Hamming(bits, flipped); h != 64*len(bits) {
			t.Fatalf("Hamming to the complement %d, want %d", h, 64*len(bits))
		}
	})
}

// The int8 kernels must be exact for any bytes, on every path.
func FuzzInt8Kernels(f *testing.F) {
	f.Add([]byte{0x80, 0x7f, 0x80, 0x80, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, raw []byte) {
		n := len(raw) / 2
		a, b := make([]int8, n), make([]int8, n)
		for i := range a {
			a[i], b[i] = int8(raw[i]), int8(raw[n+i])
		}
		if got, want := DotInt8(a, b), dotInt8Generic(a, b); got != want {
			t.Fatalf("DotInt8 %d, generic %d", got, want)
		}
		if got, want := SquaredL2Int8(a, b), l2Int8Generic(a, b); got != want {
			t.Fatalf("SquaredL2Int8 %d, generic %d", got, want)
		}
	})
}

// The kernels added for halfvec, bit and L1 on the active path against their generic
// forms, for any bytes: conversions and Jaccard bit for bit, sums within the summation
// bound (NaN and Inf as in fuzzAgree).
func FuzzTypeKernels(f *testing.F) {
	f.Add([]byte("\x00\x3c\x00\xbc\x00\x7e\x00\x7c\x01\x00\xff\x7b\x00\x80\x01\x7c\x00\x00\x80\x7f"))
	f.Add(make([]byte, 4*37))
	f.Add([]byte{0xff, 0xff, 0x7f, 0x47, 0x00, 0xf0, 0x7f, 0x47, 0x00, 0x00, 0x00, 0x33, 0x01, 0x00, 0x00, 0x33})
	long := make([]byte, 4*203) // past the 32-element vector loops of every kernel, odd tail
	for i := range long {
		long[i] = byte(i*131 + i>>3)
	}
	f.Add(long)
	f.Fuzz(func(t *testing.T, raw []byte) {
		fs := floatsFrom(raw)
		hs := make([]uint16, len(raw)/2)
		for i := range hs {
			hs[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
		words := make([]uint64, len(raw)/8)
		for i := range words {
			words[i] = binary.LittleEndian.Uint64(raw[8*i:])
		}

		gotF, wantF := make([]float32, len(hs)), make([]float32, len(hs))
		HalfToFloat32(gotF, hs)
		halfToFloat32Generic(wantF, hs)
		for i := range gotF {
			if math.Float32bits(gotF[i]) != math.Float32bits(wantF[i]) {
				t.Fatalf("HalfToFloat32(%#04x) = %#08x, generic %#08x", hs[i], math.Float32bits(gotF[i]), math.Float32bits(wantF[i]))
			}
		}
		gotH, wantH := make([]uint16, len(fs)), make([]uint16, len(fs))
		Float32ToHalf(gotH, fs)
		float32ToHalfGeneric(wantH, fs)
		for i := range gotH {
			if gotH[i] != wantH[i] {
				t.Fatalf("Float32ToHalf(%#08x) = %#04x, generic %#04x", math.Float32bits(fs[i]), gotH[i], wantH[i])
			}
		}

		n := len(fs) / 2
		a, b := fs[:n], fs[n:2*n]
		fuzzAgreeL1(t, "L1", L1(a, b), l1Generic(a, b), a, b)
		m := len(hs) / 2
		ha, hb := hs[:m], hs[m:2*m]
		da, db := wantF[:m], wantF[m:2*m]
		fuzzAgree(t, "DotHalf", DotHalf(ha, hb), dotHalfGeneric(ha, hb), da, db, false)
		fuzzAgree(t, "SquaredL2Half", SquaredL2Half(ha, hb), l2HalfGeneric(ha, hb), da, db, false)
		fuzzAgree(t, "CosineDistanceHalf", CosineDistanceHalf(ha, hb), cosHalfGeneric(ha, hb), da, db, true)
		fuzzAgreeL1(t, "L1Half", L1Half(ha, hb), l1HalfGeneric(ha, hb), da, db)

		k := len(words) / 2
		wa, wb := words[:k], words[k:2*k]
		if got, want := Jaccard(wa, wb), jaccardGeneric(wa, wb); got != want {
			t.Fatalf("Jaccard %g, generic %g", got, want)
		}
		if got, want := Hamming(wa, wb), hammingGeneric(wa, wb); got != want {
			t.Fatalf("Hamming %d, generic %d", got, want)
		}
	})
}

// fuzzAgreeL1 is fuzzAgree for a sum of absolute differences: every term is |a-b|, so the
// bound is on Σ|a-b| (which fuzzAgree's Σ(a²+b²+|ab|) would not cover for huge values).
func fuzzAgreeL1(t *testing.T, name string, got, want float32, a, b []float32) {
	t.Helper()
	g, w := float64(got), float64(want)
	if math.IsNaN(g) || math.IsNaN(w) || math.IsInf(g, 0) || math.IsInf(w, 0) {
		if !(math.IsNaN(g) && math.IsNaN(w)) && !(g == w) && !bothOverflowEdge(g, w) {
			t.Fatalf("%s: got %g, generic %g", name, got, want)
		}
		return
	}
	var sum float64
	for i := range a {
		sum += math.Abs(float64(a[i]) - float64(b[i]))
	}
	if math.Abs(g-w) > 2*tol(len(a), sum) {
		t.Fatalf("%s: got %g, generic %g, beyond tolerance %g", name, got, want, 2*tol(len(a), sum))
	}
}
