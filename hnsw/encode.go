package hnsw

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Encoding, version 1. All integers little-endian.
//
//	header, 64 bytes:
//	  0  magic "BRLSHNSW"
//	  8  u16 version (1)            10 u8 metric    11 u8 element (0: float32)
//	 12  u32 dims                   16 u32 M        20 u32 efConstruction
//	 24  u64 seed
//	 32  u32 idLimit (number of node records that follow)
//	 36  u32 entry id               40 u32 entry level + 1 (0: no entry point)
//	 44  u32 nodes present (deleted included)
//	 48  12 reserved bytes (0)
//	 60  u32 CRC-32C of bytes 0..59
//	then one record per id 0..idLimit-1:
//	  0  u32 length L of the rest of the record (CRC included)
//	  4  u8 state: 0 absent, 1 present, 3 present and deleted
//	  5  u8 level   6 u16 reserved (0)
//	  8  present only: dims × float32 (stored form), then for each layer
//	     0..level: u32 count, count × u32 neighbour id
//	  …  u32 CRC-32C of bytes 4..4+L-4 of the record
//
// Records are self-contained and checksummed, so the index AM can place whole
// records into 8 KB pages (NodeRecordSize says how big each is; at M = 16 a
// level-0 node fits one page up to about 1,900 dimensions) and hand them back
// concatenated to Decode, or use AppendNode to rewrite only changed nodes.

const (
	headerSize    = 64
	encodeVersion = 1
	magic         = "BRLSHNSW"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode appends the whole graph to dst. Run it while no writer is active
// for a consistent snapshot (concurrent searches are fine).
func (x *Index) Encode(dst []byte) []byte {
	x.grow.RLock()
	limit := x.ctr.idLimit.Load()
	x.grow.RUnlock()
	var h [headerSize]byte
	copy(h[0:], magic)
	binary.LittleEndian.PutUint16(h[8:], encodeVersion)
	h[10] = byte(x.metric)
	h[11] = byte(x.elem)
	binary.LittleEndian.PutUint32(h[12:], uint32(x.dims))
	binary.LittleEndian.PutUint32(h[16:], uint32(x.m))
	binary.LittleEndian.PutUint32(h[20:], uint32(x.efC))
	binary.LittleEndian.PutUint64(h[24:], x.seed)
	binary.LittleEndian.PutUint32(h[32:], limit)
	if id, level, ok := x.EntryPoint(); ok {
		binary.LittleEndian.PutUint32(h[36:], id)
		binary.LittleEndian.PutUint32(h[40:], uint32(level+1))
	}
	binary.LittleEndian.PutUint32(h[44:], uint32(x.ctr.count.Load()))
	binary.LittleEndian.PutUint32(h[60:], crc32.Checksum(h[:60], castagnoli))
	dst = append(dst, h[:]...)
	for id := range limit {
		dst = x.AppendNode(dst, id)
	}
	return dst
}

// NodeRecordSize is the encoded size of a present node with the given level
// whose lists are full (the largest its record can be).
func NodeRecordSize(dims, M, level int) int {
	return 4 + 4 + 4*dims + (4 + 8*M) + level*(4+4*M) + 4
}

// AppendNode appends id's record (see Encode) to dst; an id that is not
// present gets an absent record.
func (x *Index) AppendNode(dst []byte, id uint32) []byte {
	x.grow.RLock()
	defer x.grow.RUnlock()
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // length, patched below
	var st uint32
	if int(id) < len(x.state) {
		st = x.stateOfLocked(id)
	}
	if st&statePresent == 0 {
		dst = append(dst, 0, 0, 0, 0)
	} else {
		code := byte(1)
		if st&stateDeleted != 0 {
			code = 3
		}
		level := int(x.levels[id])
		dst = append(dst, code, byte(level), 0, 0)
		v := x.vec(id)
		if x.sparse {
			v = make([]float32, x.dims)
			widen(v, x.sparseVec(id))
		}
		for _, c := range v {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(c))
		}
		x.lock(id).Lock() // a consistent copy of each list
		for layer := 0; layer <= level; layer++ {
			l := x.listFor(id, layer)
			n := 0
			if l != nil {
				n = loadCount(l)
			}
			dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
			for i := range n {
				dst = binary.LittleEndian.AppendUint32(dst, loadID(l, i))
			}
		}
		x.lock(id).Unlock()
	}
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start+4:], castagnoli))
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func (x *Index) stateOfLocked(id uint32) uint32 {
	return atomicLoad(&x.state[id])
}

// decodedNode is one parsed record, pointing into the input.
type decodedNode struct {
	state byte
	level int
	vec   []byte
	lists [][]byte // per layer, count × u32
}

// Decode rebuilds an index from Encode's output. It checks everything —
// magic, version, checksums, parameters, record lengths, levels, list sizes,
// neighbour ids (in range, present, reaching that layer, no self-loops),
// finite (and under cosine unit-length) vectors, the entry point and the node
// count — and returns a *CorruptError (errors.Is ErrCorrupt) rather than
// panicking on any damage. opts supplies only Threads, MemoryLimit and
// QuantizedSearch; the rest comes from the encoding. To bound what a damaged
// header can make it allocate, the memory estimate may not exceed 32× the
// input size + 1 MiB.
func Decode(data []byte, opts Options) (*Index, error) {
	bad := func(off int, format string, a ...any) error {
		return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, a...)}
	}
	if len(data) < headerSize {
		return nil, bad(0, "%d bytes, shorter than the %d-byte header", len(data), headerSize)
	}
	h := data[:headerSize]
	if string(h[:8]) != magic {
		return nil, bad(0, "bad magic")
	}
	if got, want := binary.LittleEndian.Uint32(h[60:]), crc32.Checksum(h[:60], castagnoli); got != want {
		return nil, bad(60, "header checksum %08x, computed %08x", got, want)
	}
	if v := binary.LittleEndian.Uint16(h[8:]); v != encodeVersion {
		return nil, bad(8, "unsupported version %d", v)
	}
	metric := Metric(h[10])
	dims := int(binary.LittleEndian.Uint32(h[12:]))
	m := int(binary.LittleEndian.Uint32(h[16:]))
	efC := int(binary.LittleEndian.Uint32(h[20:]))
	x, err := New(dims, metric, Options{M: max(m, 1), EfConstruction: max(efC, 1),
		Seed: binary.LittleEndian.Uint64(h[24:]), Threads: opts.Threads, MemoryLimit: opts.MemoryLimit,
		QuantizedSearch: opts.QuantizedSearch, Quantization: opts.Quantization, Element: Element(h[11])})
	if err != nil || m == 0 || efC == 0 {
		return nil, bad(10, "bad parameters (metric %d, dims %d, M %d, efConstruction %d)", metric, dims, m, efC)
	}
	limit := int(binary.LittleEndian.Uint32(h[32:]))
	entryID := binary.LittleEndian.Uint32(h[36:])
	entryLevel := int(binary.LittleEndian.Uint32(h[40:])) - 1
	count := int(binary.LittleEndian.Uint32(h[44:]))
	if limit > (len(data)-headerSize)/8 {
		return nil, bad(32, "%d records cannot fit in %d bytes", limit, len(data)-headerSize)
	}
	if EstimateMemory(limit, dims, m) > 32*int64(len(data))+1<<20 {
		return nil, bad(32, "%d records of %d dims are implausibly large for %d bytes", limit, dims, len(data))
	}

	// Pass 1: parse and check every record structurally, allocating only the
	// record index.
	nodes := make([]decodedNode, limit)
	off := headerSize
	present := 0
	for id := range nodes {
		if len(data)-off < 8 {
			return nil, bad(off, "record %d truncated", id)
		}
		l := int(binary.LittleEndian.Uint32(data[off:]))
		if l < 8 || l > len(data)-off-4 {
			return nil, bad(off, "record %d length %d out of range", id, l)
		}
		rec := data[off+4 : off+4+l-4]
		if got, want := binary.LittleEndian.Uint32(data[off+l:]), crc32.Checksum(rec, castagnoli); got != want {
			return nil, bad(off+l, "record %d checksum %08x, computed %08x", id, got, want)
		}
		nd := &nodes[id]
		nd.state, nd.level = rec[0], int(rec[1])
		if rec[2] != 0 || rec[3] != 0 {
			return nil, bad(off+6, "record %d: reserved bytes set", id)
		}
		switch nd.state {
		case 0:
			if len(rec) != 4 || nd.level != 0 {
				return nil, bad(off, "absent record %d has a body", id)
			}
		case 1, 3:
			present++
			if nd.level > maxLevel {
				return nil, bad(off+5, "record %d: level %d above %d", id, nd.level, maxLevel)
			}
			p := 4
			if len(rec)-p < 4*dims {
				return nil, bad(off+4+p, "record %d: vector truncated", id)
			}
			nd.vec = rec[p : p+4*dims]
			p += 4 * dims
			nd.lists = make([][]byte, nd.level+1)
			for layer := range nd.lists {
				if len(rec)-p < 4 {
					return nil, bad(off+4+p, "record %d layer %d: count truncated", id, layer)
				}
				n := int(binary.LittleEndian.Uint32(rec[p:]))
				p += 4
				if n > x.capAt(layer) || len(rec)-p < 4*n {
					return nil, bad(off+4+p, "record %d layer %d: %d neighbours (capacity %d)", id, layer, n, x.capAt(layer))
				}
				nd.lists[layer] = rec[p : p+4*n]
				p += 4 * n
			}
			if p != len(rec) {
				return nil, bad(off+4+p, "record %d: %d trailing bytes", id, len(rec)-p)
			}
		default:
			return nil, bad(off+4, "record %d: state %d", id, nd.state)
		}
		off += 4 + l
	}
	if off != len(data) {
		return nil, bad(off, "%d bytes after the last record", len(data)-off)
	}
	if present != count {
		return nil, bad(44, "header says %d nodes, records hold %d", count, present)
	}
	if (count == 0) != (entryLevel < 0) {
		return nil, bad(40, "entry point inconsistent with %d nodes", count)
	}
	if entryLevel >= 0 {
		if int(entryID) >= limit || nodes[entryID].state == 0 || nodes[entryID].level != entryLevel {
			return nil, bad(36, "entry point %d at level %d is not a node of that level", entryID, entryLevel)
		}
	}
	// Neighbour ids must be present nodes that reach the layer.
	for id, nd := range nodes {
		for layer, lb := range nd.lists {
			for i := 0; i < len(lb); i += 4 {
				e := binary.LittleEndian.Uint32(lb[i:])
				if int(e) >= limit || e == uint32(id) || nodes[e].state == 0 || nodes[e].level < layer {
					return nil, bad(headerSize, "record %d layer %d: invalid neighbour %d", id, layer, e)
				}
			}
		}
	}

	// Pass 2: build.
	if err := x.Reserve(limit); err != nil {
		return nil, err
	}
	vec := make([]float32, dims)
	var lists [][]uint32
	for id, nd := range nodes {
		if nd.state == 0 {
			continue
		}
		var norm2 float64
		for i := range vec {
			vec[i] = math.Float32frombits(binary.LittleEndian.Uint32(nd.vec[4*i:]))
			norm2 += float64(vec[i]) * float64(vec[i])
		}
		if _, err := x.checkVector(vec); err != nil {
			return nil, bad(headerSize, "record %d: %v", id, err)
		}
		if metric == Cosine && math.Abs(norm2-1) > 1e-4 {
			return nil, bad(headerSize, "record %d: cosine vector is not unit length", id)
		}
		lists = lists[:0]
		for _, lb := range nd.lists {
			ns := make([]uint32, len(lb)/4)
			for i := range ns {
				ns[i] = binary.LittleEndian.Uint32(lb[4*i:])
			}
			lists = append(lists, ns)
		}
		if err := x.restore(uint32(id), nd.level, vec, lists, nd.state == 3); err != nil {
			return nil, bad(headerSize, "record %d: %v", id, err)
		}
	}
	if entryLevel >= 0 {
		x.ctr.entry.Store(packEntry(entryID, entryLevel))
	}
	x.ctr.idLimit.Store(uint32(limit)) // trailing absent records keep the id space as encoded
	return x, nil
}
