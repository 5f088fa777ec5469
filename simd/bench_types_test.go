package simd

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/viterin/vek/vek32"
)

// Benchmarks of the kernels behind pgvector's other types and L1. vek has L1
// (ManhattanDistance) but nothing for halves, bits or sparse vectors.

func benchHalves(n int, seed uint64) []uint16 {
	h := make([]uint16, n)
	float32ToHalfGeneric(h, benchData(n + int(seed))[seed:])
	return h
}

func BenchmarkL1(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchData(dim), benchData(dim + 1)[1:]
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			b.Run("path=vek", func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = vek32.ManhattanDistance(x, y)
				}
			})
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = L1(x, y)
				}
			})
		})
	}
}

func BenchmarkHalf(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchHalves(dim, 1), benchHalves(dim, 2)
		f := make([]float32, dim)
		for _, k := range []struct {
			name string
			f    func(a, b []uint16) float32
		}{{"DotHalf", DotHalf}, {"SquaredL2Half", SquaredL2Half}, {"L1Half", L1Half}, {"CosineDistanceHalf", CosineDistanceHalf}} {
			b.Run(fmt.Sprintf("kernel=%s/dim=%d", k.name, dim), func(b *testing.B) {
				benchPaths(b, func(b *testing.B) {
					b.SetBytes(int64(4 * dim))
					for b.Loop() {
						sink = k.f(x, y)
					}
				})
			})
		}
		b.Run(fmt.Sprintf("kernel=CosineDistanceHalfQuery/dim=%d", dim), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				var q HalfQuery
				q.Set(x)
				b.SetBytes(int64(4 * dim))
				for b.Loop() {
					sink = CosineDistanceHalfQuery(&q, y)
				}
			})
		})
		b.Run(fmt.Sprintf("kernel=HalfToFloat32/dim=%d", dim), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(6 * dim))
				for b.Loop() {
					HalfToFloat32(f, x)
				}
			})
		})
		b.Run(fmt.Sprintf("kernel=Float32ToHalf/dim=%d", dim), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(6 * dim))
				for b.Loop() {
					Float32ToHalf(x, f)
				}
			})
		})
	}
}

func BenchmarkBits(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []int{1536, 3072, 64000} {
		x, y := make([]uint64, bits/64), make([]uint64, bits/64)
		for i := range x {
			x[i], y[i] = r.Uint64(), r.Uint64()
		}
		b.Run(fmt.Sprintf("kernel=Jaccard/bits=%d", bits), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(bits / 4))
				for b.Loop() {
					sink = Jaccard(x, y)
				}
			})
		})
		b.Run(fmt.Sprintf("kernel=Hamming/bits=%d", bits), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(bits / 4))
				for b.Loop() {
					sink = float32(Hamming(x, y))
				}
			})
		})
	}
}

// Sparse vectors of nnz non-zeros each, drawn from 30,000 dimensions (a SPLADE-like
// vocabulary), so a pair shares a few percent of its indices.
func BenchmarkSparse(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, nnz := range []int{100, 1000} {
		mk := func() ([]int32, []float32) {
			seen := map[int32]bool{}
			for len(seen) < nnz {
				seen[int32(1+r.IntN(30000))] = true
			}
			idx := make([]int32, 0, nnz)
			for i := range seen {
				idx = append(idx, i)
			}
			slices.Sort(idx)
			return idx, benchData(nnz)
		}
		ai, av := mk()
		bi, bv := mk()
		for _, k := range []struct {
			name string
			f    func(ai []int32, av []float32, bi []int32, bv []float32) float32
		}{{"SparseDot", SparseDot}, {"SparseSquaredL2", SparseSquaredL2}, {"SparseL1", SparseL1}, {"SparseCosineDistance", SparseCosineDistance}} {
			b.Run(fmt.Sprintf("kernel=%s/nnz=%d", k.name, nnz), func(b *testing.B) {
				for b.Loop() {
					sink = k.f(ai, av, bi, bv)
				}
			})
		}
	}
}
