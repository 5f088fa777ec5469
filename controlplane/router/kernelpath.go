package router

// Kernel forwarding in the router (Config.Sockmap, BOREALIS_ROUTER_SOCKMAP=1; off by default).
//
// A session whose client and backend are both plain TCP (no TLS; a pass-through or TCP
// backend, never the node's Unix socket) and that is carried by the event loop can leave its
// bytes to the kernel between two requests: an eBPF SK_SKB verdict on each socket
// (kernelfwd.RouterScan) redirects them to the peer socket while the router sleeps. The
// kernel follows the PostgreSQL framing and redirects only what the router need not see:
// from the client, simple Query messages ('Q'); from the backend, RowDescription, DataRow,
// CommandComplete, EmptyQueryResponse and ReadyForQuery. Anything else (Parse, Bind, Close,
// Terminate, ParameterStatus, an ErrorResponse, a notice, a header split across skbs, a bad
// length) makes the verdict divert its socket: that skb and every later one pass up, the
// ring buffer wakes the router, which takes the session back (kernelfwd.HandBack: no byte
// lost, none reordered) and carries on in the event loop exactly where the kernel stopped.
//
// Entry. The backend direction (relay.go) holds back a ReadyForQuery 'I' that ends a read
// with nothing in flight and makes the loop hand the session to its relay goroutine, which
// puts both sockets in the kernel's maps and only then sends that ReadyForQuery: a client
// that waits for it has sent nothing, so no byte can be half in user space and half in the
// kernel. A byte already waiting on either socket at entry (a client that did not wait, an
// asynchronous backend message) makes the entry back out before anything was redirected.
//
// While in the kernel the relay goroutine holds the session's forward lock, as the loop does
// while it forwards a message: movers, crash snapshots and the pool's check-in cannot act on
// a session whose stream they cannot see. The goroutine waits in poll(2) for the sockets'
// hang-up (only: their data-ready wake-ups, one per redirected skb, do not match) and for an
// eventfd (the ring buffer's reader, close), and looks every kernelTick for a mover waiting
// (parkOne's yield), the router closing, bytes passed up, and a session idle long enough for
// a crash snapshot it has not got. Any of those hands the session back; the loop's own code
// then does what it does today (park, snapshot, pool, replay after the backend's end).
//
// The session's framing and counters come back from the maps: what remains of the current
// message each way, requests forwarded against ReadyForQuery seen (the requests in flight),
// the last transaction status, the bytes each way. A hand-back that forwarded no request
// (other than an idle session leaving for its crash snapshot) makes the next entries wait
// (doubling, up to 1,024 ReadyForQuery): a client using the extended protocol stays in the
// loop instead of entering and leaving at every query.

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/borealisdb/borealis/controlplane/router/kernelfwd"
)

// kernelTick is how often a session in the kernel looks for movers and idleness.
const kernelTick = 10 * time.Millisecond

// sockmapEnv says whether BOREALIS_ROUTER_SOCKMAP=1 turns Config.Sockmap on.
func sockmapEnv() bool { return os.Getenv("BOREALIS_ROUTER_SOCKMAP") == "1" }

// kernelFwd is a router's kernel forwarding: two SOCKHASHes (client sockets, whose verdict
// redirects to the backend map, and backend sockets, the reverse), the per-socket state and
// divert flags, and the ring buffer of sockets that diverted themselves.
type kernelFwd struct {
	socks      [2]*ebpf.Map // dirClient, dirBackend
	peer       *ebpf.Map
	divert     *ebpf.Map
	ring       *ebpf.Map
	progs      [2]*ebpf.Program
	rd         *ringbuf.Reader
	readerDone chan struct{}

	mu    sync.Mutex
	kicks map[uint64]int // socket cookie -> the eventfd of its session in the kernel

	// entered counts sessions put in the kernel, handedBack their returns, backedOut the
	// entries undone before any byte was redirected; forwarded counts the client requests the
	// kernel forwarded; waits the hand-back barriers that had to wait.
	entered, handedBack, backedOut, forwarded, waits atomic.Int64
}

// KernelStats are the kernel path's counters (Config.Sockmap).
type KernelStats struct {
	// Enabled: the kernel path is configured and its programs loaded.
	Enabled bool
	// Entered counts entries into the kernel, HandedBack returns to the event loop,
	// BackedOut entries undone before anything was redirected, Forwarded the client requests
	// the kernel forwarded.
	Entered, HandedBack, BackedOut, Forwarded int64
}

// KernelStats reports the kernel path's counters.
func (r *Router) KernelStats() KernelStats {
	k := r.kfwd
	if k == nil {
		return KernelStats{}
	}
	return KernelStats{Enabled: true, Entered: k.entered.Load(), HandedBack: k.handedBack.Load(),
		BackedOut: k.backedOut.Load(), Forwarded: k.forwarded.Load()}
}

// startKernelFwd loads the programs when cfg asks for kernel forwarding; it logs why not
// (not root, no BPF, an older kernel) and leaves the loop alone then.
func (r *Router) startKernelFwd() {
	if !r.cfg.Sockmap || r.cfg.GoroutineRelay {
		return
	}
	k, err := newKernelFwd()
	if err != nil {
		log.Printf("router %s: kernel forwarding off: %v", r.cfg.Name, err)
		return
	}
	r.kfwd = k
}

func newKernelFwd() (k *kernelFwd, err error) {
	if err := kernelfwd.Probe(); err != nil {
		return nil, err
	}
	k = &kernelFwd{kicks: map[uint64]int{}}
	defer func() {
		if err != nil {
			k.close()
		}
	}()
	for i, name := range []string{"bor_r_csocks", "bor_r_bsocks"} {
		if k.socks[i], err = ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.SockHash, KeySize: 8, ValueSize: 8, MaxEntries: 16384}); err != nil {
			return k, fmt.Errorf("sockhash: %w", err)
		}
	}
	if k.peer, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bor_r_peer", Type: ebpf.Hash, KeySize: 8, ValueSize: 48, MaxEntries: 16384}); err != nil {
		return k, fmt.Errorf("peer map: %w", err)
	}
	if k.divert, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bor_r_divert", Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 16384}); err != nil {
		return k, fmt.Errorf("divert map: %w", err)
	}
	if k.ring, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bor_r_diverted", Type: ebpf.RingBuf, MaxEntries: 64 << 10}); err != nil {
		return k, fmt.Errorf("ring buffer: %w", err)
	}
	opts := [2]kernelfwd.RouterOpts{
		dirClient:  {Allow: []byte{'Q'}, Counted: 'Q'},
		dirBackend: {Allow: []byte{'T', 'D', 'C', 'Z', 'I'}, Counted: 'Z'},
	}
	for d := range 2 {
		insns := kernelfwd.RouterScan(k.socks[1-d], k.peer, k.divert, k.ring, opts[d])
		if k.progs[d], err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bor_r_verdict", Type: ebpf.SkSKB, License: "GPL", Instructions: insns}); err != nil {
			return k, fmt.Errorf("verdict: %w", err)
		}
		if err = link.RawAttachProgram(link.RawAttachProgramOptions{Target: k.socks[d].FD(), Program: k.progs[d], Attach: ebpf.AttachSkSKBVerdict}); err != nil {
			return k, fmt.Errorf("attach: %w", err)
		}
	}
	if k.rd, err = ringbuf.NewReader(k.ring); err != nil {
		return k, fmt.Errorf("ring buffer reader: %w", err)
	}
	k.readerDone = make(chan struct{})
	go k.readDiverted()
	return k, nil
}

// readDiverted wakes the session of each socket whose verdict diverted it.
func (k *kernelFwd) readDiverted() {
	defer close(k.readerDone)
	for {
		rec, err := k.rd.Read()
		if err != nil {
			return // closed
		}
		if len(rec.RawSample) < 8 {
			continue
		}
		c := uint64(0)
		for i := 7; i >= 0; i-- {
			c = c<<8 | uint64(rec.RawSample[i])
		}
		k.mu.Lock()
		if fd, ok := k.kicks[c]; ok {
			kickFD(fd)
		}
		k.mu.Unlock()
	}
}

// close frees the maps and programs; every session is gone (Router.Close).
func (k *kernelFwd) close() {
	if k == nil {
		return
	}
	if k.rd != nil {
		k.rd.Close()
		<-k.readerDone
	}
	for d, p := range k.progs {
		if p != nil {
			_ = link.RawDetachProgram(link.RawDetachProgramOptions{Target: k.socks[d].FD(), Program: p, Attach: ebpf.AttachSkSKBVerdict})
			p.Close()
		}
	}
	for _, m := range []*ebpf.Map{k.socks[0], k.socks[1], k.peer, k.divert, k.ring} {
		if m != nil {
			m.Close()
		}
	}
}

func kickFD(fd int) {
	var one = [8]byte{1}
	_, _ = unix.Write(fd, one[:])
}

// kernelSession is a session's part in kernel forwarding.
type kernelSession struct {
	// heldZ: the backend direction held back the ReadyForQuery 'I' that ends the last read,
	// for the relay to enter the kernel and then send it (loop and relay goroutine, in turn).
	heldZ bool
	// skip is how many more ReadyForQuery pass before the next entry; backoff its next value.
	skip, backoff int
	// kick is the eventfd of the session while in the kernel, -1 otherwise (under loopMu).
	kick int
	in   bool // in the kernel (under loopMu)
}

var readyIdle = []byte{'Z', 0, 0, 0, 5, 'I'}

// holdForKernel says whether the backend direction should hold back the ReadyForQuery 'I'
// that ends its read, for the relay to enter the kernel (see above). Only in the event loop.
func (s *session) holdForKernel(bs *backendStream, status byte, last bool) bool {
	k := &s.kp
	if s.r.kfwd == nil || status != 'I' || !last {
		return false
	}
	if _, inLoop := bs.out.(loopWriter); !inLoop {
		return false
	}
	if k.skip > 0 {
		k.skip--
		return false
	}
	if bs.held != nil || bs.f.left != 0 || s.mv.inflight.Load() != 0 || s.mv.partial.Load() ||
		s.mv.stopping.Load() || s.mv.yield.Load() != nil || s.closed.Load() || s.pl.checkin.Load() {
		return false
	}
	if _, ok := s.client.(*net.TCPConn); !ok {
		return false
	}
	if _, ok := s.currentBackend().(*net.TCPConn); !ok {
		return false
	}
	k.heldZ = true
	return true
}

// runInKernel enters the kernel with the held ReadyForQuery (or sends it and stays out), and
// returns when the session is back in user space at the loop's framing; closed when the
// session is over. Called by the relay with the client pump stopped, out of the loop.
func (s *session) runInKernel(bs *backendStream, cs *clientStream, bcr, ccr *connReader) (closed bool) {
	s.kp.heldZ = false
	client, backend := s.client, s.currentBackend()
	sendZ := func() bool {
		if _, err := client.Write(readyIdle); err != nil {
			s.close()
			return true
		}
		return false
	}
	if bcr.n != 0 || ccr.n != 0 || cs.f.left != 0 || cs.locked || cs.yield != nil || bs.held != nil || bs.f.left != 0 {
		return sendZ()
	}
	if !s.mv.fwd.TryLock() {
		return sendZ()
	}
	if s.mv.ended || s.mv.stopping.Load() || s.mv.yield.Load() != nil || !s.atBoundary() {
		s.mv.fwd.Unlock()
		return sendZ()
	}
	kf := s.r.kfwd
	var fd [2]int
	var err error
	if fd[dirClient], err = dupFD(client); err != nil {
		s.mv.fwd.Unlock()
		return sendZ()
	}
	if fd[dirBackend], err = dupFD(backend); err != nil {
		unix.Close(fd[dirClient])
		s.mv.fwd.Unlock()
		return sendZ()
	}
	var ck [2]uint64
	for d := range 2 {
		if ck[d], err = unix.GetsockoptUint64(fd[d], unix.SOL_SOCKET, unix.SO_COOKIE); err != nil {
			unix.Close(fd[0])
			unix.Close(fd[1])
			s.mv.fwd.Unlock()
			return sendZ()
		}
	}
	kick, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd[0])
		unix.Close(fd[1])
		s.mv.fwd.Unlock()
		return sendZ()
	}
	// Out of the runtime's poller (as the loop does): the duplicates keep the sockets open.
	s.loopMu.Lock()
	if s.closed.Load() {
		s.loopMu.Unlock()
		unix.Close(fd[0])
		unix.Close(fd[1])
		unix.Close(kick)
		s.mv.fwd.Unlock()
		return true
	}
	s.kp.in, s.kp.kick = true, kick
	client.Close()
	backend.Close()
	s.loopMu.Unlock()

	x := s.kernelEpisode(kf, fd, ck, kick)

	kf.mu.Lock()
	delete(kf.kicks, ck[0])
	delete(kf.kicks, ck[1])
	kf.mu.Unlock()
	for _, c := range ck {
		_ = kf.peer.Delete(c)
		_ = kf.divert.Delete(c)
	}
	s.loopMu.Lock()
	s.kp.in, s.kp.kick = false, -1
	unix.Close(kick)
	if x.closed || s.closed.Load() {
		s.loopMu.Unlock()
		unix.Close(fd[0])
		unix.Close(fd[1])
		s.clientDone.Store(true)
		s.mv.fwd.Unlock()
		return true
	}
	// Back to net.Conns in the runtime's poller.
	c, cerr := fdConn(fd[dirClient])
	b, berr := fdConn(fd[dirBackend])
	if cerr != nil || berr != nil {
		s.loopMu.Unlock()
		for _, conn := range []net.Conn{c, b} {
			if conn != nil {
				conn.Close()
			}
		}
		s.mv.fwd.Unlock()
		s.close()
		return true
	}
	s.client = c
	s.moved.Store(&b)
	s.loopMu.Unlock()
	bs.out, s.mv.out = c, b
	ccr.rebind(c)
	bcr.rebind(b)
	if x.sendZ {
		if _, err := c.Write(readyIdle); err != nil {
			s.mv.fwd.Unlock()
			s.close()
			return true
		}
	}
	// The kernel's framing and counters, then movers may look (fwd).
	cs.f.left, bs.f.left = int(x.st[dirClient].Left), int(x.st[dirBackend].Left)
	reqs, zs := int64(x.st[dirClient].Count), int64(x.st[dirBackend].Count)
	if in := s.mv.inflight.Add(reqs - zs); in < 0 {
		s.mv.inflight.Store(0)
	}
	if zs > 0 {
		s.txStatus.Store(x.st[dirBackend].Status)
	}
	if x.st[dirClient].Redirected > 0 {
		s.rec.msgs.Add(1) // the crash snapshot is stale
	}
	st := &s.r.stats[s.ep]
	st.bytesIn.Add(int64(x.st[dirClient].Redirected))
	st.bytesOut.Add(int64(x.st[dirBackend].Redirected))
	kf.forwarded.Add(reqs)
	if reqs == 0 && !x.quiet {
		s.kp.backoff = min(max(1, 2*s.kp.backoff), 1024)
		s.kp.skip = s.kp.backoff
	} else {
		s.kp.backoff = 0
	}
	s.mv.fwd.Unlock()
	return false
}

// kernelExit is how an episode in the kernel ended: closed (the session is over), sendZ (it
// backed out before sending the held ReadyForQuery), and the sockets' state at hand-back.
type kernelExit struct {
	closed, sendZ bool
	quiet         bool // left because idle, for a snapshot (no backoff)
	st            [2]kernelfwd.State
}

var errHandBack = errors.New("kernel forwarding: hand-back failed")

// kernelEpisode puts the sockets in the maps, sends the held ReadyForQuery, waits, and takes
// the sockets back. Called with fwd held and the sockets out of the runtime's poller.
func (s *session) kernelEpisode(kf *kernelFwd, fd [2]int, ck [2]uint64, kick int) kernelExit {
	kf.mu.Lock()
	kf.kicks[ck[0]], kf.kicks[ck[1]] = kick, kick
	kf.mu.Unlock()
	var base [2]uint64
	for d := range 2 {
		base[d] = kernelfwd.Written(fd[d])
	}
	// Divert off first (a verdict without it passes up), then the state (a verdict without it
	// passes up uncounted), then the socket.
	fail := func() kernelExit { return kernelExit{sendZ: true} }
	for d := range 2 {
		if kf.divert.Update(ck[d], uint32(0), ebpf.UpdateAny) != nil {
			return fail()
		}
	}
	for d := range 2 {
		if kf.peer.Update(ck[d], kernelfwd.State{Peer: ck[1-d]}, ebpf.UpdateAny) != nil {
			return fail()
		}
	}
	for d := range 2 {
		// EBUSY: in the map already (an earlier entry; sockets stay there for their life, as
		// removing one drops what its psock holds).
		if err := kf.socks[d].Update(ck[d], uint64(fd[d]), ebpf.UpdateAny); err != nil && !errors.Is(err, unix.EBUSY) {
			return s.kernelBack(kf, fd, ck, base, true)
		}
	}
	// A byte that was waiting already (or passed up while the sockets went in): back out.
	if readable(fd[0]) || readable(fd[1]) {
		return s.kernelBack(kf, fd, ck, base, true)
	}
	kf.entered.Add(1)
	if err := writeAll(fd[dirClient], readyIdle); err != nil {
		x := s.kernelBack(kf, fd, ck, base, false)
		x.closed = true
		return x
	}
	base[dirClient] += uint64(len(readyIdle))
	s.r.inLoop.Add(1) // counted as carried (EventLoopSessions), as in the loop
	defer s.r.inLoop.Add(-1)
	pfd := []unix.PollFd{{Fd: int32(fd[0]), Events: unix.POLLRDHUP}, {Fd: int32(fd[1]), Events: unix.POLLRDHUP}, {Fd: int32(kick), Events: unix.POLLIN}}
	var lastIn uint64
	idleSince := time.Now()
	for {
		_, err := unix.Poll(pfd, int(kernelTick/time.Millisecond))
		if err != nil && err != unix.EINTR {
			break
		}
		if pfd[0].Revents != 0 || pfd[1].Revents != 0 || pfd[2].Revents != 0 {
			break // a hang-up, an error, a diverted socket or a close
		}
		if s.closed.Load() || s.mv.yield.Load() != nil || readable(fd[0]) || readable(fd[1]) {
			break
		}
		select {
		case <-s.r.done:
			return s.kernelBack(kf, fd, ck, base, false)
		default:
		}
		if s.r.cfg.IdleSnapshotAfter > 0 && s.kernelIdle(kf, ck, &lastIn, &idleSince) {
			x := s.kernelBack(kf, fd, ck, base, false)
			x.quiet = true
			return x
		}
	}
	return s.kernelBack(kf, fd, ck, base, false)
}

// kernelIdle says whether a session in the kernel has been idle (no client byte, nothing in
// flight, not in a transaction) for IdleSnapshotAfter without a valid crash snapshot: it then
// goes back to the loop, where the sweeper takes one. Client activity counts as a message for
// the sweeper (its idleness test), as in the loop.
func (s *session) kernelIdle(kf *kernelFwd, ck [2]uint64, lastIn *uint64, since *time.Time) bool {
	var st [2]kernelfwd.State
	for d := range 2 {
		if kf.peer.Lookup(ck[d], &st[d]) != nil {
			return true
		}
	}
	if st[dirClient].Redirected != *lastIn {
		*lastIn, *since = st[dirClient].Redirected, time.Now()
		s.rec.msgs.Add(1)
		return false
	}
	quiet := st[dirClient].Count == st[dirBackend].Count && (st[dirBackend].Count == 0 || st[dirBackend].Status == 'I')
	return quiet && time.Since(*since) >= s.r.cfg.IdleSnapshotAfter && !s.replayable()
}

// kernelBack takes the sockets back (kernelfwd.HandBack) and reads their state; backOut says
// the held ReadyForQuery was not sent yet (an entry undone: it must not have redirected a
// byte, else the session is closed).
func (s *session) kernelBack(kf *kernelFwd, fd [2]int, ck [2]uint64, base [2]uint64, backOut bool) kernelExit {
	x := kernelExit{sendZ: backOut}
	err := kernelfwd.HandBack(kf.divert, kf.peer, ck, fd, base, &kf.waits)
	for d := range 2 {
		if err == nil {
			err = kf.peer.Lookup(ck[d], &x.st[d])
		}
	}
	if err == nil && (x.st[0].HdrLen != 0 || x.st[1].HdrLen != 0) {
		err = fmt.Errorf("%w: a header split in the kernel", errHandBack)
	}
	if err == nil && backOut && (x.st[0].Redirected != 0 || x.st[1].Redirected != 0) {
		err = fmt.Errorf("%w: bytes redirected while backing out", errHandBack)
	}
	if err != nil {
		log.Printf("router %s: kernel forwarding: session closed: %v", s.r.cfg.Name, err)
		x.closed = true
		return x
	}
	if backOut {
		kf.backedOut.Add(1)
	} else {
		kf.handedBack.Add(1)
	}
	return x
}

// closeInKernel wakes a session in the kernel to close; false when it is not there. Call
// with s.loopMu held.
func (s *session) closeInKernel() bool {
	if !s.kp.in {
		return false
	}
	kickFD(s.kp.kick)
	return true
}

// readable says whether a socket has a byte (or its end) to read.
func readable(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && n >= 0
}

// writeAll writes b to a non-blocking socket.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		k, err := unix.Write(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(p, 5000); err != nil && err != unix.EINTR {
				return err
			}
			if p[0].Revents&unix.POLLOUT == 0 && p[0].Revents != 0 {
				return unix.EPIPE
			}
			continue
		case err != nil:
			return err
		}
		b = b[k:]
	}
	return nil
}

// kernelTurn runs after the loop handed the session back: with a held ReadyForQuery it
// enters the kernel (again: the relay goes back to the loop; over: the session ended).
func (s *session) kernelTurn(loopErr error, bs *backendStream, cs *clientStream, bcr, ccr *connReader) (again, over bool) {
	if !s.kp.heldZ {
		return false, false
	}
	if loopErr != nil {
		s.kp.heldZ = false // the client or backend failed: the relay ends the session
		return false, false
	}
	if s.runInKernel(bs, cs, bcr, ccr) {
		return false, true
	}
	return true, false
}
