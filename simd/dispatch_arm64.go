package simd

var paths []pathEntry
