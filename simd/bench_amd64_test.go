package simd

import (
	"fmt"
	"testing"
)

// BenchmarkDotInt8Kernels times the two amd64 int8 dot kernels on the same codes: the
// VPMADDUBSW one DotInt8 uses, and the widening one it falls back to when b holds -128.
func BenchmarkDotInt8Kernels(b *testing.B) {
	if Info().Path != "avx2" {
		b.Skip("needs the avx2 path")
	}
	for _, dim := range benchDims {
		x, y := benchCodes(dim, 1), benchCodes(dim, 2)
		b.Run(fmt.Sprintf("dim=%d/kernel=madd", dim), func(b *testing.B) {
			b.SetBytes(int64(2 * dim))
			for b.Loop() {
				d, _ := dotInt8MaddAVX2(&x[0], &y[0], dim)
				sink = float32(d)
			}
		})
		b.Run(fmt.Sprintf("dim=%d/kernel=wide", dim), func(b *testing.B) {
			b.SetBytes(int64(2 * dim))
			for b.Loop() {
				sink = float32(dotInt8WideAVX2(&x[0], &y[0], dim))
			}
		})
	}
}
