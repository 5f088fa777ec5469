// Package kernelfwd builds the eBPF programs that forward a PostgreSQL session's bytes
// between two TCP sockets inside the kernel (an SK_SKB verdict on a SOCKHASH), with the
// cilium/ebpf asm package (no C, no clang): the plain redirect, the verdict that also walks
// the PostgreSQL message headers and records ReadyForQuery's status (the framing a router
// needs), and its hand-back variant (divert flags, an in-verdict count, the redirected bytes,
// a ring buffer for sockets that divert themselves). Probe says once whether the kernel
// allows them; HandBack is the barrier that takes a session's two sockets back to user space
// without losing or reordering a byte. bench/router's kernel-forwarding experiment uses it;
// the router's own integration is described in docs/architecture.md ("Kernel forwarding").
//
// It owns the programs, the layout of their map values and the barrier; it never reads or
// writes a session's bytes, and never touches sessions or the router's relay.
package kernelfwd

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// State is the value of the peer map, by socket cookie: the peer socket's cookie, the
// PostgreSQL framing carried across skbs, the last ReadyForQuery status and the hand-back's
// counters. A socket without an entry passes its data up.
type State struct {
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
	// Count (RouterScan): the messages of the counted type in the skbs redirected so far.
	Count uint32
}

// RedirectToPeer: cookie := bpf_get_socket_cookie(skb); st := lookup(peer, cookie); no
// entry: SK_PASS (to the socket's own queue); else bpf_sk_redirect_hash(skb, socks,
// &st.Peer, 0) (0: the peer's egress).
func RedirectToPeer(socks, peer *ebpf.Map) asm.Instructions {
	return append(lookupOwnState(peer, "pass"), redirectOrPass(socks, nil, nil)...)
}

// Offsets in State.
const (
	offPos        = 16
	offActive     = 20
	offRedirected = 24
	offHdrLen     = 32
	offHdr        = 39
	offCount      = 44
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

// lookupOwnState: r6 = skb, r7 = this socket's State, the cookie at fp-8; to miss
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

// MaxScan bounds the message headers one skb's walk looks at; an skb with more passes up.
const MaxScan = 256

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

// ScanAndRedirect walks the message headers of the skb from where the last skb's message
// ended (State.Left, or a header begun in the last skb: HdrLen, Hdr), recording a
// ReadyForQuery's status, and redirects the skb to the peer. More than MaxScan headers, a
// length below 4, or an skb shorter than the rest of a header pass the skb up (SK_PASS): the
// experiment's proxy does not handle them (pgbench -S never sends them); a router would take
// the session back to user space there.
//
// With a divert map (handback mode), the verdict first counts itself in state.Active, and an
// skb of a socket whose divert entry is set passes up untouched: the framing in the state
// stays where the kernel left it, for user space to carry on from.
func ScanAndRedirect(socks, peer, divert, ring *ebpf.Map) asm.Instructions {
	return scan(socks, peer, divert, ring, nil)
}

// RouterOpts are what RouterScan adds to the hand-back verdict.
type RouterOpts struct {
	// Allow are the message types the verdict may redirect: an skb with a header of any
	// other type diverts its socket (passes up whole, the ring buffer told), so that the
	// router's own loop sees that message.
	Allow []byte
	// Counted is the type whose messages State.Count counts (in redirected skbs only):
	// requests on a client socket, ReadyForQuery on a backend's.
	Counted byte
}

// RouterScan is ScanAndRedirect's hand-back variant as the router runs it (divert and ring
// are required), with two changes that keep the kernel's framing one the router's loop can
// take over at any hand-back: (1) only the types in o.Allow are redirected, any other diverts
// the socket; (2) a header split across skbs diverts the socket instead of being carried
// (HdrLen stays 0, and State.Left after a hand-back is always what remains of a message whose
// header the kernel passed on). State.Count counts o.Counted in redirected skbs.
func RouterScan(socks, peer, divert, ring *ebpf.Map, o RouterOpts) asm.Instructions {
	return scan(socks, peer, divert, ring, &o)
}

func scan(socks, peer, divert, ring *ebpf.Map, o *RouterOpts) asm.Instructions {
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
		asm.StoreMem(asm.RFP, -40, asm.R1, asm.DWord), // counted messages (RouterScan)
		// loop: while pos+5 <= len
		asm.Mov.Reg(asm.R2, asm.R8).WithSymbol("loop"),
		asm.Add.Imm(asm.R2, 5),
		asm.JGT.Reg(asm.R2, asm.R9, "end"),
		asm.LoadMem(asm.R1, asm.RFP, -32, asm.DWord),
		asm.JGE.Imm(asm.R1, MaxScan, "pass"),
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
	)
	isZ := asm.JNE.Imm(asm.R2, 'Z', "next")
	if o != nil {
		for _, t := range o.Allow {
			insns = append(insns, asm.JEq.Imm(asm.R2, int32(t), "allowed"))
		}
		insns = append(insns,
			asm.Ja.Label("pass"),
			asm.JNE.Imm(asm.R2, int32(o.Counted), "counted").WithSymbol("allowed"),
			asm.LoadMem(asm.R1, asm.RFP, -40, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.RFP, -40, asm.R1, asm.DWord),
		)
		isZ = isZ.WithSymbol("counted")
	}
	insns = append(insns,
		isZ,
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
		// keeps grow with each iteration and checking the loop costs MaxScan squared.
		asm.StoreMem(asm.R7, offPos, asm.R8, asm.Word),
		asm.LoadMem(asm.R8, asm.R7, offPos, asm.Word),
		asm.Ja.Label("loop"),
		// end: pos < len is a header split across skbs (carried in Hdr); pos >= len leaves
		// pos-len to come.
		asm.JGE.Reg(asm.R8, asm.R9, "tail").WithSymbol("end"),
	)
	if o != nil {
		insns = append(insns, asm.Ja.Label("pass")) // RouterScan: no carry, divert
	} else {
		insns = append(insns,
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
		)
	}
	insns = append(insns,
		asm.Sub.Reg(asm.R8, asm.R9).WithSymbol("tail"),
		asm.StoreMem(asm.R7, 8, asm.R8, asm.Word),
	)
	if o != nil {
		count := asm.StoreXAdd(asm.R7, asm.R1, asm.Word)
		count.Offset = offCount
		insns = append(insns, asm.LoadMem(asm.R1, asm.RFP, -40, asm.DWord), count)
	}
	insns = append(insns, redirectOrPass(socks, divert, ring)...)
	return insns
}

// PgMessageLength is the stream parser: a PostgreSQL message is its type byte plus the
// big-endian length at offset 1 (which counts itself); 0 (wait for more) until the header is
// there, and an error for a length below 4.
func PgMessageLength() asm.Instructions {
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

var (
	probeOnce sync.Once
	probeErr  error
)

// Probe says whether this kernel and process can forward in the kernel: it creates a SOCKHASH
// and a peer map, loads the scan verdict (the verifier's full check of the header walk) and
// attaches it, then frees them all. It runs once per process and keeps its answer: nil, or
// why not (not root, no BPF in a container, an older kernel), for the caller to log once and
// keep forwarding in user space.
func Probe() error {
	probeOnce.Do(func() { probeErr = probe() })
	return probeErr
}

func probe() error {
	socks, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bor_probe_socks", Type: ebpf.SockHash, KeySize: 8, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("kernel forwarding: creating a SOCKHASH: %w", err)
	}
	defer socks.Close()
	peer, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bor_probe_peer", Type: ebpf.Hash, KeySize: 8,
		ValueSize: uint32(binary.Size(State{})), MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("kernel forwarding: creating the peer map: %w", err)
	}
	defer peer.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bor_probe", Type: ebpf.SkSKB, License: "GPL",
		Instructions: ScanAndRedirect(socks, peer, nil, nil)})
	if err != nil {
		return fmt.Errorf("kernel forwarding: loading the sk_skb verdict: %w", err)
	}
	defer prog.Close()
	opts := link.RawAttachProgramOptions{Target: socks.FD(), Program: prog, Attach: ebpf.AttachSkSKBVerdict}
	if err := link.RawAttachProgram(opts); err != nil {
		return fmt.Errorf("kernel forwarding: attaching the sk_skb verdict: %w", err)
	}
	return link.RawDetachProgram(link.RawDetachProgramOptions{Target: socks.FD(), Program: prog, Attach: ebpf.AttachSkSKBVerdict})
}

// HandBack takes a session's sockets (client, backend) back from the kernel without losing
// or reordering a byte: it sets both divert flags (from then on every verdict passes its skb
// up); waits until no verdict that could have missed the flag is still running (each counts
// itself in Active before it reads the flag: the store of the flag and the load of the count
// on this side, and the count's atomic add and the flag's load on the other, cannot both miss
// each other); then waits until each socket has taken every byte redirected to it (the
// redirect is queued to the target's psock and sent by a kworker): its bytes written (acked
// plus still queued) reach what user space wrote before plus what the peer's verdicts
// redirected.
//
// divert and peer are the hand-back verdict's maps (ScanAndRedirect), cookies and fds the two
// sockets (client, backend), base what user space wrote to each before they entered the map;
// waits, when not nil, counts the barriers' waits.
func HandBack(divert, peer *ebpf.Map, cookies [2]uint64, fds [2]int, base [2]uint64, waits *atomic.Int64) error {
	for _, c := range cookies {
		if err := divert.Update(c, uint32(1), ebpf.UpdateExist); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	var st [2]State
	for i, c := range cookies {
		for {
			if err := peer.Lookup(c, &st[i]); err != nil {
				return err
			}
			if st[i].Active == 0 {
				break
			}
			if waits != nil {
				waits.Add(1)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("socket %d: %d verdicts still running after 5 s", c, st[i].Active)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	for i := range fds {
		want := base[i] + st[1-i].Redirected // what the peer's verdicts sent to fds[i]
		if Written(fds[i]) < want && waits != nil {
			waits.Add(1)
		}
		for Written(fds[i]) < want {
			if time.Now().After(deadline) {
				return fmt.Errorf("socket %d: %d of %d bytes written after 5 s", cookies[i], Written(fds[i]), want)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	return nil
}

// Written is the bytes a TCP socket took from its writers so far: acknowledged plus still
// queued (read in that order, so an acknowledgement between the two reads can only make it
// smaller than the truth, never larger).
func Written(fd int) uint64 {
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
