package router

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The event loop: PgBouncer's I/O model for the steady state of a session.
//
// With a goroutine per direction, every message burst costs the Go scheduler a park and a
// wake-up through its netpoller (epoll_pwait, futex), which measured about half the router's
// CPU per pgbench -S transaction. The router therefore runs one event loop: a goroutine in
// epoll_wait (level-triggered) over the sockets of every session it holds, which for each
// readable socket does one read and one write to the other side, with the same in-place
// framing as the goroutine relay (relay.go: the process functions are shared). When a
// write would block, the rest waits in the session and reading its source pauses until the
// socket drains (EPOLLOUT). Written by hand over golang.org/x/sys/unix rather than with an
// event library because the loop must hand sessions back and forth to the goroutine relay at
// exact message boundaries, with their buffers.
//
// Only the steady state runs in the loop. A session leaves it (is ejected, with its buffers,
// pending bytes and sockets) for anything else: a mover or a crash snapshot stopping the
// backend at a boundary (the loop stops it there, as the goroutine relay does), the forward
// lock being held by a mover or a mover asking the client side to yield, the backend's end or
// an error (crash replay then runs as before). The relay goroutine takes the session back
// with its goroutines and, once a move or snapshot is over and both directions sit at a
// message boundary, puts it in the loop again. TLS clients stay with the goroutine relay.
//
// The sockets leave the Go runtime's netpoller while in the loop (their descriptors are
// duplicated and the net.Conns closed): otherwise every byte that arrives would also wake the
// runtime's own epoll. They come back as new net.Conns when the session leaves the loop.

const (
	dirClient = iota
	dirBackend
)

const (
	cmdAdd   = iota // start polling a session
	cmdKick         // a mover waits for the backend at a message boundary
	cmdClose        // the session is closed: close its sockets
	cmdStop         // the router is closed
)

type loopCmd struct {
	kind int
	ls   *loopSession
}

// eventLoop is one router's loop.
type eventLoop struct {
	epfd, wakefd int

	mu     sync.Mutex
	cmds   []loopCmd
	closed bool

	// schedulerWait: never wait raw (Config.SchedulerWait).
	schedulerWait bool
	// rawNow is set while the loop waits raw; rawSpells counts the times it started to.
	rawNow    atomic.Bool
	rawSpells atomic.Int64

	// ring is the io_uring the loop runs on (eventloop_uring.go); nil: epoll. Set before
	// newEventLoop returns, never changed after.
	ring *uring
	// noURing: use epoll (Config.NoIOURing).
	noURing bool

	// Loop goroutine only.
	byFD []*loopSession // by descriptor: descriptors are small integers, reused lowest first
	wbuf [8]byte        // the wake-up counter, read
	// The ring's loop: raw while it waits raw; recanceling counts sessions whose receives
	// could not be cancelled yet; live counts sessions in the ring; stopping once cmdStop ran.
	raw         bool
	recanceling int
	live        int
	stopping    bool
}

// loopSession is a session while in the loop. Everything but exit is the loop's own.
type loopSession struct {
	s       *session
	fd      [2]int
	cr      [2]*connReader
	process [2]processFunc
	pend    [2][]byte // bytes for fd[i] its socket did not take yet
	mask    [2]uint32
	bs      *backendStream
	cs      *clientStream
	gone    bool
	exit    chan loopExit
	// viaRing: the loop runs on io_uring; u is the session's state there.
	viaRing bool
	u       uringState
}

// loopExit is how a session left the loop.
type loopExit struct {
	// closed: the loop closed the sockets; the session is over.
	closed bool
	// backendErr is the backend's read error (io.EOF at its end) or the relay's, for the
	// goroutine relay to handle; nil when the session left for a mover.
	backendErr error
	fd         [2]int
	pend       [2][]byte
}

// loopWriter writes to one of a loop session's sockets without blocking: what the socket
// does not take waits in pend.
type loopWriter struct {
	ls *loopSession
	to int
}

func (w loopWriter) Write(b []byte) (int, error) {
	ls := w.ls
	if ls.viaRing || len(ls.pend[w.to]) > 0 {
		ls.pend[w.to] = append(ls.pend[w.to], b...)
		return len(b), nil
	}
	done := 0
	for done < len(b) {
		k, err := rawWrite(ls.fd[w.to], b[done:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return done, os.NewSyscallError("write", err)
		}
		done += k
	}
	if done < len(b) {
		ls.pend[w.to] = append(ls.pend[w.to][:0], b[done:]...)
	}
	return len(b), nil
}

func newEventLoop(schedulerWait, noURing bool) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &eventLoop{epfd: epfd, wakefd: wakefd, schedulerWait: schedulerWait, noURing: noURing}
	ready := make(chan struct{})
	go func() {
		// The ring is SINGLE_ISSUER: every call on it from this one thread.
		runtime.LockOSThread()
		onRing := l.startURing()
		close(ready)
		if onRing {
			l.runURing()
			return
		}
		runtime.UnlockOSThread()
		l.run()
	}()
	<-ready
	return l, nil
}

// submit queues a command for the loop; false when the loop is stopped.
func (l *eventLoop) submit(c loopCmd) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	if c.kind == cmdStop {
		l.closed = true
	}
	l.cmds = append(l.cmds, c)
	first := len(l.cmds) == 1
	l.mu.Unlock()
	if first {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(l.wakefd, one[:])
	}
	return true
}

// run is the loop: epoll_wait, then one read (and the writes it makes) per ready socket.
// While sessions are busy it waits raw, holding its P (rawwait.go); after a quiet spell of
// rawWaitIdle, or when no P can be spared, it waits through the scheduler.
// (Waiting for the epoll descriptor in the runtime's poller instead, so that an idle loop is
// a parked goroutine, was measured: it doubled the epoll calls and was not kept.)
func (l *eventLoop) run() {
	events := make([]unix.EpollEvent, 128)
	raw := false
	var quietSince time.Time // in a raw wait: the first empty return since the last event
	for {
		var n int
		var err error
		if raw {
			n, err = epollWaitRaw(l.epfd, events, rawWaitIdle)
			quiet := err == nil && n == 0 // a whole rawWaitIdle with nothing ready
			if err == unix.EINTR {
				// The runtime's preemption signal (every 10 ms while the loop holds its P)
				// restarts the wait: measure the quiet spell across such returns.
				if quietSince.IsZero() {
					quietSince = time.Now()
				} else if time.Since(quietSince) >= rawWaitIdle*time.Millisecond {
					quiet = true
				}
			} else if n > 0 {
				quietSince = time.Time{}
			}
			if quiet {
				quietSince = time.Time{}
				raw = false
				releaseRawWait() // before rawNow: whoever sees rawNow false sees the count down
				l.rawNow.Store(false)
				continue
			}
		} else {
			n, err = unix.EpollWait(l.epfd, events, -1)
			if err == nil && n > 0 && !l.schedulerWait && acquireRawWait() {
				raw = true
				l.rawNow.Store(true)
				l.rawSpells.Add(1)
			}
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			panic("router event loop: epoll_wait: " + err.Error())
		}
		if l.handle(events[:n]) {
			if raw {
				releaseRawWait()
				l.rawNow.Store(false)
			}
			unix.Close(l.epfd)
			return
		}
	}
}

// handle serves a batch of events; true when the loop is to stop.
func (l *eventLoop) handle(events []unix.EpollEvent) bool {
	for _, ev := range events {
		fd := int(ev.Fd)
		if fd == l.wakefd {
			_, _ = rawRead(l.wakefd, l.wbuf[:])
			if l.commands() {
				return true
			}
			continue
		}
		var ls *loopSession
		if fd < len(l.byFD) {
			ls = l.byFD[fd]
		}
		if ls == nil {
			continue // a session that left the loop earlier in this batch
		}
		dir := dirClient
		if fd == ls.fd[dirBackend] {
			dir = dirBackend
		}
		if ev.Events&unix.EPOLLOUT != 0 {
			l.flush(ls, dir)
		}
		if !ls.gone && ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.readable(ls, dir)
		}
		if !ls.gone {
			l.update(ls)
		}
	}
	return false
}

// commands runs the queued commands; true when the loop is to stop.
func (l *eventLoop) commands() bool {
	l.mu.Lock()
	cmds := l.cmds
	l.cmds = nil
	l.mu.Unlock()
	for _, c := range cmds {
		ls := c.ls
		switch c.kind {
		case cmdAdd:
			if ls.gone {
				continue
			}
			if l.ring != nil {
				for d := range 2 {
					for ls.fd[d] >= len(l.byFD) {
						l.byFD = append(l.byFD, nil)
					}
					l.byFD[ls.fd[d]] = ls
				}
				l.live++
				l.pumpURing(ls)
				continue
			}
			ok := true
			for d := range 2 {
				ls.mask[d] = unix.EPOLLIN
				if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ls.fd[d], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ls.fd[d])}); err != nil {
					ok = false
				}
				for ls.fd[d] >= len(l.byFD) {
					l.byFD = append(l.byFD, nil)
				}
				l.byFD[ls.fd[d]] = ls
			}
			if !ok {
				l.eject(ls, loopExit{backendErr: io.ErrUnexpectedEOF})
			}
		case cmdKick:
			if !ls.gone && ls.s.mv.stopping.Load() && ls.cr[dirBackend].n == 0 && ls.bs.f.left == 0 {
				l.eject(ls, loopExit{})
			}
		case cmdClose:
			if !ls.gone {
				l.end(ls)
			}
		case cmdStop:
			for _, ls := range l.byFD {
				if ls != nil && !ls.gone {
					l.end(ls)
				}
			}
			if l.ring == nil {
				unix.Close(l.wakefd) // run closes the epoll descriptor
			} // the ring's loop closes both once every session has left it
			return true
		}
	}
	return false
}

// readable reads once from ls's socket in direction dir and relays what came.
func (l *eventLoop) readable(ls *loopSession, dir int) {
	cr := ls.cr[dir]
	k, err := rawRead(ls.fd[dir], cr.buf[cr.n:])
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	switch {
	case err != nil:
		err = os.NewSyscallError("read", err)
	case k == 0:
		err = io.EOF
	}
	stop := false
	if err == nil {
		stop, err = cr.feed(k, ls.process[dir])
	}
	switch {
	case err != nil && dir == dirClient:
		// The client left, or forwarding failed: the session is over, as when the client
		// pump ends.
		l.end(ls)
	case err != nil:
		l.eject(ls, loopExit{backendErr: err})
	case stop:
		l.eject(ls, loopExit{})
	}
}

// flush writes what waits for ls's socket in direction dir.
func (l *eventLoop) flush(ls *loopSession, dir int) {
	p := ls.pend[dir]
	for len(p) > 0 {
		k, err := rawWrite(ls.fd[dir], p)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			l.end(ls)
			return
		}
		p = p[k:]
	}
	if len(p) == 0 {
		ls.pend[dir] = ls.pend[dir][:0]
	} else {
		ls.pend[dir] = append(ls.pend[dir][:0], p...)
	}
}

// update sets what the loop waits for on ls's sockets: reading a side pauses while the
// other side has bytes waiting, and a side with bytes waiting is watched for room.
func (l *eventLoop) update(ls *loopSession) {
	for d := range 2 {
		var want uint32
		if len(ls.pend[1-d]) == 0 {
			want |= unix.EPOLLIN
		}
		if len(ls.pend[d]) > 0 {
			want |= unix.EPOLLOUT
		}
		if want != ls.mask[d] {
			ls.mask[d] = want
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, ls.fd[d], &unix.EpollEvent{Events: want, Fd: int32(ls.fd[d])})
		}
	}
}

func (l *eventLoop) remove(ls *loopSession) {
	ls.gone = true
	for d := range 2 {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ls.fd[d], nil)
		if ls.fd[d] < len(l.byFD) && l.byFD[ls.fd[d]] == ls {
			l.byFD[ls.fd[d]] = nil
		}
	}
}

// eject hands ls back to its relay goroutine with its sockets and pending bytes.
func (l *eventLoop) eject(ls *loopSession, x loopExit) {
	if l.ring != nil {
		l.leaveURing(ls, x, false)
		return
	}
	l.remove(ls)
	x.fd, x.pend = ls.fd, ls.pend
	ls.exit <- x
}

// end closes ls's sockets: the session is over.
func (l *eventLoop) end(ls *loopSession) {
	if l.ring != nil {
		l.leaveURing(ls, loopExit{}, true)
		return
	}
	l.remove(ls)
	l.closeSession(ls)
}

// closeSession closes ls's sockets and tells its relay the session is over.
func (l *eventLoop) closeSession(ls *loopSession) {
	if ls.cs.locked {
		ls.cs.locked = false
		ls.s.mv.fwd.Unlock()
	}
	ls.s.clientDone.Store(true)
	unix.Close(ls.fd[0])
	unix.Close(ls.fd[1])
	ls.exit <- loopExit{closed: true}
}

// eventLoop returns the router's loop, started on first use; nil when the goroutine relay is
// configured or the loop cannot start.
func (r *Router) eventLoop() *eventLoop {
	if r.cfg.GoroutineRelay {
		return nil
	}
	r.loopOnce.Do(func() {
		l, err := newEventLoop(r.cfg.SchedulerWait, r.cfg.NoIOURing)
		if err == nil {
			r.loop = l
		}
	})
	return r.loop
}

// EventLoopSessions is the number of sessions the event loop carries now.
func (r *Router) EventLoopSessions() int64 { return r.inLoop.Load() }

// stopLoop stops the loop once every session is gone.
func (r *Router) stopLoop() {
	r.loopOnce.Do(func() {}) // no loop after this
	if r.loop != nil {
		r.loop.submit(loopCmd{kind: cmdStop})
	}
}

// loopConn reports whether c can be polled by the loop: a TCP or Unix socket.
func loopConn(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// dupFD duplicates c's socket descriptor (close-on-exec, still non-blocking).
func dupFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, unix.EINVAL
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return nfd, derr
}

// fdConn turns a descriptor the loop gave back into a net.Conn (in the runtime's poller).
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	c, err := net.FileConn(f)
	f.Close()
	return c, err
}

// runInLoop moves the session into the loop and waits until it leaves. entered is false
// when it could not enter (the goroutine relay carries on, nothing changed). Call with the
// client pump stopped and both directions at a message boundary.
func (s *session) runInLoop(bs *backendStream, cs *clientStream, bcr, ccr *connReader) (x loopExit, entered bool) {
	l := s.r.eventLoop()
	backend := s.currentBackend()
	if l == nil || !loopConn(s.client) || !loopConn(backend) {
		return x, false
	}
	cfd, err := dupFD(s.client)
	if err != nil {
		return x, false
	}
	bfd, err := dupFD(backend)
	if err != nil {
		unix.Close(cfd)
		return x, false
	}
	ls := &loopSession{s: s, fd: [2]int{cfd, bfd}, cr: [2]*connReader{ccr, bcr}, bs: bs, cs: cs, exit: make(chan loopExit, 1), viaRing: l.ring != nil}
	ls.process = [2]processFunc{cs.process, bs.process}
	bs.out = loopWriter{ls, dirClient}
	s.mv.out = loopWriter{ls, dirBackend}
	// Under loopMu: a mover that sets stopping and then looks for ls (wakeForStop) either
	// stops this entry or finds ls, and its kick (or a close) is queued after the add.
	s.loopMu.Lock()
	if s.closed.Load() || s.mv.stopping.Load() {
		closed := s.closed.Load()
		s.loopMu.Unlock()
		unix.Close(cfd)
		unix.Close(bfd)
		bs.out, s.mv.out = s.client, backend
		return loopExit{closed: closed}, closed
	}
	s.ls = ls
	// Out of the runtime's poller: the loop's duplicates keep the sockets open.
	s.client.Close()
	backend.Close()
	if !l.submit(loopCmd{kind: cmdAdd, ls: ls}) {
		ls.exit <- loopExit{backendErr: io.ErrUnexpectedEOF, fd: ls.fd}
	}
	s.loopMu.Unlock()
	s.r.inLoop.Add(1)
	defer s.r.inLoop.Add(-1)
	x = <-ls.exit
	if x.closed {
		s.loopMu.Lock()
		s.ls = nil
		s.loopMu.Unlock()
		return x, true
	}
	// Back to net.Conns in the runtime's poller.
	client, cerr := fdConn(x.fd[dirClient])
	back, berr := fdConn(x.fd[dirBackend])
	s.loopMu.Lock()
	s.ls = nil
	if cerr != nil || berr != nil || s.closed.Load() {
		s.loopMu.Unlock()
		for _, c := range []net.Conn{client, back} {
			if c != nil {
				c.Close()
			}
		}
		return loopExit{closed: true}, true
	}
	s.client = client
	s.moved.Store(&back)
	s.loopMu.Unlock()
	bs.out = client
	s.mv.out = back
	ccr.rebind(client)
	bcr.rebind(back)
	if len(x.pend[dirBackend]) > 0 {
		if _, err := back.Write(x.pend[dirBackend]); err != nil {
			s.close()
			return loopExit{closed: true}, true
		}
	}
	if len(x.pend[dirClient]) > 0 {
		if _, err := client.Write(x.pend[dirClient]); err != nil && x.backendErr == nil {
			x.backendErr = err
		}
	}
	return x, true
}

// wakeForStop tells whoever reads the backend that a mover waits for it (stopReader, after
// setting stopping): a read deadline on the current backend for the goroutine relay, a kick
// for the loop, and a wake-up for a relay waiting on its client pump. Under loopMu, so that a
// session entering or leaving the loop meanwhile either sees stopping or is found here. It
// returns the connection whose deadline it set.
func (s *session) wakeForStop() net.Conn {
	s.loopMu.Lock()
	ls := s.ls
	conn := s.currentBackend()
	_ = conn.SetReadDeadline(time.Unix(1, 0))
	if ls != nil && s.r.loop != nil {
		s.r.loop.submit(loopCmd{kind: cmdKick, ls: ls})
	}
	s.loopMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return conn
}

// closeInLoop closes s's sockets through the loop when s is in it; false when it is not.
// Call with s.loopMu held.
func (s *session) closeInLoop() bool {
	if s.ls == nil {
		return false
	}
	if s.r.loop == nil || !s.r.loop.submit(loopCmd{kind: cmdClose, ls: s.ls}) {
		return false
	}
	return true
}

// EventLoopIO names the event loop's I/O: "io_uring", "epoll", or "" when there is no loop
// (Config.GoroutineRelay, or no session yet).
func (r *Router) EventLoopIO() string {
	if r.cfg.GoroutineRelay {
		return ""
	}
	l := r.eventLoop()
	switch {
	case l == nil:
		return ""
	case l.ring != nil:
		return "io_uring"
	}
	return "epoll"
}
