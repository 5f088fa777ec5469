//go:build !linux

package hnsw

func populateWrite(addr, n uintptr) {}
