package hnsw

import (
	"fmt"
	"unsafe"
)

// A mapped graph lives in memory the caller provides, typically a file
// mapping shared by every PostgreSQL backend of a node: Attach lays the graph
// out (or finds it) there and returns an Index whose slabs are slices over
// that memory, with no copy into the Go heap. Everything in it is an offset,
// never a pointer, so any process can map it at any address.
//
// Layout (little-endian, each slab 64-byte aligned, capacity C nodes):
//
//	mappedHeader (magic, version, dims, metric, m, ef_construction, quantized,
//	              capacity, upper words, then the counters)
//	locks    4096 × u32 (list locks, striped by id)
//	state    C × u32      levels  C × u8      upperOff C × u32
//	links0   C × (2m+1) × u32                 upperSlab upperWords(C, m) × u32
//	scales   C × f32  (quantized)             norms2   C × f32 (quantized L2)
//	codes    C × n × i8 (quantized)           vectors  C × dims × f32
//	(n = dims, or 2·dims components for Half rows; binary quantization: bits
//	C × ⌈n/64⌉ × u64 in place of scales, norms2 and codes; the header's
//	quantized word is 0 none, 1 int8, 2 binary)
//	(Sparse elements: codeRef C × u64 and arena A × f32 in place of vectors,
//	A = Options.ArenaWords, recorded in the header: compact codes, arena.go)
//
// The graph cannot grow past C (ErrFull): its owner maps a larger one. Any
// number of processes search it and insert into it at once (PostgreSQL
// backends inserting into one index): list writers take spin locks kept in
// the mapping, ids, upper-layer room and the entry point are claimed with
// atomics on the shared counters, a node is published by one atomic store of
// its state after its vector and lists are written, and every list word is
// read and written atomically, so a reader never sees a torn id. Deletes and
// restores still need the caller to exclude inserts (PostgreSQL's VACUUM and
// cache loads do).

const (
	mappedMagic   = 0x48475242 // "BRGH"
	mappedVersion = 3          // 2: list lock words, so several processes may insert at once; 3: sparse code arena
)

type mappedHeader struct {
	magic, version uint32
	dims, metric   uint32
	m, efc         uint32
	quant          uint32
	_              uint32
	capacity       uint64
	upperWords     uint64
	arenaWords     uint64
	ctr            counters
}

type mappedLayout struct {
	locks, state, levels, upperOff, links0, upperSlab, scales, norms2, codes, bits, vectors, size int64
	codeRef, arena                                                                                int64
	upperWords, arenaWords                                                                        int64
}

// arenaFor is the arena a mapped graph of element type e gets: the words asked for, or room for
// every node at full width (0: not Sparse).
func arenaFor(e Element, dims, capacity int, asked int64) int64 {
	if e != Sparse {
		return 0
	}
	if asked <= 0 || asked > int64(capacity)*int64(dims) {
		return int64(capacity) * int64(dims)
	}
	return asked
}

func layoutFor(dims int, metric Metric, m int, quant Quantization, capacity int, e Element, arenaWords int64) mappedLayout {
	var l mappedLayout
	at := int64(unsafe.Sizeof(mappedHeader{}))
	take := func(n int64) int64 {
		at = (at + 63) &^ 63
		o := at
		at += n
		return o
	}
	c := int64(capacity)
	l.upperWords = int64(upperWords(capacity, m))
	l.locks = take(4 * lockStripes)
	l.state = take(4 * c)
	l.levels = take(c)
	l.upperOff = take(4 * c)
	l.links0 = take(4 * c * int64(2*m+1))
	l.upperSlab = take(4 * l.upperWords)
	switch quant {
	case QuantBinary:
		l.bits = take(8 * c * int64((codeDims(dims, e)+63)/64))
	case QuantInt8:
		l.scales = take(4 * c)
		if metric == L2 {
			l.norms2 = take(4 * c)
		}
		l.codes = take(c * int64(codeDims(dims, e)))
	}
	if e == Sparse {
		l.arenaWords = arenaFor(e, dims, capacity, arenaWords)
		l.codeRef = take(8 * c)
		l.arena = take(4 * l.arenaWords)
	} else {
		l.vectors = take(4 * c * int64(dims))
	}
	l.size = (at + 4095) &^ 4095
	return l
}

// MappedSize is the number of bytes Attach needs for a graph of capacity nodes.
func MappedSize(dims int, metric Metric, opts Options, capacity int) int64 {
	m := opts.M
	if m == 0 {
		m = 16
	}
	q := opts.Quantization
	if opts.QuantizedSearch && q == QuantNone {
		q = QuantInt8
	}
	return layoutFor(dims, metric, m, q, capacity, opts.Element, opts.ArenaWords).size
}

// Attach returns an Index over mem, which must be MappedSize bytes or more and
// 8-byte aligned. With init, mem must be zero and Attach writes an empty graph
// into it; otherwise it checks that mem holds a graph of these parameters and
// opens it as it is (MemoryLimit and Threads still apply to this process; a
// Sparse graph's ArenaWords, when 0, is taken from its header).
// The caller keeps mem mapped for as long as the Index, and every Iterator
// over it, is in use.
func Attach(mem []byte, dims int, metric Metric, opts Options, capacity int, init bool) (*Index, error) {
	x, err := New(dims, metric, opts)
	if err != nil {
		return nil, err
	}
	if capacity <= 0 || int64(capacity) > MaxID {
		return nil, fmt.Errorf("%w: capacity %d", ErrInvalidOptions, capacity)
	}
	if len(mem) < int(unsafe.Sizeof(mappedHeader{})) {
		return nil, fmt.Errorf("%w: %d bytes mapped, shorter than a graph header", ErrCorrupt, len(mem))
	}
	h := (*mappedHeader)(unsafe.Pointer(&mem[0]))
	arena := opts.ArenaWords
	if !init && arena == 0 && x.sparse {
		arena = int64(h.arenaWords) // checked against the mapping's size below
	}
	l := layoutFor(dims, metric, x.m, x.Quantization(), capacity, x.elem, arena)
	if int64(len(mem)) < l.size {
		return nil, fmt.Errorf("%w: %d bytes mapped, a graph of %d nodes needs %d", ErrCorrupt, len(mem), capacity, l.size)
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, fmt.Errorf("%w: mapping is not 8-byte aligned", ErrInvalidOptions)
	}
	want := mappedHeader{magic: mappedMagic, version: mappedVersion, dims: uint32(dims), metric: uint32(metric) | uint32(x.elem)<<8,
		m: uint32(x.m), efc: uint32(x.efC), capacity: uint64(capacity), upperWords: uint64(l.upperWords),
		arenaWords: uint64(l.arenaWords)}
	want.quant = uint32(x.Quantization())
	if init {
		h.magic, h.version, h.dims, h.metric = want.magic, want.version, want.dims, want.metric
		h.m, h.efc, h.quant, h.capacity, h.upperWords = want.m, want.efc, want.quant, want.capacity, want.upperWords
		h.arenaWords = want.arenaWords
	} else if h.magic != want.magic || h.version != want.version || h.dims != want.dims || h.metric != want.metric ||
		h.m != want.m || h.quant != want.quant || h.capacity != want.capacity || h.upperWords != want.upperWords ||
		h.arenaWords != want.arenaWords {
		return nil, fmt.Errorf("%w: mapped graph header (magic %#x version %d dims %d metric %d m %d capacity %d arena %d) does not match",
			ErrCorrupt, h.magic, h.version, h.dims, h.metric, h.m, h.capacity, h.arenaWords)
	}
	if !init && (h.ctr.upperUsed.Load() > uint64(l.upperWords) || h.ctr.idLimit.Load() > uint32(capacity) ||
		h.ctr.arenaUsed.Load() > uint64(l.arenaWords)) {
		return nil, fmt.Errorf("%w: mapped graph counters out of range", ErrCorrupt)
	}
	c := capacity
	x.ctr = &h.ctr
	x.mapped = true
	x.sharedLocks = sliceAt[uint32](mem, l.locks, lockStripes)
	x.state = sliceAt[uint32](mem, l.state, c)
	x.levels = sliceAt[uint8](mem, l.levels, c)
	x.upperOff = sliceAt[uint32](mem, l.upperOff, c)
	x.links0 = sliceAt[uint32](mem, l.links0, c*(x.m0+1))
	x.upperSlab = sliceAt[uint32](mem, l.upperSlab, int(l.upperWords))
	if x.bin {
		x.bits = sliceAt[uint64](mem, l.bits, c*x.words)
	} else if x.quant {
		x.scales = sliceAt[float32](mem, l.scales, c)
		if metric == L2 {
			x.norms2 = sliceAt[float32](mem, l.norms2, c)
		}
		x.codes = sliceAt[int8](mem, l.codes, c*x.cdims)
	}
	if x.sparse {
		x.codeRef = sliceAt[uint64](mem, l.codeRef, c)
		x.arena = sliceAt[float32](mem, l.arena, int(l.arenaWords))
	} else {
		x.vectors = sliceAt[float32](mem, l.vectors, c*dims)
	}
	return x, nil
}

// Capacity is the number of node ids the graph has room for without growing
// (for a mapped graph, the most it will ever hold).
func (x *Index) Capacity() int {
	x.grow.RLock()
	defer x.grow.RUnlock()
	return len(x.state)
}

// Mapped reports whether the graph lives in memory given to Attach.
func (x *Index) Mapped() bool { return x.mapped }

func sliceAt[T any](mem []byte, off int64, n int) []T {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&mem[off])), n)
}
