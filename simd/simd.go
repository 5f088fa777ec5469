package simd

import (
	"math"
	"strconv"
)

// The exported kernels check shapes (a caller bug panics with a clear message, never reads
// out of bounds) and hand over to the path chosen at init.

// Dot returns the inner product of a and b.
func Dot(a, b []float32) float32 {
	samePair("Dot", len(a), len(b))
	return active.Load().dot(a, b)
}

// SquaredL2 returns the squared Euclidean distance between a and b.
func SquaredL2(a, b []float32) float32 {
	samePair("SquaredL2", len(a), len(b))
	return active.Load().l2(a, b)
}

// CosineDistance returns 1 - cos(a, b), as pgvector's <=>: the final division is done in
// float64 and clamped to [0, 2]; a zero vector gives NaN.
func CosineDistance(a, b []float32) float32 {
	samePair("CosineDistance", len(a), len(b))
	return active.Load().cos(a, b)
}

// Norm returns the Euclidean length of a.
func Norm(a []float32) float32 {
	return float32(math.Sqrt(float64(active.Load().normSq(a))))
}

// DotBatch writes Dot(q, row i) into out[i] for each row of data, a row-major matrix
// with len(q) columns and len(out) rows.
func DotBatch(q, data, out []float32) {
	sameBatch("DotBatch", len(q), len(data), len(out))
	active.Load().dotBatch(q, data, out)
}

// SquaredL2Batch writes SquaredL2(q, row i) into out[i]; shapes as DotBatch.
func SquaredL2Batch(q, data, out []float32) {
	sameBatch("SquaredL2Batch", len(q), len(data), len(out))
	active.Load().l2Batch(q, data, out)
}

// CosineDistanceBatch writes CosineDistance(q, row i) into out[i]; shapes as DotBatch.
func CosineDistanceBatch(q, data, out []float32) {
	sameBatch("CosineDistanceBatch", len(q), len(data), len(out))
	active.Load().cosBatch(q, data, out)
}

// DotGather writes Dot(q, row rows[i] of slab) into out[i]. slab is a row-major matrix with
// len(q) columns; this is how HNSW scores a node's neighbour list in one call.
func DotGather(q, slab []float32, rows []uint32, out []float32) {
	sameGather("DotGather", len(q), len(slab), rows, len(out))
	active.Load().dotGather(q, slab, rows, out)
}

// SquaredL2Gather writes SquaredL2(q, row rows[i] of slab) into out[i]; shapes as DotGather.
func SquaredL2Gather(q, slab []float32, rows []uint32, out []float32) {
	sameGather("SquaredL2Gather", len(q), len(slab), rows, len(out))
	active.Load().l2Gather(q, slab, rows, out)
}

// CosineDistanceGather writes CosineDistance(q, row rows[i] of slab) into out[i].
func CosineDistanceGather(q, slab []float32, rows []uint32, out []float32) {
	sameGather("CosineDistanceGather", len(q), len(slab), rows, len(out))
	active.Load().cosGather(q, slab, rows, out)
}

func samePair(kernel string, la, lb int) {
	if la != lb {
		panic(shapeError{kernel, "length mismatch", la, lb})
	}
}

func sameBatch(kernel string, dim, ldata, lout int) {
	if ldata != dim*lout {
		panic(shapeError{kernel, "len(data) != len(q)*len(out)", ldata, dim * lout})
	}
}

// sameGather checks every row index up front so the vector kernels can read rows without
// bounds checks; the loop costs about a nanosecond per row, against tens for the distance.
func sameGather(kernel string, dim, lslab int, rows []uint32, lout int) {
	if len(rows) != lout {
		panic(shapeError{kernel, "len(rows) != len(out)", len(rows), lout})
	}
	if dim == 0 {
		return
	}
	n := uint64(lslab / dim)
	for _, r := range rows {
		if uint64(r) >= n {
			panic(shapeError{kernel, "row index out of range of slab (got, rows)", int(r), int(n)})
		}
	}
}

type shapeError struct {
	kernel, what string
	got, want    int
}

func (e shapeError) Error() string {
	return "simd." + e.kernel + ": " + e.what + ": " + strconv.Itoa(e.got) + " vs " + strconv.Itoa(e.want)
}

// cosFinish turns a dot product and two squared norms into pgvector's cosine distance:
// float64 for the division, clamp so rounding never leaves [-1, 1], NaN passes through.
func cosFinish(dot, na, nb float32) float32 {
	sim := float64(dot) / math.Sqrt(float64(na)*float64(nb))
	if sim > 1 {
		sim = 1
	} else if sim < -1 {
		sim = -1
	}
	return float32(1 - sim)
}
