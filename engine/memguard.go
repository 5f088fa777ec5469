package main

/*
#include <stddef.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
)

// The allocation guard. A Go program that cannot get memory from the kernel dies with
// "fatal error: out of memory", which no recover() catches: inside a backend that is a crash,
// and PostgreSQL restarts the whole node. So before each allocation whose size follows from
// the data or the settings (a scan's visited set and heaps, an iterative scan's kept
// candidates, a build's per-element arrays, the connectivity pass), the engine checks it
// against this backend's budget, borealis.engine_memory_limit, and returns an error instead,
// which C raises as ERROR with ERRCODE_OUT_OF_MEMORY naming the setting. The budget is also
// the runtime's soft memory limit, so the collector works harder before the guard refuses.
//
// The check reads the heap's live objects from runtime/metrics (no stop-the-world), and when
// the request does not fit, collects once and reads again, since garbage is not a reason to
// refuse. Small fixed-size allocations are not guarded: they cannot be what exhausts memory.

// memBudget is the budget in bytes; 0 means none (tests of the engine alone).
var memBudget atomic.Int64

// lastOutOfMemory says whether the last failed call failed for the budget: C asks it
// (borealis_engine_last_error_code) to raise ERRCODE_OUT_OF_MEMORY instead of an internal error.
var lastOutOfMemory bool

// errOutOfMemory is a refused allocation.
type errOutOfMemory struct {
	what        string
	need, inUse int64
	budget      int64
}

func (e *errOutOfMemory) Error() string {
	return fmt.Sprintf("%s needs %s more, with %s in use, past this backend's borealis.engine_memory_limit of %s",
		e.what, mb(e.need), mb(e.inUse), mb(e.budget))
}

func mb(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d kB", (n+1023)>>10)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapInUse is the bytes of heap objects, live or not yet swept.
func heapInUse() int64 {
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(heapSample[0].Value.Uint64())
}

// reserve returns an *errOutOfMemory when allocating n more bytes for what would take the Go
// heap past the budget. n 0 checks what is in use (a structure that grew since the last check).
func reserve(what string, n int64) error {
	budget := memBudget.Load()
	if budget <= 0 {
		return nil
	}
	if n > budget {
		return &errOutOfMemory{what, n, heapInUse(), budget}
	}
	if heapInUse()+n <= budget {
		return nil
	}
	runtime.GC()
	if inUse := heapInUse(); inUse+n > budget {
		return &errOutOfMemory{what, n, inUse, budget}
	}
	return nil
}

// recoverGoroutine, deferred first in every goroutine the engine starts, turns a panic there
// into an error handed to report. An unrecovered panic in any goroutine ends the process: a
// backend crash, and PostgreSQL restarts the node. (guard does this for the calling one.)
func recoverGoroutine(what string, report func(error)) {
	if r := recover(); r != nil {
		report(fmt.Errorf("engine panic in %s: %v", what, r))
	}
}

// isOutOfMemory says whether err is, or wraps, a refused allocation.
func isOutOfMemory(err error) bool {
	var oom *errOutOfMemory
	return errors.As(err, &oom)
}

// borealis_engine_last_error_code is 1 when the last failed call was refused by the budget
// (C raises ERRCODE_OUT_OF_MEMORY), 0 otherwise. C finds it with dlsym and treats its absence
// (an older engine) as 0, so it is not part of the ABI check.
//
//export borealis_engine_last_error_code
func borealis_engine_last_error_code() C.int {
	if lastOutOfMemory {
		return 1
	}
	return 0
}
