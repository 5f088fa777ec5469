package main

import (
	"sync/atomic"
	"unsafe"
)

// interruptFlag points at PostgreSQL's InterruptPending (a volatile sig_atomic_t, an int on
// every platform PostgreSQL supports), handed over by borealis_engine_init. The engine never
// clears it: after a call returns statusInterrupted, C runs CHECK_FOR_INTERRUPTS(), which
// raises the cancel or termination error once no Go frame is on the stack.
var interruptFlag atomic.Pointer[int32]

func setInterruptFlag(p unsafe.Pointer) { interruptFlag.Store((*int32)(p)) }

// interrupted reports whether PostgreSQL has an interrupt pending. It is cheap enough to call
// every few thousand distance computations; long loops call it at least every millisecond so
// statement_timeout and pg_cancel_backend act well within a second.
func interrupted() bool {
	p := interruptFlag.Load()
	return p != nil && atomic.LoadInt32(p) != 0
}
