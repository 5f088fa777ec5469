package router

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// The relay: how a session's bytes move once it is routed.
//
// Each direction is one goroutine that reads its socket a large buffer at a time and writes
// what it read to the other side in one write: no copy into per-message buffers, no write per
// message. Message boundaries are followed in place (frameScan): only the 5-byte headers are
// looked at, plus the few bodies the router must see — ReadyForQuery (transaction state),
// BackendKeyData (replaced by the router's own key) and, for a session that could be replayed
// after a crash, an ErrorResponse (a shutdown FATAL is held back, recover.go). Everything else,
// a DataRow split over two reads included, passes through as bytes.
//
// On a socket the read runs inside the runtime poller's callback (syscall.RawConn.Read) and
// reads until the socket says EAGAIN before it goes back to the poller. It once went back as
// soon as a read returned less than the buffer, to save that last read, on the grounds that a
// short read had emptied the receive queue: it had emptied the data, but not the end of the
// stream behind it, which only the next read reports. The poller is edge-triggered and merges
// the edges that arrive before the woken goroutine runs, so a backend that sent a last message
// and closed (a notice, then exit: what every backend does in a crash restart) left the relay
// parked for ever on a dead socket, with no crash replay and a client that hung
// (TestConnReaderSeesEndAfterData: most of 300 such readers hung). TLS clients (and
// in-memory pipes in tests) use plain Read.
//
// A mover (move.go) stops the backend direction with a read deadline; the relay then
// finishes any message it has begun (an asynchronous NotificationResponse or ParameterStatus
// that arrived at that instant) and parks only at a message boundary, so a move or a crash
// snapshot can no longer catch the stream mid-message. The client direction forwards under
// the session's forward lock, taken once per buffer (and held while a message is half
// forwarded), and stops before a message that would start a new request when a mover asked
// it to yield.

// relayBufSize is each direction's read buffer.
const relayBufSize = 64 << 10

// maxTrackedParam bounds the ParameterStatus the backend direction decodes for a pooled
// session; a larger one makes the session's backend unfit for the pool.
const maxTrackedParam = 8 << 10

// maxHeldError bounds the ErrorResponse the backend direction holds back for a replayable
// session; a shutdown FATAL is far smaller.
const maxHeldError = 16 << 10

var errBadFrame = errors.New("invalid message length")

// connReader reads a connection a buffer at a time for process, which consumes a prefix of
// what it is given; the rest (an incomplete header or message it must see whole) is kept at
// the front of the buffer for the next read.
type connReader struct {
	c   net.Conn
	rc  syscall.RawConn // nil: plain Read
	buf []byte
	n   int // bytes kept from the last read
}

func newConnReader(c net.Conn) *connReader {
	cr := &connReader{buf: make([]byte, relayBufSize)}
	cr.reset(c)
	return cr
}

// reset makes cr read c, keeping its buffer (empty: the stream was at a message boundary).
func (cr *connReader) reset(c net.Conn) {
	cr.c, cr.rc, cr.n = c, nil, 0
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			cr.rc = rc
		}
	}
}

// processFunc consumes a prefix of b; stop ends the read loop (the caller decides what next).
type processFunc func(b []byte) (used int, stop bool, err error)

// feed processes the kept bytes and k new ones after them.
func (cr *connReader) feed(k int, process processFunc) (bool, error) {
	total := cr.n + k
	used, stop, err := process(cr.buf[:total])
	if used > 0 && used < total {
		copy(cr.buf, cr.buf[used:total])
	}
	cr.n = total - used
	return stop, err
}

// rebind makes cr read c from now on, keeping the bytes it holds.
func (cr *connReader) rebind(c net.Conn) {
	n := cr.n
	cr.reset(c)
	cr.n = n
}

// prefill puts bytes already read by someone else (a mover's reader) in front of the next read.
func (cr *connReader) prefill(br *bufio.Reader) {
	if br == nil {
		return
	}
	for br.Buffered() > 0 && cr.n < len(cr.buf) {
		b, _ := br.Peek(min(br.Buffered(), len(cr.buf)-cr.n))
		cr.n += copy(cr.buf[cr.n:], b)
		br.Discard(len(b))
	}
}

// run processes the kept bytes, then reads until process says stop (nil) or a read or
// process fails (that error; io.EOF at the end of the stream).
func (cr *connReader) run(process processFunc) error {
	if cr.n > 0 {
		if stop, err := cr.feed(0, process); stop || err != nil {
			return err
		}
	}
	if cr.rc == nil {
		for {
			k, err := cr.c.Read(cr.buf[cr.n:])
			if k > 0 {
				if stop, perr := cr.feed(k, process); stop || perr != nil {
					return perr
				}
			}
			if err != nil {
				return err
			}
		}
	}
	var ferr error
	err := cr.rc.Read(func(fd uintptr) bool {
		for {
			k, err := syscall.Read(int(fd), cr.buf[cr.n:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return false
			case err != nil:
				ferr = os.NewSyscallError("read", err)
				return true
			case k == 0:
				ferr = io.EOF
				return true
			}
			stop, perr := cr.feed(k, process)
			if stop || perr != nil {
				ferr = perr
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

// frameScan follows message boundaries across buffers: left is what remains of a message
// whose start was already passed on.
type frameScan struct{ left int }

// skip passes over the rest of a message begun in an earlier buffer; it returns the new
// position in b.
func (f *frameScan) skip(b []byte, pos int) int {
	k := min(f.left, len(b)-pos)
	f.left -= k
	return pos + k
}

// header reads the message header at b[pos:]: ok is false when fewer than 5 bytes are there.
func header(b []byte, pos int) (typ byte, n int, ok bool) {
	if len(b)-pos < 5 {
		return 0, 0, false
	}
	return b[pos], int(int32(binary.BigEndian.Uint32(b[pos+1:]))) - 4, true
}

// backendStream is the backend→client direction of a session.
type backendStream struct {
	s    *session
	st   *endpointStats
	out  io.Writer // the client
	f    frameScan
	held []byte // a shutdown FATAL held back (recover.go)
	last byte   // type of the last backend message seen
}

// write sends b to the client.
func (bs *backendStream) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	bs.st.bytesOut.Add(int64(len(b)))
	_, err := bs.out.Write(b)
	return err
}

// process relays the complete and partial messages in b to the client, noting ReadyForQuery,
// replacing BackendKeyData and holding back a replayable session's shutdown FATAL. It stops at
// a message boundary once a mover asked the reader to park.
func (bs *backendStream) process(b []byte) (int, bool, error) {
	s := bs.s
	pos, from := 0, 0
	fail := func(err error) (int, bool, error) {
		_ = bs.write(b[from:pos])
		return pos, false, err
	}
scan:
	for pos < len(b) {
		if bs.f.left > 0 {
			pos = bs.f.skip(b, pos)
			continue
		}
		typ, n, ok := header(b, pos)
		if !ok {
			break
		}
		if n < 0 {
			return fail(errBadFrame)
		}
		if bs.held != nil {
			// The backend lives on after its FATAL after all: pass the FATAL on.
			if err := bs.write(b[from:pos]); err != nil {
				return pos, false, err
			}
			from = pos
			held := bs.held
			bs.held = nil
			if err := bs.write(held); err != nil {
				return pos, false, err
			}
		}
		bs.last = typ
		switch typ {
		case 'Z':
			if n != 1 {
				return fail(errBadFrame)
			}
			if len(b)-pos < 6 {
				break scan
			}
			s.txStatus.Store(uint32(b[pos+5]))
			s.mv.readyForQuery()
			if s.holdForKernel(bs, b[pos+5], pos+6 == len(b)) {
				// Sent once the session is in the kernel (kernelpath.go).
				return pos + 6, true, bs.write(b[from:pos])
			}
			pos += 6
		case 'K':
			// 4-byte pid and a key of 4 bytes (protocol 3.0) up to 256 (3.2).
			if n < 8 || n > 4+256 {
				return fail(errBadFrame)
			}
			if len(b)-pos < 5+n {
				break scan
			}
			if err := bs.write(b[from:pos]); err != nil {
				return pos, false, err
			}
			body := b[pos+5 : pos+5+n]
			out, err := s.r.issueKey(s, binary.BigEndian.Uint32(body), body[4:])
			if err != nil {
				return pos, false, err
			}
			pos += 5 + n
			from = pos
			if err := bs.write(out); err != nil {
				return pos, false, err
			}
		case 'S':
			if s.pl.params != nil {
				// A pooled session's backend parameters, for the next client (pool.go).
				if n > maxTrackedParam {
					s.pl.params = nil
				} else if len(b)-pos < 5+n {
					break scan
				} else {
					noteParam(s.pl.params, b[pos+5:pos+5+n])
				}
			}
			pos += 5
			bs.f.left = n
		case 'E':
			if n <= maxHeldError && s.r.pool.idle.Load() > 0 {
				// 55006 drains the node's idle pooled backends (pooldrain.go).
				if len(b)-pos < 5+n {
					break scan
				}
				s.noteBackendError(b[pos+5 : pos+5+n])
			}
			if n <= maxHeldError && s.r.cfg.IdleSnapshotAfter > 0 && s.replayable() {
				// A FATAL sent to a session that could be replayed is held back until the
				// backend's end shows whether the session continues elsewhere.
				if len(b)-pos < 5+n {
					break scan
				}
				if isShutdownFatal(b[pos+5 : pos+5+n]) {
					if err := bs.write(b[from:pos]); err != nil {
						return pos, false, err
					}
					bs.held = append([]byte(nil), b[pos:pos+5+n]...)
					pos += 5 + n
					from = pos
					continue
				}
			}
			pos += 5
			bs.f.left = n
		default:
			pos += 5
			bs.f.left = n
		}
	}
	if err := bs.write(b[from:pos]); err != nil {
		return pos, false, err
	}
	stop := pos == len(b) && bs.f.left == 0 && s.mv.stopping.Load()
	return pos, stop, nil
}

// relay runs the session once its backend is connected. In the steady state the router's
// event loop carries both directions (eventloop.go); otherwise the client direction runs in
// its own goroutine and the backend direction here, parking for movers and replaying after a
// crash.
func (s *session) relay() {
	st := &s.r.stats[s.ep]
	s.mv.init(s.backend)
	bs := &backendStream{s: s, st: st, out: s.client}
	cs := &clientStream{s: s, st: st}
	bcr, ccr := newConnReader(s.backend), newConnReader(s.client)
	bcr.n = copy(bcr.buf, s.pl.pre) // the backend's first message, when relayedStart read it (pool.go)
	s.pl.pre = nil
	pumpDone := make(chan bool, 1)
	pumping, kicked := false, false
	canLoop := !s.r.cfg.GoroutineRelay && loopConn(s.client)
	for {
		var err error
		read := true
		atBoundary := bcr.n == 0 && bs.f.left == 0 && bs.held == nil
		if canLoop && atBoundary && !s.mv.stopping.Load() && !s.closed.Load() && s.r.eventLoop() != nil {
			if pumping && !kicked {
				// Stop the client pump where it is (its state goes into the loop).
				s.toLoop.Store(true)
				_ = s.client.SetReadDeadline(time.Unix(1, 0))
				kicked = true
			}
			// Once kicked, the pump hands over soon: nothing reads the client meanwhile, so
			// the relay waits for it here rather than in a backend read, unless a mover
			// waits (park first, below; enter the loop after).
			for pumping && !s.mv.stopping.Load() {
				select {
				case handed := <-pumpDone:
					pumping, kicked = false, false
					s.toLoop.Store(false)
					if !handed {
						return // the client left; the session is closed
					}
					_ = s.client.SetReadDeadline(time.Time{})
				case <-s.kick:
				}
			}
			if !pumping && !s.mv.stopping.Load() && ccr.n == 0 && !cs.locked && cs.yield == nil {
				x, entered := s.runInLoop(bs, cs, bcr, ccr)
				if entered {
					if x.closed {
						s.close()
						return
					}
					if again, over := s.kernelTurn(x.backendErr, bs, cs, bcr, ccr); over {
						return
					} else if again {
						continue // kernelpath.go
					}
					// Left for a mover or a busy forward lock (read on, or park), or with
					// the backend's end or error (handled below as if read here).
					err, read = x.backendErr, x.backendErr == nil
				}
			}
		}
		if s.pl.checkin.Load() && !pumping {
			s.endPooled(bcr, bs, err) // the client said Terminate in the event loop (pool.go)
			return
		}
		if !pumping {
			pumping = true
			go s.pumpClient(cs, ccr, pumpDone)
		}
		if read {
			if s.mv.stopping.Load() && bcr.n == 0 && bs.f.left == 0 {
				err = nil // a mover waits and the stream is at a boundary: park now
			} else {
				err = bcr.run(bs.process)
			}
		}
		if s.pl.checkin.Load() {
			// The client pump stopped at the client's Terminate and woke this read (pool.go).
			if pumping {
				<-pumpDone
			}
			s.endPooled(bcr, bs, err)
			return
		}
		boundary := bcr.n == 0 && bs.f.left == 0
		if !boundary && s.mv.stopping.Load() && (err == nil || errors.Is(err, os.ErrDeadlineExceeded)) {
			// A mover's deadline caught a message half read (an asynchronous one, the session
			// being idle): finish it, then park at its end.
			_ = bcr.c.SetReadDeadline(time.Time{})
			continue
		}
		// A mover stops this read; it hands over the new backend's reader, or nil when the
		// session is over. Partial is nonzero when the stream is not at a message boundary.
		partial := 0
		if !boundary {
			partial = 1
		}
		next, parked := s.mv.parkReader(partial, bufio.NewReaderSize(bcr.c, 32<<10), s.r.done)
		tried := false
		if !parked && boundary && errors.Is(err, io.EOF) && !s.clientDone.Load() {
			// The backend is gone: an idle session with a valid snapshot carries on on a
			// new one (recover.go). Not when the client left: its session's close is what
			// ended the backend, and a replay would open a backend nobody reads.
			next, tried = s.recoverBackend()
		}
		if next == nil {
			_ = s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
			switch {
			case bs.held != nil:
				_, _ = s.client.Write(bs.held)
			case tried:
				writeError(s.client, "57P01", fmt.Sprintf("terminating connection: the node of cluster %s went down and no node took the session within %s; retry", s.r.cfg.Name, s.r.cfg.HoldTimeout), "")
			case !parked && boundary && errors.Is(err, io.EOF) && bs.last != 'E':
				s.backendLost()
			}
			return
		}
		bs.held = nil
		bcr.reset(s.currentBackend())
		bcr.prefill(next)
	}
}

// clientStream is the client→backend direction of a session.
type clientStream struct {
	s      *session
	st     *endpointStats
	f      frameScan
	locked bool           // the forward lock is held (a message is half forwarded)
	yield  *chan struct{} // a mover asked to stop at this boundary
	ddl    clientDDL      // DATABASE DDL found in the client's statements (pooldrain.go)
}

// process forwards the messages in b to the current backend under the forward lock,
// counting requests in flight. It stops without forwarding when the lock is taken (a mover
// is at work) or before a message that starts a request when a mover asked it to yield.
func (cs *clientStream) process(b []byte) (int, bool, error) {
	s, m := cs.s, &cs.s.mv
	if !cs.locked {
		if !m.fwd.TryLock() {
			return 0, true, nil
		}
		cs.locked = true
	}
	if m.ended {
		return 0, false, errEnded
	}
	pos, from := 0, 0
	var err error
scan:
	for pos < len(b) {
		if cs.f.left > 0 {
			start := pos
			pos = cs.f.skip(b, pos)
			if cs.ddl.msg.active {
				// The rest of a Query or Parse begun in an earlier read (pooldrain.go).
				s.drainForDDL(cs.ddl.more(b[start:pos], cs.f.left == 0))
			}
			continue
		}
		typ, n, ok := header(b, pos)
		if !ok {
			break
		}
		if n < 0 {
			err = errBadFrame
			break
		}
		if ch := m.yield.Load(); ch != nil && s.atBoundary() {
			cs.yield = ch
			break
		}
		if s.r.pool.enabled() {
			// DATABASE DDL drains the pooled backends in its way before it is forwarded
			// (pooldrain.go).
			body, whole := b[pos+5:min(len(b), pos+5+n)], len(b)-pos-5 >= n
			switch typ {
			case 'Q', 'P':
				s.drainForDDL(cs.ddl.begin(typ, body, whole))
			case 'B':
				t, need := cs.ddl.bind(body, whole)
				if need > 0 {
					break scan // the statement name is in the next read
				}
				s.drainForDDL(t)
			case 'C':
				if whole {
					cs.ddl.closeStmt(body)
				}
			}
		}
		s.rec.msgs.Add(1) // any message makes a crash snapshot stale (recover.go)
		switch typ {
		case 'Q', 'F':
			m.inflight.Add(1)
		case 'S':
			m.inflight.Add(1)
			m.partial.Store(false)
		case 'P', 'B', 'E', 'D', 'C', 'H':
			m.partial.Store(true)
		case 'X':
			s.clientDone.Store(true) // Terminate: the backend's close that follows is expected
			if s.pl.key != "" && s.atBoundary() {
				// A clean exit: the backend goes back to the pool without it (pool.go).
				s.pl.checkin.Store(true)
				break scan
			}
		}
		pos += 5
		cs.f.left = n
	}
	if pos > from {
		if _, werr := m.out.Write(b[from:pos]); werr != nil {
			return pos, false, werr
		}
		cs.st.bytesIn.Add(int64(pos - from))
	}
	if err != nil {
		return pos, false, err
	}
	if cs.f.left == 0 || cs.yield != nil {
		// Between messages: movers may take over. Half a message forwarded keeps the lock,
		// so the backend never sees another's bytes in the middle of it.
		cs.locked = false
		m.fwd.Unlock()
	}
	return pos, cs.yield != nil || s.pl.checkin.Load(), nil
}

var errEnded = errors.New("session ended by a mover")

// pumpClient copies client messages to the current backend until the client goes or the
// session ends (done gets false), or the relay takes the session into the event loop (a read
// deadline with toLoop set; done gets true, cs and cr keep the state).
func (s *session) pumpClient(cs *clientStream, cr *connReader, done chan<- bool) {
	for {
		if err := cr.run(cs.process); err != nil {
			if s.toLoop.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				done <- true
				return
			}
			if cs.locked {
				cs.locked = false
				s.mv.fwd.Unlock()
			}
			s.clientDone.Store(true)
			s.close()
			done <- false
			return
		}
		if s.pl.checkin.Load() {
			// The client said Terminate: wake the backend read, which ends the session.
			_ = s.currentBackend().SetReadDeadline(time.Unix(1, 0))
			done <- true
			return
		}
		// Stopped: the forward lock was busy, or a mover asked this pump to yield here.
		if ch := cs.yield; ch != nil {
			cs.yield = nil
			<-*ch
		}
		if cr.n > 0 && !cs.locked {
			// Wait for the mover; run then forwards the bytes kept.
			s.mv.fwd.Lock()
			cs.locked = true
		}
	}
}
