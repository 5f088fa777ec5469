//go:build !linux

package main

// threadCPUNs falls back to the wall clock where the thread CPU clock is not wired up.
func threadCPUNs() int64 { return wallNs() }
