package main

import "C"

import (
	"time"

	"github.com/borealisdb/borealis/simd"
)

// borealis_engine_debug_spin burns CPU inside Go for up to ms milliseconds, computing distances
// like a real scan would, and polls the interrupt flag the way long engine calls must. It backs
// the test-only SQL function borealis_debug_spin(), which proves cancellation reaches Go work.
//
// Negative ms panic instead (borealis.debug_panic, a developer setting): -1 in the calling
// goroutine, -2 in a goroutine the engine starts, recovered as the build's are; both must come
// back as an error, never as a crash.
//
//export borealis_engine_debug_spin
func borealis_engine_debug_spin(ms C.longlong) (rc C.int) {
	defer guard(&rc)
	switch ms {
	case -1:
		panic("borealis.debug_panic in the calling goroutine")
	case -2:
		errc := make(chan error, 1)
		go func() {
			defer recoverGoroutine("a debug goroutine", func(err error) { errc <- err })
			panic("borealis.debug_panic in a goroutine")
		}()
		return fail(<-errc)
	}
	a := make([]float32, 1536)
	b := make([]float32, 1536)
	for i := range a {
		a[i], b[i] = float32(i%7), float32(i%5)
	}
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	var sink float32
	for time.Now().Before(deadline) {
		for range 1000 {
			sink += simd.Dot(a, b)
		}
		if interrupted() {
			return statusInterrupted
		}
	}
	spinSink = sink
	return statusOK
}

// spinSink keeps the compiler from discarding the spin loop's work.
var spinSink float32
