// Command engine is the Go half of the Borealis extension, built with -buildmode=c-shared into
// borealis_engine.so. The C module (pgext/) dlopens it lazily inside a backend or background
// worker, after fork and never in the postmaster, because a Go runtime does not survive fork().
//
// What it owns: the vector work handed to it as plain memory (building, searching, checking
// graphs), and reporting the SIMD path. What it must never do:
//   - call into PostgreSQL, directly or through callbacks: only the backend's own thread, in C,
//     touches PostgreSQL, and a PostgreSQL ERROR would longjmp across Go frames;
//   - keep running long without looking at PostgreSQL's interrupt flag (see interrupt.go);
//   - panic across the C boundary: every export recovers and returns a status code.
//
// Asynchronous preemption is off because it is driven by SIGURG, which PostgreSQL 15 uses for
// its latches. A //go:debug line cannot say so (asyncpreemptoff is not a registered go:debug
// setting) and the environment cannot either (PostgreSQL's process titles overwrite the
// environment strings the runtime reads), so the Makefile links the engine with
// -X runtime.godebugDefault=asyncpreemptoff=1. The C loader also blocks PostgreSQL's
// asynchronous signals while the runtime starts, so Go's own threads never receive them;
// signals.go checks that at run time.
//
// The runtime's monitor thread (sysmon) is patched at build time (internal/runtimepatch, through
// `go build -overlay`): unpatched, it mistakes every cgo callback for a goroutine that has run
// too long, retakes the backend's P while C runs and polls every 20 µs, a context switch each,
// which cost up to half a millisecond of CPU per query. borealis_engine_info() reports the patch
// as runtime_patch.
package main

func main() {}
