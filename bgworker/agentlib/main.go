// Command agentlib is the Go half of the Borealis node agent, built with -buildmode=c-shared
// into borealis_agent.so. The agent's background worker (pgext/src/agent_worker.c) dlopens it
// after fork, in the worker process only, with PostgreSQL's asynchronous signals blocked while
// the runtime starts; it is linked with asyncpreemptoff=1 as the runtime's GODEBUG default,
// like the engine (see the Makefile and mk/agent.mk), so no Go thread ever takes SIGURG.
//
// It owns the translation between the C structs of pgext/src/agent_abi.h and package
// bgworker. It must never call into PostgreSQL, panic across the C boundary (every export
// recovers), or import the index code (simd, hnsw, engine).
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../pgext/src
#include "agent_abi.h"
*/
import "C"

import (
	"fmt"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/borealisdb/borealis/bgworker"
)

func main() {}

const abiVersion = C.BOREALIS_AGENT_ABI

// The worker's one thread makes every call, so plain package state is enough.
var (
	sampler   *bgworker.Sampler
	lastError string
)

func guard(rc *C.int) {
	if r := recover(); r != nil {
		lastError = fmt.Sprintf("agent panic: %v\n%s", r, debug.Stack())
		*rc = C.AGENT_ERROR
	}
}

//export borealis_agent_abi_version
func borealis_agent_abi_version() C.int { return abiVersion }

//export borealis_agent_init
func borealis_agent_init(postmasterPID C.int, clockTicks, cpus C.double) (rc C.int) {
	defer guard(&rc)
	usable := bgworker.UsableCPUs("/proc", "/sys/fs/cgroup", int(postmasterPID), float64(cpus))
	s, err := bgworker.NewSampler("/proc", int(postmasterPID), float64(clockTicks), usable)
	if err != nil {
		lastError = err.Error()
		return C.AGENT_ERROR
	}
	sampler = s
	return C.AGENT_OK
}

var sessionStates = map[C.int32_t]bgworker.SessionState{
	C.AGENT_SESSION_OTHER:        bgworker.StateOther,
	C.AGENT_SESSION_ACTIVE:       bgworker.StateActive,
	C.AGENT_SESSION_IDLE:         bgworker.StateIdle,
	C.AGENT_SESSION_IDLE_IN_XACT: bgworker.StateIdleInTransaction,
}

func seconds(s C.double) time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// borealis_agent_sample measures the node and decides on the sessions C read. If /proc
// cannot be read the session part is still filled, with cpu_ok 0 and the reason in last_error.
//
//export borealis_agent_sample
func borealis_agent_sample(threshold C.double, sessions *C.AgentSession, n C.int, prepared C.int, out *C.AgentSnapshot) (rc C.int) {
	defer guard(&rc)
	if sampler == nil {
		lastError = "borealis_agent_sample called before borealis_agent_init"
		return C.AGENT_ERROR
	}
	if n < 0 || prepared < 0 || (n > 0 && sessions == nil) || out == nil {
		lastError = fmt.Sprintf("borealis_agent_sample: bad arguments (n=%d, prepared=%d)", n, prepared)
		return C.AGENT_ERROR
	}
	var in []C.AgentSession
	if n > 0 {
		in = unsafe.Slice(sessions, int(n))
	}
	list := make([]bgworker.Session, len(in))
	for i, cs := range in {
		list[i] = bgworker.Session{
			State:          sessionStates[cs.state],
			QueryAge:       seconds(cs.query_seconds),
			TransactionAge: seconds(cs.xact_seconds),
			TempTables:     cs.flags&C.AGENT_SESSION_TEMP_TABLES != 0,
			ExplicitLocks:  cs.flags&C.AGENT_SESSION_EXPLICIT_LOCKS != 0,
			AdvisoryLocks:  cs.flags&C.AGENT_SESSION_ADVISORY_LOCKS != 0,
			HeldCursors:    cs.flags&C.AGENT_SESSION_HELD_CURSORS != 0,
		}
	}
	sum := bgworker.Decide(list, int(prepared), seconds(threshold))
	*out = C.AgentSnapshot{
		connections_active:              C.int32_t(sum.Active),
		connections_idle:                C.int32_t(sum.Idle),
		connections_idle_in_transaction: C.int32_t(sum.IdleInTransaction),
		temp_table_sessions:             C.int32_t(sum.TempTableSessions),
		explicit_lock_sessions:          C.int32_t(sum.ExplicitLockSessions),
		advisory_lock_sessions:          C.int32_t(sum.AdvisoryLockSessions),
		held_cursor_sessions:            C.int32_t(sum.HeldCursorSessions),
		prepared_transactions:           C.int32_t(sum.PreparedTransactions),
		blockers:                        C.uint32_t(sum.Blockers),
		oldest_query_seconds:            C.double(sum.OldestQuery.Seconds()),
		oldest_transaction_seconds:      C.double(sum.OldestTransaction.Seconds()),
	}
	if sum.ScalingPoint() {
		out.scaling_point = 1
	}
	usage, err := sampler.Sample(time.Now())
	if err != nil {
		lastError = err.Error()
		return C.AGENT_OK
	}
	out.cpu_ok = 1
	out.cpu_percent_1m = C.double(usage.CPUPercent1m)
	out.cpu_percent_5m = C.double(usage.CPUPercent5m)
	out.memory_bytes = C.int64_t(usage.MemoryBytes)
	return C.AGENT_OK
}

//export borealis_agent_last_error
func borealis_agent_last_error(buf *C.char, size C.size_t) C.int {
	if buf != nil && size > 0 {
		dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size))
		n := copy(dst[:len(dst)-1], lastError)
		dst[n] = 0
	}
	return C.int(len(lastError))
}
