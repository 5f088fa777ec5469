package main

/*
#include <stddef.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

	"github.com/borealisdb/borealis/simd"
)

// abiVersion is bumped whenever an exported signature or status code changes; the C module
// refuses an engine whose ABI differs, so a half-upgraded install fails with a clear message.
const abiVersion = 10 // 10: index_unmap, index_free never waits for a build; 9: sparse code arena

// Status codes shared with pgext/src/engine.h.
const (
	statusOK          = 0
	statusInterrupted = 1
	statusError       = 2
)

// runtimePatch names the edits made to the Go runtime this engine was built with
// (internal/runtimepatch, set by the Makefile with -X); empty means the stock runtime.
var runtimePatch string

// lastError holds the message of the last failed call. Only the backend's own thread calls the
// engine, so one slot per process is enough.
var lastError string

// fail records err for borealis_engine_last_error (and whether the allocation guard refused,
// for borealis_engine_last_error_code) and returns statusError.
func fail(err error) C.int {
	lastError = err.Error()
	lastOutOfMemory = isOutOfMemory(err)
	return statusError
}

// guard turns a panic into statusError: a panic must never cross into C.
func guard(rc *C.int) {
	if r := recover(); r != nil {
		lastError = fmt.Sprintf("engine panic: %v\n%s", r, debug.Stack())
		lastOutOfMemory = false
		*rc = statusError
	}
}

// copyOut writes s into the caller's buffer, NUL-terminated and truncated to fit, and returns
// the full length of s so the caller can tell truncation happened.
func copyOut(s string, buf *C.char, size C.size_t) C.int {
	if buf != nil && size > 0 {
		dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size))
		n := copy(dst[:len(dst)-1], s)
		dst[n] = 0
	}
	return C.int(len(s))
}

//export borealis_engine_abi_version
func borealis_engine_abi_version() C.int { return abiVersion }

//export borealis_engine_init
func borealis_engine_init(interruptPending unsafe.Pointer) (rc C.int) {
	defer guard(&rc)
	setInterruptFlag(interruptPending)
	return statusOK
}

// borealis_engine_configure sets this backend's Go runtime deliberately rather than by
// default: procs build goroutines run Go code at once, plus one P for the backend's own thread
// (searches, inserts, the calls C makes during a build). That spare P is what lets the
// backend's thread enter Go while every build goroutine computes: with procs Ps it had to
// wait for sysmon to preempt one of them (async preemption is off), several thread wake-ups
// that take seconds when a higher-priority load starves the backend (hard rule 4). And
// memoryLimit bytes (borealis.engine_memory_limit) is both the soft limit past which the
// collector works harder and the allocation guard's budget (memguard.go). Graphs searched and
// built by backends live in the shared mapping, outside the Go heap; what the heap holds is
// scratch memory. C calls it again whenever the settings change.
//
//export borealis_engine_configure
func borealis_engine_configure(procs C.int, memoryLimit C.longlong) (rc C.int) {
	defer guard(&rc)
	if procs > 0 {
		runtime.GOMAXPROCS(int(procs) + 1)
	}
	if memoryLimit > 0 {
		debug.SetMemoryLimit(int64(memoryLimit))
		memBudget.Store(int64(memoryLimit))
	}
	return statusOK
}

//export borealis_engine_go_version
func borealis_engine_go_version(buf *C.char, size C.size_t) C.int {
	return copyOut(runtime.Version(), buf, size)
}

//export borealis_engine_last_error
func borealis_engine_last_error(buf *C.char, size C.size_t) C.int {
	return copyOut(lastError, buf, size)
}

// engineInfo is the document behind SQL's borealis_engine_info().
type engineInfo struct {
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	ABIVersion int    `json:"abi_version"`
	// SignalIsolation must be ok inside PostgreSQL (see signals.go).
	SignalIsolation signalIsolation `json:"signal_isolation"`
	SIMD            simd.CPUInfo    `json:"simd"`
	// Graphs this backend has open: mapped ones lie on the node's shared graph files (their
	// bytes are shared with every backend mapping them), heap ones are private (builds).
	MappedGraphs     int    `json:"mapped_graphs"`
	MappedGraphBytes int64  `json:"mapped_graph_bytes"`
	HeapGraphs       int    `json:"heap_graphs"`
	OpenScans        int    `json:"open_scans"`
	GoHeapBytes      uint64 `json:"go_heap_bytes"`
	GoMemoryLimit    int64  `json:"go_memory_limit"`
	GOMAXPROCS       int    `json:"gomaxprocs"`
	// RuntimePatch names the sysmon edits this engine's runtime carries ("" for none).
	RuntimePatch string `json:"runtime_patch"`
}

//export borealis_engine_info_json
func borealis_engine_info_json(buf *C.char, size C.size_t) (rc C.int) {
	defer guard(&rc)
	info := engineInfo{
		GoVersion:        runtime.Version(),
		GOOS:             runtime.GOOS,
		GOARCH:           runtime.GOARCH,
		ABIVersion:       abiVersion,
		SignalIsolation:  checkSignalIsolation(),
		SIMD:             simd.Info(),
		MappedGraphBytes: mappedBytes.Load(),
		GoMemoryLimit:    debug.SetMemoryLimit(-1),
		GOMAXPROCS:       runtime.GOMAXPROCS(0),
		RuntimePatch:     runtimePatch,
	}
	graphsMu.Lock()
	for _, g := range graphs {
		if g.x.Mapped() {
			info.MappedGraphs++
		} else {
			info.HeapGraphs++
		}
	}
	graphsMu.Unlock()
	scansMu.Lock()
	info.OpenScans = len(scans)
	scansMu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	info.GoHeapBytes = ms.HeapAlloc
	doc, err := json.Marshal(info)
	if err != nil {
		return -1
	}
	return copyOut(string(doc), buf, size)
}
