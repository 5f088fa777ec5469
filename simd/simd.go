// Package simd owns the distance kernels of the vector engine. (Skeleton: the simd issue fills it.)
package simd

import "runtime"

// CPUInfo says which kernel path is in use and what the CPU offers.
type CPUInfo struct {
	Path     string   `json:"path"`
	Arch     string   `json:"arch"`
	CPU      string   `json:"cpu"`
	Features []string `json:"features"`
}

// Info reports the kernel path chosen at init and the CPU features seen.
func Info() CPUInfo { return CPUInfo{Path: "generic", Arch: runtime.GOARCH} }

// Dot returns the inner product of a and b.
func Dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// SquaredL2 returns the squared Euclidean distance between a and b.
func SquaredL2(a, b []float32) float32 {
	var s float32
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}
