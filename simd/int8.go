package simd

// DotInt8 returns the inner product of two int8 vectors, accumulated exactly in int32.
// It cannot overflow for len(a) < 2^31 / 2^14 = 131072.
//
// Every int8 input gives the exact result, but the fast path assumes the codes the
// quantizers write, in [-127, 127]: on amd64 a -128 in b is detected and the product is
// recomputed by a kernel half as fast, so such a call costs about three times as much.
// (-128 in a alone costs nothing.)
func DotInt8(a, b []int8) int32 {
	samePair("DotInt8", len(a), len(b))
	return active.Load().dotI8(a, b)
}

// DotInt8Gather writes DotInt8(q, row rows[i] of slab) into out[i]; slab is a row-major
// int8 matrix with len(q) columns (an int8 graph traversal scores a neighbour list in one
// call, so the kernel can prefetch each next row).
func DotInt8Gather(q, slab []int8, rows []uint32, out []int32) {
	sameGather("DotInt8Gather", len(q), len(slab), rows, len(out))
	active.Load().dotI8G(q, slab, rows, out)
}

// gatherInt8 is DotInt8Gather one row at a time with a pair kernel.
func gatherInt8(k func(a, b []int8) int32, q, slab []int8, rows []uint32, out []int32) {
	d := len(q)
	for i, r := range rows {
		out[i] = k(q, slab[int(r)*d:int(r)*d+d])
	}
}

// SquaredL2Int8 returns the squared Euclidean distance of two int8 vectors, exactly in int32.
// It cannot overflow for len(a) < 2^31 / 255² = 33025.
func SquaredL2Int8(a, b []int8) int32 {
	samePair("SquaredL2Int8", len(a), len(b))
	return active.Load().l2I8(a, b)
}

func dotInt8Generic(a, b []int8) int32 {
	var s0, s1, s2, s3 int32
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		s0 += int32(x[0]) * int32(y[0])
		s1 += int32(x[1]) * int32(y[1])
		s2 += int32(x[2]) * int32(y[2])
		s3 += int32(x[3]) * int32(y[3])
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		s0 += int32(a[i]) * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}

func l2Int8Generic(a, b []int8) int32 {
	var s0, s1, s2, s3 int32
	for len(a) >= 4 && len(b) >= 4 {
		x, y := a[:4:4], b[:4:4]
		d0 := int32(x[0]) - int32(y[0])
		d1 := int32(x[1]) - int32(y[1])
		d2 := int32(x[2]) - int32(y[2])
		d3 := int32(x[3]) - int32(y[3])
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
		a, b = a[4:], b[4:]
	}
	b = b[:len(a)]
	for i := range a {
		d := int32(a[i]) - int32(b[i])
		s0 += d * d
	}
	return s0 + s1 + s2 + s3
}
