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
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/borealisdb/borealis/bench/internal/benchenv"
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
	// peer: socket cookie -> sockState (the peer socket's cookie, the framing, the last
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

// sockState is a peer map value.
type sockState struct {
	Peer   uint64
	Left   uint32 // bytes of the current message still to come in later skbs
	Status uint32 // the last ReadyForQuery status seen ('I', 'T', 'E'), 0 before any
	Pos    uint32 // the walk's position, scratch
	// handback mode: verdicts running now, and the bytes redirected to the peer.
	Active     uint32
	Redirected uint64
	// A message header split across skbs: HdrLen of its bytes at Hdr (offHdr, so that its
	// length field is aligned).
	HdrLen uint32
	_      [3]byte
	Hdr    [5]byte
	_      uint32
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
	insns := redirectToPeer(p.sockets, p.peer)
	switch mode {
	case "scan":
		insns = scanAndRedirect(p.sockets, p.peer, nil, nil)
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
		insns = scanAndRedirect(p.sockets, p.peer, p.divert, p.ring)
	}
	verdict, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bor_verdict", Type: ebpf.SkSKB, License: "GPL", Instructions: insns})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("verdict program: %w", err)
	}
	p.progs = append(p.progs, verdict)
	if mode == "parser" {
		pp, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bor_parser", Type: ebpf.SkSKB, License: "GPL", Instructions: pgMessageLength()})
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

// redirectToPeer: cookie := bpf_get_socket_cookie(skb); st := lookup(peer, cookie); no
// entry: SK_PASS (to the socket's own queue); else bpf_sk_redirect_hash(skb, socks,
// &st.Peer, 0) (0: the peer's egress).
func redirectToPeer(socks, peer *ebpf.Map) asm.Instructions {
	return append(lookupOwnState(peer, "pass"), redirectOrPass(socks, nil, nil)...)
}

// Offsets in sockState.
const (
	offPos        = 16
	offActive     = 20
	offRedirected = 24
	offHdrLen     = 32
	offHdr        = 39
)

// redirectOrPass: at "redirect", bpf_sk_redirect_hash(skb = r6, socks, &state.Peer = r7, 0)
// (0: the peer's egress); at "pass" (and "none" with handback), SK_PASS. With handback, "redirect" first
// adds skb->len (r9) to state.Redirected, and "redirect" and "pass" end the verdict's
// Active count (handBack's barrier).
func redirectOrPass(socks, divert, ring *ebpf.Map) asm.Instructions {
	handback := divert != nil
	xadd := func(off int16, src asm.Register, size asm.Size) asm.Instruction {
		ins := asm.StoreXAdd(asm.R7, src, size)
		ins.Offset = off
		return ins
	}
	var insns asm.Instructions
	if handback {
		insns = append(insns, xadd(offRedirected, asm.R9, asm.DWord).WithSymbol("redirect"))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, socks.FD()),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkRedirectHash.Call(),
	)
	if !handback {
		insns[0] = insns[0].WithSymbol("redirect")
		return append(insns,
			asm.Return(),
			asm.Mov.Imm(asm.R0, 1).WithSymbol("pass"), // SK_PASS
			asm.Return(),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R1, -1),
		xadd(offActive, asm.R1, asm.Word),
		asm.Return(),
		// "pass": the walk cannot follow this skb (a length below 4, too many headers): the
		// socket diverts itself (its divert entry set) and tells user space through the
		// ring buffer (the socket's cookie), which it polls, unlike the socket.
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("pass"),
	)
	insns = append(insns, lookupByCookie(divert, -48, "passon")...)
	return append(insns,
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, ring.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -48),
		asm.Mov.Imm(asm.R3, 8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
		// "passon": SK_PASS, the verdict done.
		asm.Mov.Imm(asm.R1, -1).WithSymbol("passon"),
		xadd(offActive, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, 1), // SK_PASS
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("none"),
		asm.Return(),
	)
}

// lookupOwnState: r6 = skb, r7 = this socket's sockState, the cookie at fp-8; to miss
// (SK_PASS) when it has none.
func lookupOwnState(peer *ebpf.Map, miss string) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	insns = append(insns, lookupByCookie(peer, -8, miss)...)
	return append(insns, asm.Mov.Reg(asm.R7, asm.R0))
}

// lookupByCookie: r0 = m's value for the cookie of the socket of skb r1 (the cookie kept at
// fp+slot); to miss when there is none.
func lookupByCookie(m *ebpf.Map, slot int16, miss string) asm.Instructions {
	return asm.Instructions{
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, slot, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(slot)),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, miss),
	}
}

// maxScan bounds the message headers one skb's walk looks at; an skb with more passes up.
const maxScan = 256

// recordStatus stores the ReadyForQuery status byte at skb offset r2 in state.Status.
func recordStatus() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -24),
		asm.Mov.Imm(asm.R4, 1),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.RFP, -24, asm.Byte),
		asm.StoreMem(asm.R7, 12, asm.R1, asm.Word),
	}
}

// scanAndRedirect walks the message headers of the skb from where the last skb's message
// ended (sockState.Left, or a header begun in the last skb: HdrLen, Hdr), recording a
// ReadyForQuery's status, and redirects the skb to the peer. More than maxScan headers, a
// length below 4, or an skb shorter than the rest of a header pass the skb up (SK_PASS): the
// experiment's proxy does not handle them (pgbench -S never sends them); a router would take
// the session back to user space there.
//
// With a divert map (handback mode), the verdict first counts itself in state.Active, and an
// skb of a socket whose divert entry is set passes up untouched: the framing in the state
// stays where the kernel left it, for user space to carry on from.
func scanAndRedirect(socks, peer, divert, ring *ebpf.Map) asm.Instructions {
	miss := "pass"
	if divert != nil {
		miss = "none" // before Active counts this verdict
	}
	insns := lookupOwnState(peer, miss)
	if divert != nil {
		one := asm.StoreXAdd(asm.R7, asm.R1, asm.Word)
		one.Offset = offActive
		insns = append(insns,
			asm.Mov.Imm(asm.R1, 1),
			one,
			asm.LoadMapPtr(asm.R1, divert.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "passon"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
			asm.JNE.Imm(asm.R1, 0, "passon"),
		)
	}
	insns = append(insns,
		asm.LoadMem(asm.R9, asm.R6, 0, asm.Word), // skb->len
		// A header the last skb ended in the middle of (HdrLen of its bytes in Hdr; 5 with a
		// ReadyForQuery whose status byte had not come): complete it from this skb.
		asm.LoadMem(asm.R1, asm.R7, offHdrLen, asm.Word),
		asm.JEq.Imm(asm.R1, 0, "fresh"),
		asm.JGT.Imm(asm.R1, 5, "pass"),
		asm.Mov.Imm(asm.R4, 5),
		asm.Sub.Reg(asm.R4, asm.R1), // need
		asm.JEq.Imm(asm.R4, 0, "whole"),
		asm.JGT.Reg(asm.R4, asm.R9, "pass"), // an skb shorter than the rest of a header
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, offHdr),
		asm.Add.Reg(asm.R3, asm.R1),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R3, asm.R7, offHdr+1, asm.Word).WithSymbol("whole"), // the length
		asm.HostTo(asm.BE, asm.R3, asm.Word),
		asm.JLT.Imm(asm.R3, 4, "pass"),
		asm.LoadMem(asm.R1, asm.R7, offHdrLen, asm.Word),
		asm.Mov.Reg(asm.R8, asm.R3),
		asm.Add.Imm(asm.R8, 1),
		asm.Sub.Reg(asm.R8, asm.R1),                   // pos: the message's end in this skb
		asm.LoadMem(asm.R2, asm.R7, offHdr, asm.Byte), // the type
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R7, offHdrLen, asm.R1, asm.Word),
		asm.StoreMem(asm.R7, 8, asm.R8, asm.Word), // as Left: the walk starts the same way
		asm.JNE.Imm(asm.R2, 'Z', "fresh"),
		asm.JNE.Imm(asm.R3, 5, "pass"),
		asm.Mov.Reg(asm.R2, asm.R8),
		asm.Sub.Imm(asm.R2, 1), // the status byte's offset
		asm.JGE.Reg(asm.R2, asm.R9, "pass"),
	)
	insns = append(insns, recordStatus()...)
	insns = append(insns,
		// pos := Left (reloaded after a carry too, so that the verifier meets one state at
		// the walk, not one per way in)
		asm.LoadMem(asm.R8, asm.R7, 8, asm.Word).WithSymbol("fresh"),
		asm.JGT.Reg(asm.R9, asm.R8, "walk"),
		// The whole skb is the middle of a message.
		asm.Sub.Reg(asm.R8, asm.R9),
		asm.StoreMem(asm.R7, 8, asm.R8, asm.Word),
		asm.Ja.Label("redirect"),
		asm.Mov.Imm(asm.R1, 0).WithSymbol("walk"),
		asm.StoreMem(asm.RFP, -32, asm.R1, asm.DWord), // headers seen
		// loop: while pos+5 <= len
		asm.Mov.Reg(asm.R2, asm.R8).WithSymbol("loop"),
		asm.Add.Imm(asm.R2, 5),
		asm.JGT.Reg(asm.R2, asm.R9, "end"),
		asm.LoadMem(asm.R1, asm.RFP, -32, asm.DWord),
		asm.JGE.Imm(asm.R1, maxScan, "pass"),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, -32, asm.R1, asm.DWord),
		// The 5-byte header at fp-9: the length lands aligned at fp-8.
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R8),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -9),
		asm.Mov.Imm(asm.R4, 5),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R3, asm.RFP, -8, asm.Word), // the length, big-endian
		asm.HostTo(asm.BE, asm.R3, asm.Word),
		asm.JLT.Imm(asm.R3, 4, "pass"),
		asm.LoadMem(asm.R2, asm.RFP, -9, asm.Byte), // the type
		asm.JNE.Imm(asm.R2, 'Z', "next"),
		asm.JNE.Imm(asm.R3, 5, "pass"),
		asm.Mov.Reg(asm.R2, asm.R8),
		asm.Add.Imm(asm.R2, 6),
		asm.JGT.Reg(asm.R2, asm.R9, "end"), // the status byte is in the next skb: carry
		asm.Sub.Imm(asm.R2, 1),
	)
	insns = append(insns, recordStatus()...)
	insns = append(insns,
		asm.Mov.Imm(asm.R3, 5),
		asm.Add.Reg(asm.R8, asm.R3).WithSymbol("next"), // pos += 1 + length
		asm.Add.Imm(asm.R8, 1),
		// Through memory the verifier does not follow, so that every iteration reaches the
		// loop's head in the same state but for the count: without this, the states it
		// keeps grow with each iteration and checking the loop costs maxScan squared.
		asm.StoreMem(asm.R7, offPos, asm.R8, asm.Word),
		asm.LoadMem(asm.R8, asm.R7, offPos, asm.Word),
		asm.Ja.Label("loop"),
		// end: pos < len is a header split across skbs (carried in Hdr); pos >= len leaves
		// pos-len to come.
		asm.JGE.Reg(asm.R8, asm.R9, "tail").WithSymbol("end"),
		asm.Mov.Reg(asm.R4, asm.R9),
		asm.Sub.Reg(asm.R4, asm.R8),
		asm.JGT.Imm(asm.R4, 5, "pass"),
		asm.JEq.Imm(asm.R4, 0, "pass"),
		asm.StoreMem(asm.R7, offHdrLen, asm.R4, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R8),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, offHdr),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(asm.R8, asm.R9),
		asm.Sub.Reg(asm.R8, asm.R9).WithSymbol("tail"),
		asm.StoreMem(asm.R7, 8, asm.R8, asm.Word),
	)
	insns = append(insns, redirectOrPass(socks, divert, ring)...)
	return insns
}

// pgMessageLength is the stream parser: a PostgreSQL message is its type byte plus the
// big-endian length at offset 1 (which counts itself); 0 (wait for more) until the header is
// there, and an error for a length below 4.
func pgMessageLength() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // __sk_buff.len
		asm.JGE.Imm(asm.R2, 5, "header"),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Imm(asm.R2, 1).WithSymbol("header"),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 4),
		asm.FnSkbLoadBytes.Call(),
		asm.JEq.Imm(asm.R0, 0, "loaded"),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.Word).WithSymbol("loaded"),
		asm.HostTo(asm.BE, asm.R0, asm.Word),
		asm.JLT.Imm(asm.R0, 4, "bad"),
		asm.Add.Imm(asm.R0, 1),
		asm.Return(),
		asm.Mov.Imm(asm.R0, -22).WithSymbol("bad"), // -EINVAL: strparser aborts the stream
		asm.Return(),
	}
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
		_ = p.peer.Update(cc, sockState{Peer: bc}, ebpf.UpdateAny)
	}
	_ = p.peer.Update(bc, sockState{Peer: cc}, ebpf.UpdateAny)
	defer p.peer.Delete(cc)
	defer p.peer.Delete(bc)
	var base [2]uint64 // bytes written to the client's and the backend's socket before
	kick := -1
	if p.mode == "handback" {
		_ = p.divert.Update(cc, uint32(0), ebpf.UpdateAny)
		_ = p.divert.Update(bc, uint32(0), ebpf.UpdateAny)
		defer p.divert.Delete(cc)
		defer p.divert.Delete(bc)
		base = [2]uint64{written(cfd) + uint64(len(buf)), written(bfd)}
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

// handBack takes a session's sockets (client, backend) back from the kernel without losing
// or reordering a byte: it sets both divert flags (from then on every verdict passes its skb
// up); waits until no verdict that could have missed the flag is still running (each counts
// itself in Active before it reads the flag: the store of the flag and the load of the count
// on this side, and the count's atomic add and the flag's load on the other, cannot both miss
// each other); then waits until each socket has taken every byte redirected to it (the
// redirect is queued to the target's psock and sent by a kworker): its bytes written (acked
// plus still queued) reach what user space wrote before plus what the peer's verdicts
// redirected.
func (p *sockmapProxy) handBack(cookies [2]uint64, fds [2]int, base [2]uint64) error {
	for _, c := range cookies {
		if err := p.divert.Update(c, uint32(1), ebpf.UpdateExist); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	var st [2]sockState
	for i, c := range cookies {
		for {
			if err := p.peer.Lookup(c, &st[i]); err != nil {
				return err
			}
			if st[i].Active == 0 {
				break
			}
			p.waits.Add(1)
			if time.Now().After(deadline) {
				return fmt.Errorf("socket %d: %d verdicts still running after 5 s", c, st[i].Active)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	for i := range fds {
		want := base[i] + st[1-i].Redirected // what the peer's verdicts sent to fds[i]
		if written(fds[i]) < want {
			p.waits.Add(1)
		}
		for written(fds[i]) < want {
			if time.Now().After(deadline) {
				return fmt.Errorf("socket %d: %d of %d bytes written after 5 s", cookies[i], written(fds[i]), want)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	return nil
}

// written is the bytes a TCP socket took from its writers so far: acknowledged plus still
// queued (read in that order, so an acknowledgement between the two reads can only make it
// smaller than the truth, never larger).
func written(fd int) uint64 {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0
	}
	q, err := unix.IoctlGetInt(fd, unix.TIOCOUTQ) // SIOCOUTQ
	if err != nil {
		return 0
	}
	return ti.Bytes_acked + uint64(q)
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
	fmt.Fprintf(&b, "\n## Extra paths: SCRAM pass-through and the kernel forwarding experiment (`-router-passthrough`, `-sockmap`)\n\n")
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
