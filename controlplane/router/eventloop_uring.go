package router

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop over io_uring: the same sessions, framing and hand-overs as the epoll loop
// (eventloop.go), with fewer system calls.
//
// With epoll a pgbench -S transaction costs the loop a read and a write each way plus most of
// an epoll_wait, about 4.8 system calls, and on this project's virtual machines a system call
// is dear (bench/results/router-iouring.md). Here each session keeps one receive armed per
// socket (a recv in the ring, into the session's own read buffer); when one completes, the
// loop frames the bytes as before, and the bytes to forward go into the ring as a send on the
// other socket, linked to the receive that re-arms the socket they came from. One
// io_uring_enter submits all of that and waits for the next completion, so a transaction
// costs about two system calls, fewer when several sessions are busy at once:
//
//   - the send is IOSQE_CQE_SKIP_SUCCESS (and MSG_WAITALL, so it is whole or failed): a send
//     that went out posts nothing, and the linked receive's completion says the send buffer
//     is free again. A failed or short send posts its completion and cancels the receive.
//   - the re-armed receive is IORING_RECVSEND_POLL_FIRST: the peer has just been sent a
//     request or an answer, so nothing is there yet and the kernel waits without trying.
//   - reading a socket pauses while the bytes it gave are still being sent (the send blocks
//     on a full socket), as the epoll loop pauses on EPOLLOUT.
//
// A session leaves the loop (for a mover, a crash or its end) only once the ring holds
// nothing of it: its armed receives are cancelled (bytes that a receive took meanwhile stay
// in the session's read buffer for the goroutine relay, which processes them first), its
// sends finish (or, when the session ends, are cancelled too), and then its sockets are handed
// back or closed. A receive linked behind a send that has not finished cannot be cancelled
// yet; the loop tries again every uringRecancel until it can.
//
// The loop goroutine is locked to its thread: the ring is SINGLE_ISSUER and DEFER_TASKRUN,
// so every call on it comes from that thread, and the kernel's completion work for the loop's
// sockets runs there, inside the loop's own io_uring_enter. The raw wait (rawwait.go) works
// as with epoll.

const (
	uopRecv   = 1
	uopSend   = 2
	uopCancel = 3
	uopWake   = 4
)

// uringRecancel is how often (ms) the loop retries cancelling a receive queued behind a send.
const uringRecancel = 2

func uringData(fd int, op uint64) uint64 { return uint64(fd)<<8 | op }

// uringState is a loop session's part in the ring.
type uringState struct {
	rArmed   [2]bool // a receive on fd[d] is in the ring
	linked   [2]bool // that receive is linked behind a send on fd[1-d]
	sBusy    [2]bool // a send on fd[d] is in the ring
	sbuf     [2][]byte
	ops      int // requests of this session in the ring
	leaving  bool
	closing  bool
	recancel bool
	x        loopExit
}

// startURing sets the ring up on the loop's (locked) thread; false: use epoll.
func (l *eventLoop) startURing() bool {
	if l.noURing {
		return false
	}
	r, err := newURing()
	if err != nil {
		return false
	}
	l.ring = r
	return true
}

// getSQE returns a free SQE, submitting what is prepared when the ring is full.
func (l *eventLoop) getSQE() *iouSQE {
	for {
		if e := l.ring.sqe(); e != nil {
			return e
		}
		if err := l.ring.enter(false, 0, l.raw); err != nil && err != unix.EINTR && err != unix.EBUSY && err != unix.EAGAIN {
			panic("router event loop: io_uring_enter: " + err.Error())
		}
	}
}

func (l *eventLoop) armWake() {
	e := l.getSQE()
	e.opcode, e.fd = iouOpRead, int32(l.wakefd)
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&l.wbuf[0]))), uint32(len(l.wbuf))
	e.userData = uringData(l.wakefd, uopWake)
}

// runURing is run for the ring.
func (l *eventLoop) runURing() {
	defer runtime.UnlockOSThread()
	l.armWake()
	var quietSince time.Time
	for {
		msec := -1
		if l.recanceling > 0 {
			msec = uringRecancel
		}
		var err error
		if l.raw {
			if msec < 0 {
				msec = rawWaitIdle
			}
			err = l.ring.enter(true, msec, true)
		} else {
			err = l.ring.enter(true, msec, false)
		}
		n := l.ring.reap(l.complete)
		if l.raw {
			quiet := false
			switch {
			case n > 0:
				quietSince = time.Time{}
			case quietSince.IsZero():
				quietSince = time.Now()
			case time.Since(quietSince) >= rawWaitIdle*time.Millisecond:
				quiet = true
			}
			if quiet {
				quietSince = time.Time{}
				l.raw = false
				releaseRawWait()
				l.rawNow.Store(false)
			}
		} else if n > 0 && !l.schedulerWait && acquireRawWait() {
			l.raw = true
			l.rawNow.Store(true)
			l.rawSpells.Add(1)
		}
		if err != nil && err != unix.EINTR && err != unix.ETIME && err != unix.EBUSY && err != unix.EAGAIN {
			panic("router event loop: io_uring_enter: " + err.Error())
		}
		if l.recanceling > 0 {
			l.recancelAll()
		}
		if l.stopping && l.live == 0 {
			if l.raw {
				releaseRawWait()
				l.rawNow.Store(false)
			}
			l.ring.close()
			unix.Close(l.wakefd)
			unix.Close(l.epfd)
			return
		}
	}
}

// complete handles one completion.
func (l *eventLoop) complete(ud uint64, res int32) {
	op, fd := ud&0xff, int(ud>>8)
	if op == uopWake {
		if !l.stopping {
			l.armWake()
		}
		if l.commands() {
			l.stopping = true
		}
		return
	}
	var ls *loopSession
	if fd < len(l.byFD) {
		ls = l.byFD[fd]
	}
	if ls == nil {
		return
	}
	u := &ls.u
	d := dirClient
	if fd == ls.fd[dirBackend] {
		d = dirBackend
	}
	switch op {
	case uopCancel:
		if res < 0 && res != iouECanceled && (u.rArmed[0] || u.rArmed[1] || u.closing && (u.sBusy[0] || u.sBusy[1])) {
			// Nothing to cancel yet: a receive still queued behind its send.
			if !u.recancel {
				u.recancel = true
				l.recanceling++
			}
		}
		return
	case uopRecv:
		u.ops--
		u.rArmed[d] = false
		if u.linked[d] {
			u.linked[d] = false
			if u.sBusy[1-d] {
				// The send it was linked behind went out whole (it posts nothing then; a
				// failed one posts first and is handled there).
				u.sBusy[1-d] = false
				u.sbuf[1-d] = u.sbuf[1-d][:0]
				u.ops--
			}
		}
		switch {
		case u.closing || res == iouECanceled:
		case u.leaving:
			if res > 0 {
				ls.cr[d].n += int(res) // for the goroutine relay, which processes them first
			}
		default:
			l.received(ls, d, res)
		}
	case uopSend:
		u.ops--
		u.sBusy[d] = false
		sent := u.sbuf[d]
		u.sbuf[d] = u.sbuf[d][:0]
		switch {
		case u.closing:
		case res >= 0 && int(res) < len(sent):
			// Short: the rest goes first in the next send.
			ls.pend[d] = append(append([]byte(nil), sent[res:]...), ls.pend[d]...)
		case res < 0 && !u.leaving:
			err := os.NewSyscallError("write", syscall.Errno(-res))
			if d == dirClient {
				l.end(ls)
			} else {
				l.eject(ls, loopExit{backendErr: err})
			}
		}
	}
	if !ls.gone {
		if !u.closing {
			l.pumpURing(ls)
		}
		l.finishLeaving(ls)
	}
}

// received relays what a receive on ls's socket in direction dir brought (res bytes, 0 at
// the end of the stream, or an error), as readable does for epoll.
func (l *eventLoop) received(ls *loopSession, dir int, res int32) {
	var err error
	switch {
	case res == -int32(unix.EAGAIN) || res == -int32(unix.EINTR):
		return // re-armed by pumpURing
	case res < 0:
		err = os.NewSyscallError("read", syscall.Errno(-res))
	case res == 0:
		err = io.EOF
	}
	stop := false
	if err == nil {
		stop, err = ls.cr[dir].feed(int(res), ls.process[dir])
	}
	switch {
	case err != nil && dir == dirClient:
		l.end(ls)
	case err != nil:
		l.eject(ls, loopExit{backendErr: err})
	case stop:
		l.eject(ls, loopExit{})
	}
}

// pumpURing puts into the ring what ls needs next: a send of the bytes waiting for each
// socket (linked to the receive that re-arms their source), and a receive on each socket
// whose forwarded bytes have gone out.
func (l *eventLoop) pumpURing(ls *loopSession) {
	u := &ls.u
	for t := range 2 {
		src := 1 - t
		if !u.sBusy[t] && len(ls.pend[t]) > 0 {
			u.sbuf[t], ls.pend[t] = ls.pend[t], u.sbuf[t][:0]
			e := l.getSQE()
			e.opcode, e.fd = iouOpSend, int32(ls.fd[t])
			e.addr, e.len = uint64(uintptr(unsafe.Pointer(&u.sbuf[t][0]))), uint32(len(u.sbuf[t]))
			e.opFlags = unix.MSG_WAITALL | unix.MSG_NOSIGNAL
			e.userData = uringData(ls.fd[t], uopSend)
			u.sBusy[t] = true
			u.ops++
			if !u.rArmed[src] && !u.leaving {
				e.flags = iosqeIOLink | iosqeCQESkipSuccess
				l.armRecv(ls, src, true)
			}
		}
		if !u.sBusy[t] && len(ls.pend[t]) == 0 && !u.rArmed[src] && !u.leaving {
			l.armRecv(ls, src, false)
		}
	}
}

// armRecv puts a receive on ls's socket in direction d into the ring, into the free part of
// its read buffer. linked: it follows the send just prepared, which has just handed the peer
// something to answer, so it waits for readiness first.
func (l *eventLoop) armRecv(ls *loopSession, d int, linked bool) {
	cr := ls.cr[d]
	e := l.getSQE()
	e.opcode, e.fd = iouOpRecv, int32(ls.fd[d])
	if space := cr.buf[cr.n:]; len(space) > 0 {
		e.addr, e.len = uint64(uintptr(unsafe.Pointer(&space[0]))), uint32(len(space))
	}
	if linked {
		e.ioprio = iouRecvSendPollFirst
	}
	e.userData = uringData(ls.fd[d], uopRecv)
	ls.u.rArmed[d], ls.u.linked[d] = true, linked
	ls.u.ops++
}

// cancel asks the ring to cancel the request with user data ud.
func (l *eventLoop) cancel(fd int, ud uint64) {
	e := l.getSQE()
	e.opcode, e.fd = iouOpAsyncCancel, -1
	e.addr = ud
	e.userData = uringData(fd, uopCancel)
}

// leaveURing starts ls's way out of the ring: x is delivered (or, closing, the sockets are
// closed) once no request of ls is left in it.
func (l *eventLoop) leaveURing(ls *loopSession, x loopExit, closing bool) {
	u := &ls.u
	if u.leaving && (u.closing || !closing) {
		return
	}
	if !u.leaving {
		u.x = x
	}
	u.leaving, u.closing = true, u.closing || closing
	l.cancelOps(ls)
	l.finishLeaving(ls)
}

func (l *eventLoop) cancelOps(ls *loopSession) {
	u := &ls.u
	for d := range 2 {
		if u.closing && u.sBusy[d] {
			l.cancel(ls.fd[d], uringData(ls.fd[d], uopSend))
		}
		if u.rArmed[d] {
			l.cancel(ls.fd[d], uringData(ls.fd[d], uopRecv))
		}
	}
}

// recancelAll cancels again what could not be cancelled before.
func (l *eventLoop) recancelAll() {
	for _, ls := range l.byFD {
		if ls != nil && !ls.gone && ls.u.recancel && ls.fd[dirClient] < len(l.byFD) && l.byFD[ls.fd[dirClient]] == ls {
			ls.u.recancel = false
			l.recanceling--
			l.cancelOps(ls)
		}
	}
}

// finishLeaving hands ls back or closes it once the ring holds nothing of it.
func (l *eventLoop) finishLeaving(ls *loopSession) {
	u := &ls.u
	if !u.leaving || u.ops > 0 || ls.gone {
		return
	}
	if u.recancel {
		u.recancel = false
		l.recanceling--
	}
	l.remove(ls)
	l.live--
	if u.closing {
		l.closeSession(ls)
		return
	}
	x := u.x
	x.fd, x.pend = ls.fd, ls.pend
	ls.exit <- x
}
