package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/viterin/vek/vek32"
)

// Benchmarks run every path plus two baselines in one run: "naive", the plain Go loop the
// package started with, and "vek", viterin/vek's kernels. SetBytes counts the bytes read.
// Compare with benchstat over -count runs; the machine is shared, so single runs are noisy.

var benchDims = []int{128, 384, 768, 1536, 3072}

const benchRows = 1000

func benchPaths(b *testing.B, f func(b *testing.B)) {
	prev := Info().Path
	defer func() { _ = Select(prev) }()
	for _, p := range Info().Available {
		if err := Select(p); err != nil {
			b.Fatal(err)
		}
		b.Run("path="+p, f)
	}
}

func benchData(n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

var sink float32

func naiveDot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func BenchmarkDot(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchData(dim), benchData(dim + 1)[1:]
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			b.Run("path=naive", func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = naiveDot(x, y)
				}
			})
			b.Run("path=vek", func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = vek32.Dot(x, y)
				}
			})
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = Dot(x, y)
				}
			})
		})
	}
}

func BenchmarkSquaredL2(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchData(dim), benchData(dim + 1)[1:]
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			b.Run("path=vek", func(b *testing.B) { // vek has Euclidean distance only: one sqrt more
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = vek32.Distance(x, y)
				}
			})
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = SquaredL2(x, y)
				}
			})
		})
	}
}

func BenchmarkCosineDistance(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchData(dim), benchData(dim + 1)[1:]
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			b.Run("path=vek", func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = 1 - vek32.CosineSimilarity(x, y)
				}
			})
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(8 * dim))
				for b.Loop() {
					sink = CosineDistance(x, y)
				}
			})
		})
	}
}

// benchCodes returns QuantizeInt8 codes of random floats, as an index stores them: in
// [-127, 127], so DotInt8 takes its fast path.
func benchCodes(n int, seed uint64) []int8 {
	v := make([]int8, n)
	QuantizeInt8(v, benchData(n + int(seed))[seed:])
	return v
}

func BenchmarkDotInt8(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchCodes(dim, 1), benchCodes(dim, 2)
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(2 * dim))
				for b.Loop() {
					sink = float32(DotInt8(x, y))
				}
			})
		})
	}
}

// BenchmarkDotInt8Minus128 is DotInt8 with one -128 in b, outside the quantizers' range:
// the fast kernel detects it and the exact widening kernel runs after it.
func BenchmarkDotInt8Minus128(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchCodes(dim, 1), benchCodes(dim, 2)
		y[dim/2] = -128
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(2 * dim))
				for b.Loop() {
					sink = float32(DotInt8(x, y))
				}
			})
		})
	}
}

func BenchmarkSquaredL2Int8(b *testing.B) {
	for _, dim := range benchDims {
		x, y := benchCodes(dim, 1), benchCodes(dim, 2)
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(2 * dim))
				for b.Loop() {
					sink = float32(SquaredL2Int8(x, y))
				}
			})
		})
	}
}

// Batches of 1,000 rows: 0.5 MB at 128 dims (L2-resident) to 12 MB at 3,072 (out of L2).
func BenchmarkBatch(b *testing.B) {
	for _, dim := range benchDims {
		q, data := benchData(dim), benchData(dim*benchRows)
		out := make([]float32, benchRows)
		rows := make([]uint32, 32) // an HNSW neighbour list
		for i := range rows {
			rows[i] = uint32(i * 31 % benchRows)
		}
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			b.Run("kernel=DotBatch/path=vek", func(b *testing.B) {
				b.SetBytes(int64(4 * dim * benchRows))
				for b.Loop() {
					for i := range out {
						out[i] = vek32.Dot(q, data[i*dim:(i+1)*dim])
					}
				}
			})
			for _, k := range []struct {
				name string
				f    func(q, data, out []float32)
			}{{"DotBatch", DotBatch}, {"SquaredL2Batch", SquaredL2Batch}, {"CosineDistanceBatch", CosineDistanceBatch}} {
				b.Run("kernel="+k.name, func(b *testing.B) {
					benchPaths(b, func(b *testing.B) {
						b.SetBytes(int64(4 * dim * benchRows))
						for b.Loop() {
							k.f(q, data, out)
						}
					})
				})
			}
			b.Run("kernel=SquaredL2Gather32", func(b *testing.B) {
				benchPaths(b, func(b *testing.B) {
					b.SetBytes(int64(4 * dim * len(rows)))
					for b.Loop() {
						SquaredL2Gather(q, data, rows, out[:len(rows)])
					}
				})
			})
		})
	}
}

// BenchmarkGatherCold gathers 32 random rows of a 50,000-row slab (293 MiB at 1,536 dims,
// far beyond any cache), as an HNSW build's search does: each row comes from memory. The
// amd64 gather kernels prefetch the next row while summing the current one; compare with
// the in-cache BenchmarkBatch rows for the same dims to see what memory costs.
func BenchmarkGatherCold(b *testing.B) {
	const slabRows = 50000
	for _, dim := range []int{128, 1536} {
		q, data := benchData(dim), benchData(dim*slabRows)
		r := rand.New(rand.NewPCG(1, 2))
		idx := make([]uint32, 32*1024)
		for i := range idx {
			idx[i] = uint32(r.IntN(slabRows))
		}
		out := make([]float32, 32)
		b.Run(fmt.Sprintf("dim=%d/kernel=DotGather32", dim), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(int64(4 * dim * 32))
				i := 0
				for b.Loop() {
					DotGather(q, data, idx[i*32:(i+1)*32], out)
					i = (i + 1) % 1024
				}
			})
		})
	}
}

// BenchmarkHalfQueryCold scores a prepared half query against 32 random rows of a
// 40,000-row slab (117 MiB at 1,536 dims, beyond any cache), one after another as a search
// scores a node's neighbours: with and without prefetching the next row.
func BenchmarkHalfQueryCold(b *testing.B) {
	const slabRows, dim = 40000, 1536
	slab := make([]uint16, dim*slabRows)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range slab {
		slab[i] = uint16(0x3000 + r.IntN(0x0c00))
	}
	var q HalfQuery
	q.Set(slab[:dim])
	idx := make([]int, 32*1024)
	for i := range idx {
		idx[i] = r.IntN(slabRows) * dim
	}
	row := func(o int) []uint16 { return slab[o : o+dim : o+dim] }
	for _, next := range []bool{false, true} {
		b.Run(fmt.Sprintf("dim=%d/next=%v", dim, next), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				b.SetBytes(2 * dim * 32)
				i := 0
				for b.Loop() {
					ids := idx[i*32 : (i+1)*32]
					for j, o := range ids {
						if next {
							n := o
							if j+1 < len(ids) {
								n = ids[j+1]
							}
							sink = CosineDistanceHalfQueryNext(&q, row(o), row(n))
						} else {
							sink = CosineDistanceHalfQuery(&q, row(o))
						}
					}
					i = (i + 1) % 1024
				}
			})
		})
	}
}
