package simd

// The portable kernels. Each re-slices its second operand to the first's length and walks
// fixed-size windows (a[i:i+8:i+8]) so the compiler proves every index in range and drops
// the bounds checks (checked with -gcflags=-d=ssa/check_bce), and keeps several independent
// accumulators so consecutive adds do not wait on each other's latency.

var genericImpl = impl{
	name:      "generic",
	dot:       dotGeneric,
	l2:        l2Generic,
	cos:       cosGeneric,
	normSq:    normSqGeneric,
	dotBatch:  func(q, data, out []float32) { batch(dotGeneric, q, data, out) },
	l2Batch:   func(q, data, out []float32) { batch(l2Generic, q, data, out) },
	cosBatch:  cosBatchGeneric,
	dotGather: func(q, slab []float32, rows []uint32, out []float32) { gather(dotGeneric, q, slab, rows, out) },
	l2Gather:  func(q, slab []float32, rows []uint32, out []float32) { gather(l2Generic, q, slab, rows, out) },
	cosGather: cosGatherGeneric,
	dotI8:     dotInt8Generic,
	dotI8G:    func(q, slab []int8, rows []uint32, out []int32) { gatherInt8(dotInt8Generic, q, slab, rows, out) },
	l2I8:      l2Int8Generic,
	l1:        l1Generic,
	fromHalf:  halfToFloat32Generic,
	toHalf:    float32ToHalfGeneric,
	l2Half:    l2HalfGeneric,
	dotHalf:   dotHalfGeneric,
	l1Half:    l1HalfGeneric,
	cosHalf:   cosHalfGeneric,
	cosHalfQ:  func(q *HalfQuery, b, _ []uint16) float32 { return cosHalfGeneric(q.h, b) },
	jaccard:   jaccardGeneric,
	hamming:   hammingGeneric,
}

func dotGeneric(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 8 && len(b) >= 8 {
		x, y := a[:8:8], b[:8:8]
		s0 += x[0]*y[0] + x[4]*y[4]
		s1 += x[1]*y[1] + x[5]*y[5]
		s2 += x[2]*y[2] + x[6]*y[6]
		s3 += x[3]*y[3] + x[7]*y[7]
		a, b = a[8:], b[8:]
	}
	b = b[:len(a)]
	for i := range a {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func l2Generic(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 8 && len(b) >= 8 {
		x, y := a[:8:8], b[:8:8]
		d0, d1, d2, d3 := x[0]-y[0], x[1]-y[1], x[2]-y[2], x[3]-y[3]
		d4, d5, d6, d7 := x[4]-y[4], x[5]-y[5], x[6]-y[6], x[7]-y[7]
		s0 += d0*d0 + d4*d4
		s1 += d1*d1 + d5*d5
		s2 += d2*d2 + d6*d6
		s3 += d3*d3 + d7*d7
		a, b = a[8:], b[8:]
	}
	b = b[:len(a)]
	for i := range a {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

func normSqGeneric(a []float32) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 8 {
		x := a[:8:8]
		s0 += x[0]*x[0] + x[4]*x[4]
		s1 += x[1]*x[1] + x[5]*x[5]
		s2 += x[2]*x[2] + x[6]*x[6]
		s3 += x[3]*x[3] + x[7]*x[7]
		a = a[8:]
	}
	for i := range a {
		s0 += a[i] * a[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotNormGeneric returns a·b and |b|², one pass over b: cosine against a fixed query.
func dotNormGeneric(a, b []float32) (dot, nb float32) {
	var d0, d1, n0, n1 float32
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		d0 += x[0]*y[0] + x[2]*y[2]
		d1 += x[1]*y[1] + x[3]*y[3]
		n0 += y[0]*y[0] + y[2]*y[2]
		n1 += y[1]*y[1] + y[3]*y[3]
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		d0 += a[i] * b[i]
		n0 += b[i] * b[i]
	}
	return d0 + d1, n0 + n1
}

// dotNormsGeneric returns a·b, |a|² and |b|² in one pass: the single-pair cosine, where
// neither norm is known in advance.
func dotNormsGeneric(a, b []float32) (dot, na, nb float32) {
	var d0, d1, a0, a1, b0, b1 float32
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		d0 += x[0]*y[0] + x[2]*y[2]
		d1 += x[1]*y[1] + x[3]*y[3]
		a0 += x[0]*x[0] + x[2]*x[2]
		a1 += x[1]*x[1] + x[3]*x[3]
		b0 += y[0]*y[0] + y[2]*y[2]
		b1 += y[1]*y[1] + y[3]*y[3]
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		d0 += a[i] * b[i]
		a0 += a[i] * a[i]
		b0 += b[i] * b[i]
	}
	return d0 + d1, a0 + a1, b0 + b1
}

func cosGeneric(a, b []float32) float32 {
	return cosFinish(dotNormsGeneric(a, b))
}

func batch(k func(a, b []float32) float32, q, data, out []float32) {
	dim := len(q)
	for i := range out {
		out[i] = k(q, data[i*dim:(i+1)*dim])
	}
}

func gather(k func(a, b []float32) float32, q, slab []float32, rows []uint32, out []float32) {
	dim := len(q)
	out = out[:len(rows)]
	for i, r := range rows {
		o := int(r) * dim
		out[i] = k(q, slab[o:o+dim])
	}
}

func cosBatchGeneric(q, data, out []float32) {
	dim, na := len(q), normSqGeneric(q)
	for i := range out {
		dot, nb := dotNormGeneric(q, data[i*dim:(i+1)*dim])
		out[i] = cosFinish(dot, na, nb)
	}
}

func cosGatherGeneric(q, slab []float32, rows []uint32, out []float32) {
	dim, na := len(q), normSqGeneric(q)
	out = out[:len(rows)]
	for i, r := range rows {
		o := int(r) * dim
		dot, nb := dotNormGeneric(q, slab[o:o+dim])
		out[i] = cosFinish(dot, na, nb)
	}
}
