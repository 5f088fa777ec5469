package router

import (
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop's system calls, made without telling the Go scheduler.
//
// A system call made the ordinary way (unix.Read, unix.EpollWait: entersyscall and
// exitsyscall around it) lets the scheduler take the goroutine's P away while the call blocks.
// For the loop's blocking epoll_wait that is what costs: once the P is taken (sysmon retakes a
// P that sat in a system call, and with every P idle goes into its deep sleep), the return
// from epoll_wait has to find a P again and wake sysmon, which then polls every 20 µs for a
// while. With pgbench -S that measured about one nanosleep and half a futex per transaction
// on top of PgBouncer's read, write and epoll_wait (bench/results/router-pgbouncer.md).
//
// So while sessions are busy the loop waits in epoll_wait as a raw system call
// (unix.RawSyscall6: no entersyscall) and keeps its P, like a goroutine that computes: the
// return from the wait is a plain return, with nothing to wake. Its reads and writes, which
// never block (the sockets are non-blocking), are raw calls too. What that costs, and how it
// is kept safe:
//
//   - The P is busy while the loop waits, so the loop waits this way only while there are
//     other Ps for everything else: at most GOMAXPROCS-1 loops of the process at once (one on
//     a 2-CPU machine; none with GOMAXPROCS=1, where the loop waits the ordinary way).
//   - The scheduler sees a goroutine that runs for ever: sysmon stays awake (a 10 ms tick
//     rather than its deep sleep) and preempts the loop every 10 ms with a signal (SIGURG),
//     which ends the epoll_wait with EINTR; the loop is then preempted at its next function
//     call and scheduled again. About a hundred wake-ups a second, against one nanosleep per
//     transaction before.
//   - Stopping the world (a GC phase, a stack scan) works the same way: the runtime signals
//     the loop's thread and the wait returns at once. With GODEBUG=asyncpreemptoff=1 there is
//     no such signal, so the loop never waits raw then.
//   - A quiet spell gives the P back: rawWaitIdle with nothing ready (a raw wait's timeout,
//     measured across the EINTRs of the preemption signal, which restart the wait every
//     10 ms) switches the loop to the ordinary blocking wait, with no timeout, until sessions
//     are busy again. An idle router costs nothing.
//
// The goroutine is not locked to its thread (runtime.LockOSThread): a locked goroutine that is
// preempted hands its P to another thread and sleeps until it is scheduled again (two futex
// calls per preemption), while an unlocked one just goes round the scheduler on its own P.

// rawWaitIdle is how long (ms) a raw wait with nothing ready lasts before the loop gives its
// P back and waits the ordinary way.
const rawWaitIdle = 100

// rawLoops is how many event loops of the process wait raw now.
var rawLoops atomic.Int32

// rawWaitAllowed is false when the runtime cannot interrupt a raw wait (no preemption signal).
var rawWaitAllowed = !strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1")

// acquireRawWait reports whether one more loop may wait raw, and counts it when so.
func acquireRawWait() bool {
	if !rawWaitAllowed {
		return false
	}
	limit := int32(runtime.GOMAXPROCS(0) - 1)
	for {
		n := rawLoops.Load()
		if n >= limit {
			return false
		}
		if rawLoops.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func releaseRawWait() { rawLoops.Add(-1) }

// epollWaitRaw is epoll_wait without the scheduler. Not inlined: the loop must pass through a
// function prologue between two waits, where a preemption request (the runtime's signal
// ended the wait with EINTR) is honoured.
//
//go:noinline
func epollWaitRaw(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawRead is read(2) on a non-blocking descriptor, without the scheduler.
func rawRead(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// rawWrite is write(2) on a non-blocking descriptor, without the scheduler.
func rawWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
