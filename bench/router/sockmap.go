package main

// The sockmap experiment (-sockmap): is kernel forwarding of a session's steady state fast
// enough to reach >= 0.9x direct on pgbench -S here? A minimal proxy relays the start-up in
// user space until the backend's first ReadyForQuery, then puts both of its sockets in an
// eBPF SOCKHASH whose SK_SKB verdict program redirects every byte (or, in parser mode, every
// PostgreSQL message framed by a stream parser: 1 type byte + 4-byte big-endian length) to
// the egress of the peer socket. User space then only waits for either side's end.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/borealisdb/borealis/bench/internal/benchenv"
	"github.com/borealisdb/borealis/controlplane/router/kernelfwd"
)

// sockmapModes are the experiment's variants.
var sockmapModeDoc = map[string]string{
	"verdict":  "one SK_SKB verdict per skb as it arrives (BPF_SK_SKB_VERDICT) redirects it to the peer socket's egress: the ceiling, nothing looked at",
	"handback": "scan, plus the hand-back to user space a router needs (not measured: tested by TestSockmapHandBack): each verdict counts itself while it runs and the bytes it redirects, and a per-socket divert flag makes it pass everything up; the proxy sets the flags, waits for running verdicts, then until each destination socket took every byte redirected to it, and relays in user space from there; a verdict that cannot follow the stream (a length below 4, too many headers) diverts its socket itself and sends its cookie through a ring buffer, which the proxy polls (TestSockmapMalformedLengthDiverts)",
	"scan":     "the same verdict, which first walks the PostgreSQL message headers in the skb (a bounded loop of bpf_skb_load_bytes, the framing carried across skbs in a per-socket map value) and records the last ReadyForQuery status there: the framing a router needs, in the kernel",
	"half":     "only the backend-to-client direction is redirected; the client's messages pass up to the proxy's own socket and a goroutine writes them to the backend (a router that reads every request itself, to see SET/RESET/DISCARD)",
	"parser":   "a stream parser frames messages first (BPF_SK_SKB_STREAM_PARSER + STREAM_VERDICT): stalls on 6.18 once an skb carries more than one message (the parser program sees the skb from its start, not the message's offset), so not measured",
}

// sockmapProxy is the experiment's proxy: one listener, one SOCKHASH for every session.
type sockmapProxy struct {
	mode    string
	backend string // "host:port" (a Unix socket cannot be redirected to on 6.18)
	l       net.Listener
	sockets *ebpf.Map // SOCKHASH: socket cookie -> socket
	// peer: socket cookie -> kernelfwd.State (the peer socket's cookie, the framing, the last
	// ReadyForQuery status). A socket without an entry passes its data up.
	peer *ebpf.Map
	// divert (handback): socket cookie -> nonzero once user space takes the socket back.
	divert *ebpf.Map
	// ring (handback): the cookies of sockets whose verdict diverted them itself.
	ring       *ebpf.Map
	ringReader *ringbuf.Reader
	// kicks are the sessions' hand-back eventfds by socket cookie (handback).
	mu    sync.Mutex
	kicks map[uint64]int
	// selfDiverted counts the ring buffer's records.
	selfDiverted atomic.Int64
	// waits counts the hand-backs' barriers that found something to wait for: a verdict
	// running, or bytes still queued for a socket.
	waits  atomic.Int64
	progs  []*ebpf.Program
	attach []ebpf.AttachType
	wg     sync.WaitGroup
}

// newSockmapProxy loads the mode's programs and attaches them to a new SOCKHASH.
func newSockmapProxy(backend, mode string) (*sockmapProxy, error) {
	if _, ok := sockmapModeDoc[mode]; !ok {
		return nil, fmt.Errorf("sockmap mode %q: want verdict, scan, half, handback or parser", mode)
	}
	p := &sockmapProxy{mode: mode, backend: backend}
	var err error
	p.sockets, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bor_socks", Type: ebpf.SockHash, KeySize: 8, ValueSize: 8, MaxEntries: 4096})
	if err != nil {
		return nil, fmt.Errorf("sockhash: %w", err)
	}
	p.peer, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bor_peer", Type: ebpf.Hash, KeySize: 8, ValueSize: 48, MaxEntries: 4096})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("peer map: %w", err)
	}
	insns := kernelfwd.RedirectToPeer(p.sockets, p.peer)
	switch mode {
	case "scan":
		insns = kernelfwd.ScanAndRedirect(p.sockets, p.peer, nil, nil)
	case "handback":
		p.divert, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bor_divert", Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 4096})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("divert map: %w", err)
		}
		p.ring, err = ebpf.NewMap(&ebpf.MapSpec{Name: "bor_diverted", Type: ebpf.RingBuf, MaxEntries: 64 << 10})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("ring buffer: %w", err)
		}
		p.kicks = map[uint64]int{}
		insns = kernelfwd.ScanAndRedirect(p.sockets, p.peer, p.divert, p.ring)
	}
	verdict, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bor_verdict", Type: ebpf.SkSKB, License: "GPL", Instructions: insns})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("verdict program: %w", err)
	}
	p.progs = append(p.progs, verdict)
	if mode == "parser" {
		pp, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bor_parser", Type: ebpf.SkSKB, License: "GPL", Instructions: kernelfwd.PgMessageLength()})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("parser program: %w", err)
		}
		p.progs = append(p.progs, pp)
		for i, at := range []ebpf.AttachType{ebpf.AttachSkSKBStreamVerdict, ebpf.AttachSkSKBStreamParser} {
			if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: p.sockets.FD(), Program: p.progs[i], Attach: at}); err != nil {
				p.Close()
				return nil, fmt.Errorf("attach %v: %w", at, err)
			}
			p.attach = append(p.attach, at)
		}
	} else {
		if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: p.sockets.FD(), Program: verdict, Attach: ebpf.AttachSkSKBVerdict}); err != nil {
			p.Close()
			return nil, fmt.Errorf("attach sk_skb verdict: %w", err)
		}
		p.attach = append(p.attach, ebpf.AttachSkSKBVerdict)
	}
	p.l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.Close()
		return nil, err
	}
	if p.ring != nil {
		r, err := ringbuf.NewReader(p.ring)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("ring buffer reader: %w", err)
		}
		p.ringReader = r
		go p.readDiverted(r)
	}
	go p.serve()
	return p, nil
}

func (p *sockmapProxy) Port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *sockmapProxy) Close() {
	if p.l != nil {
		p.l.Close()
	}
	p.wg.Wait()
	for i, at := range p.attach {
		_ = link.RawDetachProgram(link.RawDetachProgramOptions{Target: p.sockets.FD(), Program: p.progs[min(i, len(p.progs)-1)], Attach: at})
	}
	for _, pr := range p.progs {
		pr.Close()
	}
	if p.sockets != nil {
		p.sockets.Close()
	}
	if p.peer != nil {
		p.peer.Close()
	}
	if p.divert != nil {
		p.divert.Close()
	}
	if p.ringReader != nil {
		p.ringReader.Close()
	}
	if p.ring != nil {
		p.ring.Close()
	}
}

func (p *sockmapProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.session(c)
		}()
	}
}

func (p *sockmapProxy) dial() (net.Conn, error) {
	if len(p.backend) > 0 && p.backend[0] == '/' {
		return net.Dial("unix", p.backend)
	}
	return net.Dial("tcp", p.backend)
}

func rawFD(c net.Conn) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	err = rc.Control(func(f uintptr) { fd = int(f) })
	return fd, err
}

// cookie is SO_COOKIE of c's socket.
func cookie(fd int) (uint64, error) {
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
}

// session relays the start-up (the client's StartupMessage, then the backend's answers, trust
// authentication) until the backend's first ReadyForQuery, puts both sockets in the map
// before passing that ReadyForQuery on (so the client's first query finds them there), and
// waits for either side to end.
func (p *sockmapProxy) session(client net.Conn) {
	defer client.Close()
	backend, err := p.dial()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockmap: dial:", err)
		return
	}
	defer backend.Close()
	var startup []byte
	for startup == nil {
		var hdr [8]byte
		if _, err := io.ReadFull(client, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < 8 || n > 10000 {
			return
		}
		if code := binary.BigEndian.Uint32(hdr[4:]); n == 8 && (code == 80877103 || code == 80877104) {
			// SSLRequest, GSSENCRequest: no.
			if _, err := client.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		startup = make([]byte, n)
		copy(startup, hdr[:])
		if _, err := io.ReadFull(client, startup[8:]); err != nil {
			return
		}
	}
	if _, err := backend.Write(startup); err != nil {
		return
	}
	// Backend messages until ReadyForQuery.
	var buf []byte
	tmp := make([]byte, 8192)
	for ready := false; !ready; {
		k, err := backend.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:k]...)
		for pos := 0; pos+5 <= len(buf); {
			l := int(binary.BigEndian.Uint32(buf[pos+1:]))
			if pos+1+l > len(buf) {
				break
			}
			if buf[pos] == 'R' && l >= 8 && authNeedsAnswer(binary.BigEndian.Uint32(buf[pos+5:])) {
				// The authentication exchange (SCRAM's two round trips, a password):
				// the client answers this request before the backend says more.
				end := pos + 1 + l
				if _, err := client.Write(buf[:end]); err != nil {
					return
				}
				buf = append(buf[:0], buf[end:]...)
				pos = 0
				if err := relayMessage(client, backend); err != nil {
					return
				}
				continue
			}
			if buf[pos] == 'Z' && pos+1+l == len(buf) {
				ready = true
			}
			pos += 1 + l
		}
	}
	cfd, err := rawFD(client)
	if err != nil {
		return
	}
	bfd, err := rawFD(backend)
	if err != nil {
		return
	}
	cc, err1 := cookie(cfd)
	bc, err2 := cookie(bfd)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "sockmap: SO_COOKIE:", err1, err2)
		return
	}
	if err := p.sockets.Update(cc, uint64(cfd), ebpf.UpdateAny); err != nil {
		fmt.Fprintln(os.Stderr, "sockmap: client socket:", err)
		return
	}
	defer p.sockets.Delete(cc)
	if err := p.sockets.Update(bc, uint64(bfd), ebpf.UpdateAny); err != nil {
		fmt.Fprintln(os.Stderr, "sockmap: backend socket:", err)
		return
	}
	defer p.sockets.Delete(bc)
	if p.mode != "half" {
		_ = p.peer.Update(cc, kernelfwd.State{Peer: bc}, ebpf.UpdateAny)
	}
	_ = p.peer.Update(bc, kernelfwd.State{Peer: cc}, ebpf.UpdateAny)
	defer p.peer.Delete(cc)
	defer p.peer.Delete(bc)
	var base [2]uint64 // bytes written to the client's and the backend's socket before
	kick := -1
	if p.mode == "handback" {
		_ = p.divert.Update(cc, uint32(0), ebpf.UpdateAny)
		_ = p.divert.Update(bc, uint32(0), ebpf.UpdateAny)
		defer p.divert.Delete(cc)
		defer p.divert.Delete(bc)
		base = [2]uint64{kernelfwd.Written(cfd) + uint64(len(buf)), kernelfwd.Written(bfd)}
		// Before the client can send anything: a verdict may divert itself at once.
		if kick, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
			return
		}
		defer unix.Close(kick)
		p.mu.Lock()
		p.kicks[cc], p.kicks[bc] = kick, kick
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.kicks, cc)
			delete(p.kicks, bc)
			p.mu.Unlock()
		}()
	}
	if _, err := client.Write(buf); err != nil {
		return
	}
	// Nothing reaches these sockets' own queues any more (everything is redirected) but
	// their end. Reading them (or polling them for input) would wake this process for every
	// redirected skb: the psock's data_ready calls the socket's own after each verdict. So
	// the wait is for EPOLLRDHUP and errors only, which those wake-ups do not match (the
	// sockets leave the Go runtime's poller); half reads the client, whose messages pass up.
	// The sockets also leave the Go runtime's poller, whose epoll would be woken the same
	// way: the descriptors are duplicated (blocking) and the net.Conns closed.
	bdup, err := detach(backend)
	if err != nil {
		return
	}
	defer unix.Close(bdup)
	if p.mode == "half" {
		go func() {
			_, _ = io.Copy(fdWriter(bdup), struct{ io.Reader }{client})
			_ = unix.Shutdown(bdup, unix.SHUT_RDWR)
		}()
		waitHangUp(-1, bdup)
		return
	}
	cdup, err := detach(client)
	if err != nil {
		return
	}
	defer unix.Close(cdup)
	if p.mode != "handback" {
		waitHangUp(-1, cdup, bdup)
		return
	}
	if waitHangUp(kick, cdup, bdup) != kick {
		return
	}
	if err := p.handBack([2]uint64{cc, bc}, [2]int{cdup, bdup}, base); err != nil {
		fmt.Fprintln(os.Stderr, "sockmap: hand-back:", err)
		return
	}
	// User space relays from here, through the same sockets (still in the map: removing
	// them would drop what their psocks hold).
	go func() {
		_, _ = io.Copy(fdWriter(bdup), fdReader(cdup))
		_ = unix.Shutdown(bdup, unix.SHUT_WR)
	}()
	_, _ = io.Copy(fdWriter(cdup), fdReader(bdup))
	_ = unix.Shutdown(cdup, unix.SHUT_WR)
}

// authNeedsAnswer says whether an AuthenticationRequest with this code waits for the
// client: cleartext (3), MD5 (5), SASL (10) and SASLContinue (11) do; Ok (0) and SASLFinal
// (12) do not.
func authNeedsAnswer(code uint32) bool {
	return code == 3 || code == 5 || code == 10 || code == 11
}

// relayMessage copies one whole message (type byte, length, body) from src to dst.
func relayMessage(src io.Reader, dst io.Writer) error {
	var hdr [5]byte
	if _, err := io.ReadFull(src, hdr[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("sockmap: message length %d out of range", n)
	}
	msg := make([]byte, 1+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(src, msg[5:]); err != nil {
		return err
	}
	_, err := dst.Write(msg)
	return err
}

// kickAll asks every handback session to take its sockets back from the kernel.
func (p *sockmapProxy) kickAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	kicked := map[int]bool{}
	for _, k := range p.kicks {
		if !kicked[k] {
			kicked[k] = true
			kickFD(k)
		}
	}
	return len(kicked)
}

func kickFD(k int) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(k, one[:])
}

// readDiverted kicks the session of each socket the verdict diverted itself.
func (p *sockmapProxy) readDiverted(r *ringbuf.Reader) {
	for {
		rec, err := r.Read()
		if err != nil {
			return // closed
		}
		if len(rec.RawSample) < 8 {
			continue
		}
		p.selfDiverted.Add(1)
		p.mu.Lock()
		k, ok := p.kicks[binary.NativeEndian.Uint64(rec.RawSample)]
		p.mu.Unlock()
		if ok {
			kickFD(k)
		}
	}
}

// handBack takes a session's sockets back from the kernel (kernelfwd.HandBack).
func (p *sockmapProxy) handBack(cookies [2]uint64, fds [2]int, base [2]uint64) error {
	return kernelfwd.HandBack(p.divert, p.peer, cookies, fds, base, &p.waits)
}

// fdReader reads a blocking descriptor.
type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	for {
		k, err := unix.Read(int(r), b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if k == 0 {
			return 0, io.EOF
		}
		return k, nil
	}
}

// detach duplicates c's descriptor, blocking, and closes c (its socket lives on).
func detach(c net.Conn) (int, error) {
	fd, err := rawFD(c)
	if err != nil {
		return -1, err
	}
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	c.Close()
	return d, unix.SetNonblock(d, false)
}

// fdWriter writes to a blocking descriptor.
type fdWriter int

func (w fdWriter) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		k, err := unix.Write(int(w), b[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

// waitHangUp blocks until either socket is shut down by its peer or fails, or (kick >= 0,
// handback mode) the eventfd kick is written; it returns that descriptor.
func waitHangUp(kick int, socks ...int) int {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1
	}
	defer unix.Close(ep)
	for _, fd := range socks {
		_ = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLRDHUP, Fd: int32(fd)})
	}
	if kick >= 0 {
		_ = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, kick, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(kick)})
	}
	ev := make([]unix.EpollEvent, len(socks)+1)
	for {
		n, err := unix.EpollWait(ep, ev, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1
		}
		if n > 0 {
			return int(ev[0].Fd)
		}
	}
}

// sockmapReport appends the experiment's paths to the report: per round, each path's TPS
// against direct and the router in the same round, and the whole machine's busy CPU per
// transaction (the sockmap's forwarding runs in softirqs and kworkers, outside this process).
func sockmapReport(out string, main, extra []result, per int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Extra paths: SCRAM pass-through and kernel forwarding (`-router-passthrough`, `-router-sockmap`, `-sockmap`)\n\n")
	fmt.Fprintf(&b, "- `router-sockmap`: a router in the same process with `Config.PassThrough` and `Config.Sockmap`: its pooled TCP backends and its clients' sockets are forwarded by the kernel between requests (controlplane/router/kernelpath.go), the router taking the session back for anything it must see\n")
	fmt.Fprintf(&b, "- `router-passthrough`: a second router in the same process with `Config.PassThrough`: its pooled backends are opened over TCP on 127.0.0.1, authenticated with the ClientKey recovered from the client's SCRAM proof, instead of on the Unix socket (what kernel forwarding needs)\n")
	if sockmapModes != "" {
		fmt.Fprintf(&b, "\nThe sockmap paths: a minimal proxy relays the start-up in user space, then puts both of a session's sockets in an eBPF SOCKHASH whose SK_SKB program redirects everything to the peer socket's egress:\n\n")
		for _, m := range []string{"verdict", "scan", "half", "parser"} {
			fmt.Fprintf(&b, "- `%s`: %s\n", m, sockmapModeDoc[m])
		}
	}
	fmt.Fprintf(&b, "\nMachine CPU is the whole machine's busy time per transaction (/proc/stat), which counts the kernel's forwarding wherever it runs.\n\n")
	fmt.Fprintf(&b, "| round | path | TPS | /direct | /router | p50 / p99 ms | CPU µs/txn: pgbench + server + proxy + kernel threads (path / direct / router) | CPU-derived /direct (path / router) | machine CPU µs/txn (path / direct / router) |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	ratios := map[string][]float64{}
	var names []string
	for _, x := range extra {
		i := (x.round - 1) * per
		if i+1 >= len(main) {
			continue
		}
		d, r := main[i], main[i+1]
		if _, ok := ratios[x.path]; !ok {
			names = append(names, x.path)
		}
		ratios[x.path] = append(ratios[x.path], x.tps/d.tps)
		ratios[x.path+"/router"] = append(ratios[x.path+"/router"], x.tps/r.tps)
		xc, dc, rc := x.clientCPU+x.serverCPU+x.cpuPerTxn+x.kthreadCPU, d.clientCPU+d.serverCPU+d.kthreadCPU, r.clientCPU+r.serverCPU+r.cpuPerTxn+r.kthreadCPU
		ratios[x.path+"/cpu"] = append(ratios[x.path+"/cpu"], dc/xc)
		ratios["router/cpu"] = append(ratios["router/cpu"], dc/rc)
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.2f | %.2f | %.3f / %.3f | %.1f / %.1f / %.1f | %.2f / %.2f | %.1f / %.1f / %.1f |\n", x.round, x.path, x.tps, x.tps/d.tps, x.tps/r.tps, x.p50, x.p99, xc, dc, rc, dc/xc, dc/rc, x.machineCPU, d.machineCPU, r.machineCPU)
	}
	b.WriteString("\n")
	for _, n := range names {
		fmt.Fprintf(&b, "**%s:** median %s/direct **%.2f×** measured, **%.2f×** CPU-derived (the router's %.2f×); %s/router **%.2f×** measured.  \n", n, n, benchenv.Median(ratios[n]), benchenv.Median(ratios[n+"/cpu"]), benchenv.Median(ratios["router/cpu"]), n, benchenv.Median(ratios[n+"/router"]))
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	fmt.Print(b.String())
	return err
}

// kernelThreads is the CPU time of each of the kernel's worker threads (kworker*,
// ksoftirqd*), by pid: a sockmap redirect is sent from the target socket's psock work item,
// and softirqs deferred under load run in ksoftirqd, so neither is charged to pgbench, the
// server or the proxy.
func kernelThreads() map[string]time.Duration {
	dirs, _ := os.ReadDir("/proc")
	out := map[string]time.Duration{}
	for _, d := range dirs {
		pid := d.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		comm := s[open+1 : end]
		if !strings.HasPrefix(comm, "kworker") && !strings.HasPrefix(comm, "ksoftirqd") {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) > 12 { // fields 14 and 15 of stat: utime, stime
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			out[pid+" "+comm] = time.Duration(u+st) * 10 * time.Millisecond
		}
	}
	return out
}

// kernelThreadsSince is the CPU the kernel's worker threads used since before, counting
// only threads alive at both ends (worker pools come and go).
func kernelThreadsSince(before map[string]time.Duration) time.Duration {
	var d time.Duration
	for k, v := range kernelThreads() {
		if b, ok := before[k]; ok && v > b {
			d += v - b
		}
	}
	return d
}
