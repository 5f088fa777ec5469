package simd

import (
	"math"

	"github.com/klauspost/cpuid/v2"
)

//go:generate go run ./internal/asmgen -out kernels_amd64.s -stubs kernels_amd64_stubs.go -pkg simd

// paths on amd64, best first:
//   - avx512: the float32 batch and gather kernels (dot, squared L2, cosine) with 512-bit
//     registers and a masked tail; everything else is the avx2 path's. It needs AVX-512 F,
//     DQ, BW and VL plus BMI2 (the tail mask), and the avx2 path's features. Tested natively
//     on the AMD EPYC (Zen 5) these benchmarks run on, which executes 512-bit FMAs at full
//     width; on Xeons that downclock under 512-bit work, BOREALIS_SIMD=avx2 opts out.
//   - avx2: AVX2+FMA, with F16C for the half-precision kernels (every AVX2 CPU has F16C,
//     which came a generation earlier; it is checked so that a CPU or hypervisor masking it
//     falls back to generic rather than faulting).
var paths = []pathEntry{
	{&avx512Impl, func() bool {
		return cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.BMI2,
			cpuid.AVX512F, cpuid.AVX512DQ, cpuid.AVX512BW, cpuid.AVX512VL)
	}},
	{&avx2Impl, func() bool { return cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C) }},
}

// avx512Impl is avx2Impl with the float32 batch and gather kernels (and the single pairs,
// which are batches of one row) at 512 bits. Cosine's single pair stays on the one-pass
// AVX2 kernel: at 512 bits its three accumulators per block would need the masked tail's
// extra set-up on every call, and stored vectors are unit length, so the graph computes
// dot products, not cosines.
var avx512Impl = func() impl {
	m := avx2Impl
	m.name = "avx512"
	m.dot, m.l2 = dotAVX512, l2AVX512
	m.dotBatch, m.l2Batch, m.cosBatch = dotBatchAVX512Slice, l2BatchAVX512Slice, cosBatchAVX512Slice
	m.dotGather, m.l2Gather, m.cosGather = dotGatherAVX512Slice, l2GatherAVX512Slice, cosGatherAVX512Slice
	m.dotI8G = dotInt8GatherAVX512Slice
	return m
}()

// Named functions, not closures over pairAVX2 and friends: a direct call keeps the
// kernels' noescape results on the stack (the closures were not inlined and allocated).

func dotAVX512(a, b []float32) float32 {
	if len(a) == 0 {
		return dotGeneric(a, b)
	}
	var out float32
	dotBatchAVX512(&a[0], &b[0], len(a), 1, &out)
	return out
}

func l2AVX512(a, b []float32) float32 {
	if len(a) == 0 {
		return l2Generic(a, b)
	}
	var out float32
	l2BatchAVX512(&a[0], &b[0], len(a), 1, &out)
	return out
}

func dotInt8GatherAVX512Slice(q, slab []int8, rows []uint32, out []int32) {
	if len(q) == 0 || len(rows) == 0 {
		gatherInt8(dotInt8Generic, q, slab, rows, out)
		return
	}
	dotInt8GatherAVX512(&q[0], &slab[0], len(q), &rows[0], len(rows), &out[0])
}

func dotBatchAVX512Slice(q, data, out []float32) {
	if len(q) == 0 || len(out) == 0 {
		genericImpl.dotBatch(q, data, out)
		return
	}
	dotBatchAVX512(&q[0], &data[0], len(q), len(out), &out[0])
}

func l2BatchAVX512Slice(q, data, out []float32) {
	if len(q) == 0 || len(out) == 0 {
		genericImpl.l2Batch(q, data, out)
		return
	}
	l2BatchAVX512(&q[0], &data[0], len(q), len(out), &out[0])
}

func cosBatchAVX512Slice(q, data, out []float32) {
	if len(q) == 0 || len(out) == 0 {
		cosBatchGeneric(q, data, out)
		return
	}
	cosBatchAVX512(&q[0], &data[0], len(q), len(out), normSqAVX2(&q[0], len(q)), &out[0])
}

func dotGatherAVX512Slice(q, slab []float32, rows []uint32, out []float32) {
	if len(q) == 0 || len(rows) == 0 {
		genericImpl.dotGather(q, slab, rows, out)
		return
	}
	dotGatherAVX512(&q[0], &slab[0], len(q), &rows[0], len(rows), &out[0])
}

func l2GatherAVX512Slice(q, slab []float32, rows []uint32, out []float32) {
	if len(q) == 0 || len(rows) == 0 {
		genericImpl.l2Gather(q, slab, rows, out)
		return
	}
	l2GatherAVX512(&q[0], &slab[0], len(q), &rows[0], len(rows), &out[0])
}

func cosGatherAVX512Slice(q, slab []float32, rows []uint32, out []float32) {
	if len(q) == 0 || len(rows) == 0 {
		cosGatherGeneric(q, slab, rows, out)
		return
	}
	cosGatherAVX512(&q[0], &slab[0], len(q), &rows[0], len(rows), normSqAVX2(&q[0], len(q)), &out[0])
}

// Against viterin/vek's AVX2 kernels (bench/results/simd.md, same run): single-pair Dot and
// SquaredL2 are equal within noise from 384 dims up, so ours are kept only because the
// single pair is the batch kernel with one row (vek has no batch or gather, and panics on
// empty input). Batches beat a vek-per-row loop at 128-384 dims, where per-call overhead
// dominates. Single-pair cosine is one pass like vek's but with twice the accumulators
// (bound by the FMA ports, not FMA latency): ahead from 1,536 dims, level within noise at
// 384-768, where pgvector's float64 sqrt, divide and clamp cost ~25 cycles more than vek's
// float32 rsqrt. vek is faster on 128-dim single pairs (call overhead).
var avx2Impl = impl{
	name:   "avx2",
	dot:    func(a, b []float32) float32 { return pairAVX2(dotBatchAVX2, dotGeneric, a, b) },
	l2:     func(a, b []float32) float32 { return pairAVX2(l2BatchAVX2, l2Generic, a, b) },
	cos:    cosPairAVX2Slice,
	normSq: normSqAVX2Slice,
	dotBatch: func(q, data, out []float32) {
		batchAVX2(dotBatchAVX2, genericImpl.dotBatch, q, data, out)
	},
	l2Batch: func(q, data, out []float32) {
		batchAVX2(l2BatchAVX2, genericImpl.l2Batch, q, data, out)
	},
	cosBatch: cosBatchAVX2Slice,
	dotGather: func(q, slab []float32, rows []uint32, out []float32) {
		gatherAVX2(dotGatherAVX2, genericImpl.dotGather, q, slab, rows, out)
	},
	l2Gather: func(q, slab []float32, rows []uint32, out []float32) {
		gatherAVX2(l2GatherAVX2, genericImpl.l2Gather, q, slab, rows, out)
	},
	cosGather: cosGatherAVX2Slice,
	dotI8:     dotInt8AVX2,
	dotI8G:    func(q, slab []int8, rows []uint32, out []int32) { gatherInt8(dotInt8AVX2, q, slab, rows, out) },
	l2I8:      func(a, b []int8) int32 { return int8AVX2(l2Int8AVX2, a, b) },
	l1:        l1AVX2Slice,
	fromHalf:  halfToFloat32AVX2,
	toHalf:    float32ToHalfAVX2,
	l2Half:    func(a, b []uint16) float32 { return halfPairAVX2(l2HalfAVX2, a, b) },
	dotHalf:   func(a, b []uint16) float32 { return halfPairAVX2(dotHalfAVX2, a, b) },
	l1Half:    func(a, b []uint16) float32 { return halfPairAVX2(l1HalfAVX2, a, b) },
	cosHalf:   cosHalfAVX2Slice,
	cosHalfQ:  cosHalfQueryAVX2Slice,
	jaccard:   jaccardAVX2Slice,
	hamming:   hammingAVX2Slice,
}

// The wrappers below take &x[0], which needs at least one element: empty vectors (dim 0)
// and empty batches go to the generic code, which handles them without special cases.

type batchKernel func(q, data *float32, dim, rows int, out *float32)
type gatherKernel func(q, slab *float32, dim int, idx *uint32, rows int, out *float32)

func pairAVX2(k batchKernel, fallback func(a, b []float32) float32, a, b []float32) float32 {
	if len(a) == 0 {
		return fallback(a, b)
	}
	var out float32
	k(&a[0], &b[0], len(a), 1, &out)
	return out
}

func batchAVX2(k batchKernel, fallback func(q, data, out []float32), q, data, out []float32) {
	if len(q) == 0 || len(out) == 0 {
		fallback(q, data, out)
		return
	}
	k(&q[0], &data[0], len(q), len(out), &out[0])
}

func gatherAVX2(k gatherKernel, fallback func(q, slab []float32, rows []uint32, out []float32), q, slab []float32, rows []uint32, out []float32) {
	if len(q) == 0 || len(rows) == 0 {
		fallback(q, slab, rows, out)
		return
	}
	k(&q[0], &slab[0], len(q), &rows[0], len(rows), &out[0])
}

func normSqAVX2Slice(a []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return normSqAVX2(&a[0], len(a))
}

func cosPairAVX2Slice(a, b []float32) float32 {
	if len(a) == 0 {
		return cosGeneric(a, b)
	}
	return cosPairAVX2(&a[0], &b[0], len(a))
}

func cosBatchAVX2Slice(q, data, out []float32) {
	if len(q) == 0 || len(out) == 0 {
		cosBatchGeneric(q, data, out)
		return
	}
	cosBatchAVX2(&q[0], &data[0], len(q), len(out), normSqAVX2(&q[0], len(q)), &out[0])
}

func cosGatherAVX2Slice(q, slab []float32, rows []uint32, out []float32) {
	if len(q) == 0 || len(rows) == 0 {
		cosGatherGeneric(q, slab, rows, out)
		return
	}
	cosGatherAVX2(&q[0], &slab[0], len(q), &rows[0], len(rows), normSqAVX2(&q[0], len(q)), &out[0])
}

// dotInt8AVX2 runs the VPMADDUBSW kernel, which is exact unless b holds -128, and reruns
// the widening kernel (exact for all int8, half the speed) when it reports that it did.
// The quantizers write codes in [-127, 127], so their vectors always take the fast path.
func dotInt8AVX2(a, b []int8) int32 {
	if len(a) == 0 {
		return 0
	}
	if dot, exact := dotInt8MaddAVX2(&a[0], &b[0], len(a)); exact {
		return dot
	}
	return dotInt8WideAVX2(&a[0], &b[0], len(a))
}

func int8AVX2(k func(a, b *int8, n int) int32, a, b []int8) int32 {
	if len(a) == 0 {
		return 0
	}
	return k(&a[0], &b[0], len(a))
}

func l1AVX2Slice(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return l1AVX2(&a[0], &b[0], len(a))
}

func halfPairAVX2(k func(a, b *uint16, n int) float32, a, b []uint16) float32 {
	if len(a) == 0 {
		return 0
	}
	return k(&a[0], &b[0], len(a))
}

// cosHalfAVX2Slice sends empty vectors to the generic code for its NaN (0/0).
func cosHalfAVX2Slice(a, b []uint16) float32 {
	if len(a) == 0 {
		return cosHalfGeneric(a, b)
	}
	return cosHalfAVX2(&a[0], &b[0], len(a))
}

// cosHalfQueryAVX2Slice is cosHalfAVX2Slice(q.h, b) from the query's float32 copy and norm,
// prefetching next (of b's length).
func cosHalfQueryAVX2Slice(q *HalfQuery, b, next []uint16) float32 {
	if len(q.h) == 0 {
		return cosHalfGeneric(q.h, b)
	}
	return cosHalfQueryAVX2(&q.f[0], &b[0], &next[0], len(q.h), q.norm2)
}

func halfToFloat32AVX2(dst []float32, src []uint16) {
	if len(src) > 0 {
		halfToFloat32F16C(&dst[0], &src[0], len(src))
	}
}

func float32ToHalfAVX2(dst []uint16, src []float32) {
	if len(src) > 0 {
		float32ToHalfF16C(&dst[0], &src[0], len(src))
	}
}

// Below 16 words (1,024 bits) the Go POPCNT loop wins: the vector kernel's set-up (nibble
// table, mask, reduction) is most of a short call (bench/results/simd.md).
const popMinWords = 16

func jaccardAVX2Slice(a, b []uint64) float32 {
	return jaccardBlocks(jaccardAVX2, math.MaxInt, popMinWords, a, b)
}

func hammingAVX2Slice(a, b []uint64) int {
	return hammingBlocks(hammingAVX2, math.MaxInt, popMinWords, a, b)
}
