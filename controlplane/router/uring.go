package router

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A minimal io_uring, for the event loop (eventloop_uring.go).
//
// Written by hand over golang.org/x/sys/unix: the Go io_uring libraries (giouring,
// iouring-go, go-uring) are not maintained and are not served by the module proxy here, and
// the loop needs only setup, the two rings and four operations (recv, send, read, cancel).
// The ring is made with IORING_SETUP_SINGLE_ISSUER and IORING_SETUP_DEFER_TASKRUN: completion
// work runs only when the loop asks for events, in the loop's own thread (which it locks),
// so nothing interrupts pgbench, PostgreSQL or the loop to run it. Where the kernel lacks
// those (before 6.1), io_uring is off (seccomp, kernel.io_uring_disabled) or
// BOREALIS_ROUTER_IOURING=off, setup fails and the loop uses epoll.

const (
	iouSetupCQSize       = 1 << 3
	iouSetupSubmitAll    = 1 << 7
	iouSetupSingleIssuer = 1 << 12
	iouSetupDeferTaskrun = 1 << 13
	iouFeatSingleMmap    = 1 << 0
	iouFeatExtArg        = 1 << 8
	iouEnterGetEvents    = 1 << 0
	iouEnterExtArg       = 1 << 3
	iouOffSQRing         = 0
	iouOffSQEs           = 0x10000000
	iouOpRead            = 22
	iouOpSend            = 26
	iouOpRecv            = 27
	iouOpAsyncCancel     = 14
	iosqeIOLink          = 1 << 2
	iosqeCQESkipSuccess  = 1 << 6
	iouRecvSendPollFirst = 1 << 0
	iouRingEntries       = 256
	iouCQEntries         = 4096
	iouECanceled         = -int32(unix.ECANCELED)
	iouSqeSize           = 64
	iouCqeSize           = 16
	iouParamsSize        = 120
	iouSQOffHead         = 40 // offsets of the fields within io_uring_params
	iouCQOffHead         = 80
	iouSyscallEnter      = 426
	iouSyscallSetup      = 425
	iouGeteventsArgSize  = 24
	iouEnvSwitch         = "BOREALIS_ROUTER_IOURING" // =off: every router on epoll
	iouEnvOff            = "off"
)

// iouDisabledByEnv reports BOREALIS_ROUTER_IOURING=off.
func iouDisabledByEnv() bool {
	return strings.EqualFold(os.Getenv(iouEnvSwitch), iouEnvOff)
}

type iouSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

type iouCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// iouGeteventsArg is struct io_uring_getevents_arg (IORING_ENTER_EXT_ARG).
type iouGeteventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// uring is one ring, used by one locked thread.
type uring struct {
	fd       int
	mem      []byte // the SQ and CQ rings (one mapping, IORING_FEAT_SINGLE_MMAP)
	sqesMem  []byte
	sqHead   *uint32
	sqTail   *uint32
	sqMask   uint32
	sqArray  []uint32
	sqes     []iouSQE
	cqHead   *uint32
	cqTail   *uint32
	cqMask   uint32
	cqes     []iouCQE
	tail     uint32 // local SQ tail: SQEs up to it are prepared
	ts       unix.Timespec
	arg      iouGeteventsArg
	overflow *uint32
}

var errNoURing = errors.New("io_uring unavailable")

// newURing sets up a ring; the caller's thread must be locked (SINGLE_ISSUER).
func newURing() (*uring, error) {
	if iouDisabledByEnv() {
		return nil, errNoURing
	}
	var p [iouParamsSize]byte
	*(*uint32)(unsafe.Pointer(&p[4])) = iouCQEntries
	*(*uint32)(unsafe.Pointer(&p[8])) = iouSetupCQSize | iouSetupSubmitAll | iouSetupSingleIssuer | iouSetupDeferTaskrun
	fd, _, e := unix.Syscall(iouSyscallSetup, iouRingEntries, uintptr(unsafe.Pointer(&p[0])), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	u32 := func(off int) uint32 { return *(*uint32)(unsafe.Pointer(&p[off])) }
	features := u32(20)
	if features&iouFeatSingleMmap == 0 || features&iouFeatExtArg == 0 {
		unix.Close(int(fd))
		return nil, errNoURing
	}
	sqEntries, cqEntries := u32(0), u32(4)
	sq := func(i int) uint32 { return u32(iouSQOffHead + 4*i) } // head tail mask entries flags dropped array
	cq := func(i int) uint32 { return u32(iouCQOffHead + 4*i) } // head tail mask entries overflow cqes flags
	sqSize := sq(6) + sqEntries*4
	cqSize := cq(5) + cqEntries*iouCqeSize
	size := max(sqSize, cqSize)
	mem, err := unix.Mmap(int(fd), iouOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Close(int(fd))
		return nil, os.NewSyscallError("mmap", err)
	}
	sqesMem, err := unix.Mmap(int(fd), iouOffSQEs, int(sqEntries)*iouSqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Munmap(mem)
		unix.Close(int(fd))
		return nil, os.NewSyscallError("mmap", err)
	}
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&mem[off]) }
	r := &uring{
		fd:       int(fd),
		mem:      mem,
		sqesMem:  sqesMem,
		sqHead:   (*uint32)(at(sq(0))),
		sqTail:   (*uint32)(at(sq(1))),
		sqMask:   *(*uint32)(at(sq(2))),
		sqArray:  unsafe.Slice((*uint32)(at(sq(6))), sqEntries),
		sqes:     unsafe.Slice((*iouSQE)(unsafe.Pointer(&sqesMem[0])), sqEntries),
		cqHead:   (*uint32)(at(cq(0))),
		cqTail:   (*uint32)(at(cq(1))),
		cqMask:   *(*uint32)(at(cq(2))),
		cqes:     unsafe.Slice((*iouCQE)(at(cq(5))), cqEntries),
		overflow: (*uint32)(at(cq(4))),
	}
	r.tail = atomic.LoadUint32(r.sqTail)
	return r, nil
}

func (r *uring) close() {
	unix.Munmap(r.sqesMem)
	unix.Munmap(r.mem)
	unix.Close(r.fd)
}

// pending is the number of SQEs prepared and not yet consumed by the kernel.
func (r *uring) pending() uint32 { return r.tail - atomic.LoadUint32(r.sqHead) }

// sqe returns the next free SQE, zeroed, or nil when the SQ is full (submit first).
func (r *uring) sqe() *iouSQE {
	if r.pending() >= uint32(len(r.sqes)) {
		return nil
	}
	i := r.tail & r.sqMask
	e := &r.sqes[i]
	*e = iouSQE{}
	r.sqArray[i] = i
	r.tail++
	atomic.StoreUint32(r.sqTail, r.tail)
	return e
}

// enter submits the prepared SQEs and, with wait, waits for at least one completion, at
// most msec milliseconds (-1: no limit). raw makes the call without the Go scheduler
// (rawwait.go); otherwise the P is handed off while the call blocks.
func (r *uring) enter(wait bool, msec int, raw bool) error {
	toSubmit := r.pending()
	var flags, minComplete uintptr
	var argp, argsz uintptr
	if wait {
		flags, minComplete = iouEnterGetEvents, 1
		if msec >= 0 {
			r.ts = unix.NsecToTimespec(int64(msec) * 1e6)
			r.arg = iouGeteventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.ts)))}
			flags |= iouEnterExtArg
			argp, argsz = uintptr(unsafe.Pointer(&r.arg)), iouGeteventsArgSize
		}
	} else if toSubmit == 0 {
		return nil
	} else {
		// DEFER_TASKRUN: completion work runs only with GETEVENTS; min_complete 0 returns at once.
		flags = iouEnterGetEvents
	}
	var e syscall.Errno
	if raw {
		_, _, e = unix.RawSyscall6(iouSyscallEnter, uintptr(r.fd), uintptr(toSubmit), minComplete, flags, argp, argsz)
	} else {
		_, _, e = unix.Syscall6(iouSyscallEnter, uintptr(r.fd), uintptr(toSubmit), minComplete, flags, argp, argsz)
	}
	if e != 0 {
		return e
	}
	return nil
}

// reap calls f for every completion there is and returns how many.
func (r *uring) reap(f func(userData uint64, res int32)) int {
	n := 0
	for {
		head := atomic.LoadUint32(r.cqHead)
		if head == atomic.LoadUint32(r.cqTail) {
			return n
		}
		c := r.cqes[head&r.cqMask]
		atomic.StoreUint32(r.cqHead, head+1)
		f(c.userData, c.res)
		n++
	}
}

// uringUsable reports whether a ring can be set up here (for tests).
func uringUsable() bool {
	done := make(chan bool)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r, err := newURing()
		if err == nil {
			r.close()
		}
		done <- err == nil
	}()
	return <-done
}
