//go:build !amd64

package simd

// No prefetch kernel outside amd64 yet: arm64's PRFM would go in the hand-written
// kernels_arm64.s.
func prefetchRows(slab []uint32, stride int, rows []uint32, lines int) {}
