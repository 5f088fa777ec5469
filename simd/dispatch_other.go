//go:build !amd64 && !arm64

package simd

var paths []pathEntry
