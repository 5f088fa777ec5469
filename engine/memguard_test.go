package main

import (
	"runtime"
	"strings"
	"testing"
)

// The guard reads the real heap: live objects count against the budget, garbage does not, and
// a request bigger than the whole budget is refused without looking.
func TestReserveReadsTheLiveHeap(t *testing.T) {
	defer memBudget.Store(memBudget.Load())
	// Margins of tens of MB: goroutines of earlier tests may still allocate or free a little.
	runtime.GC()
	memBudget.Store(heapInUse() + 64<<20)
	if err := reserve("a small thing", 1<<20); err != nil {
		t.Fatalf("1 MB within a budget 64 MB above the live heap: %v", err)
	}
	if err := reserve("a huge thing", 1<<40); err == nil || !isOutOfMemory(err) ||
		!strings.Contains(err.Error(), "a huge thing") || !strings.Contains(err.Error(), "borealis.engine_memory_limit") {
		t.Fatalf("1 TB: %v", err)
	}

	held := make([]byte, 64<<20) // live: counts
	for i := range held {
		held[i] = byte(i)
	}
	runtime.GC()
	memBudget.Store(heapInUse() + 16<<20)
	if err := reserve("32 MB more", 32<<20); err == nil {
		t.Fatal("32 MB more with 16 MB of headroom: not refused")
	}
	runtime.KeepAlive(held)
	held = nil

	// Now the 64 MB are garbage: reserve collects before refusing.
	if err := reserve("32 MB more", 32<<20); err != nil {
		t.Fatalf("32 MB after 64 MB became garbage: %v", err)
	}

	memBudget.Store(0)
	if err := reserve("anything", 1<<40); err != nil {
		t.Fatalf("no budget: %v", err)
	}
}

// fail marks a refused allocation for C (ERRCODE_OUT_OF_MEMORY) and nothing else; a panic in
// the calling goroutine or in a goroutine the engine starts comes back as an error.
func TestOutOfMemoryAndPanicsBecomeErrors(t *testing.T) {
	defer memBudget.Store(memBudget.Load())
	memBudget.Store(1 << 20)
	if rc := fail(reserve("a scan", 2<<20)); rc != statusError || borealis_engine_last_error_code() != 1 {
		t.Fatalf("refused allocation: rc %d, code %d", rc, borealis_engine_last_error_code())
	}
	for _, ms := range []int64{-1, -2} {
		if rc := borealis_engine_debug_spin(_Ctype_longlong(ms)); rc != statusError || borealis_engine_last_error_code() != 0 ||
			!strings.Contains(lastError, "engine panic") {
			t.Fatalf("debug panic %d: rc %d, code %d, %q", ms, rc, borealis_engine_last_error_code(), lastError)
		}
	}
}
