package hnsw

import (
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// Sparse elements keep their codes compact, in an arena, rather than at the
// type's fixed width. A sparse code is 1 + 2·room words wide (room: 1,000 for a
// sparsevec of 1,000 or more dimensions) whatever its non-zeros, so a fixed
// slab costs 8 kB per element where a typical 100-non-zero vector needs 804
// bytes. In the arena each node holds only its 1 + 2n words — n, its n indices,
// its n values, the same words as a compact page tuple — and one reference word
// (codeRef) packs where they are: word offset << 16 | words, 0 for none.
//
// Room is claimed with a compare-and-swap on the shared counter ctr.arenaUsed,
// a bump allocator like the upper-layer slab's, so the arena is offsets only
// and a mapped one serves every process at any address. A writer fills the
// words it claimed, then stores the reference atomically, then publishes the
// node (its state) and only then links anyone to it: a reader that reaches a
// node through a list sees its code whole. A node without a reference reads
// as the empty code (n = 0), never out of range, and a reference that does not
// fit the arena reads the same way (a damaged file gives wrong distances, not
// a crash; such files are never trusted anyway). Room is never reused: an
// insert that is released after claiming it wastes it, as the upper slab does.
//
// A heap graph grows its arena by doubling; a mapped one is sized by its owner
// (Options.ArenaWords) and returns ErrFull when it runs out, like the upper
// slab, so the owner maps a larger one.

const (
	refWordsBits = 16
	refWordsMask = 1<<refWordsBits - 1
)

// emptySparse is the code of a node with no reference: no non-zeros. Read only.
var emptySparse = []float32{0}

// compactWords is the number of arena words sparse code v (wide or compact) takes.
func compactWords(v []float32) int {
	room := (len(v) - 1) / 2
	n := int(math.Float32bits(v[0]))
	if n > room {
		n = room
	}
	return 1 + 2*n
}

// sparseVec is the compact code of id (caller holds grow).
func (x *Index) sparseVec(id uint32) []float32 {
	r := atomic.LoadUint64(&x.codeRef[id])
	off, w := r>>refWordsBits, r&refWordsMask
	if w == 0 || off+w > uint64(len(x.arena)) {
		return emptySparse
	}
	return x.arena[off : off+w : off+w]
}

// allocCode claims words of the arena and returns their offset; ok is false
// when the arena is full (caller holds grow shared; growArena makes room).
func (x *Index) allocCode(words int) (off uint64, ok bool) {
	need := uint64(words)
	for {
		used := x.ctr.arenaUsed.Load()
		if used+need > uint64(len(x.arena)) {
			return 0, false
		}
		if x.ctr.arenaUsed.CompareAndSwap(used, used+need) {
			return used, true
		}
	}
}

// growArena doubles a heap graph's arena (caller holds no lock); a mapped one
// is full.
func (x *Index) growArena(need int) error {
	x.grow.Lock()
	defer x.grow.Unlock()
	if x.mapped {
		return fmt.Errorf("%w: sparse code arena of %d words is full (%d more needed)", ErrFull, len(x.arena), need)
	}
	x.arena = growSlice(x.arena, 2*len(x.arena)+max(need, 64*x.dims))
	return nil
}

// claimCode claims room for the compact form of v, growing a heap graph's
// arena as needed (caller holds no lock).
func (x *Index) claimCode(v []float32) (uint64, error) {
	w := compactWords(v)
	for {
		x.grow.RLock()
		off, ok := x.allocCode(w)
		x.grow.RUnlock()
		if ok {
			return off, nil
		}
		if err := x.growArena(w); err != nil {
			return 0, err
		}
	}
}

// putSparse writes the compact form of sparse code v at arena offset off
// (claimed for compactWords(v) words), its values multiplied by scale when
// normalise is set (cosine), then points id at it (caller holds grow shared and
// owns id, which nobody can reach yet).
func (x *Index) putSparse(id uint32, off uint64, v []float32, normalise bool, scale float64) {
	idx, val := sparseParts(v)
	n := len(idx)
	dst := x.arena[off : off+uint64(1+2*n)]
	dst[0] = math.Float32frombits(uint32(n))
	if n > 0 {
		copy(unsafe.Slice((*int32)(unsafe.Pointer(&dst[1])), n), idx)
	}
	vals := dst[1+n:]
	if normalise {
		for i, c := range val {
			vals[i] = float32(float64(c) * scale)
		}
	} else {
		copy(vals, val)
	}
	atomic.StoreUint64(&x.codeRef[id], off<<refWordsBits|uint64(1+2*n))
}

// widen writes compact sparse code c into dst (dims words) in the type's wide
// layout: n, room indices, room values, zero padded.
func widen(dst, c []float32) {
	clear(dst)
	room := (len(dst) - 1) / 2
	idx, val := sparseParts(c)
	n := min(len(idx), room)
	dst[0] = math.Float32frombits(uint32(n))
	copy(dst[1:1+room], c[1:1+n])
	copy(dst[1+room:], val[:n])
}

// ArenaUsed reports the words of sparse code arena in use and its size (both
// 0 for other element types).
func (x *Index) ArenaUsed() (used, size int64) {
	x.grow.RLock()
	defer x.grow.RUnlock()
	return int64(x.ctr.arenaUsed.Load()), int64(len(x.arena))
}

// arenaWords is a mapped sparse graph's arena size (0 otherwise: a heap graph grows its own).
func (x *Index) arenaWords() int64 {
	if !x.sparse || !x.mapped {
		return 0
	}
	return int64(len(x.arena))
}

// reserveCodes makes room in a heap graph's arena for the compact forms of
// vecs, so that a batch inserted by several goroutines does not stop to grow
// it; a mapped graph must have the room already (ErrFull).
func (x *Index) reserveCodes(vecs [][]float32) error {
	if !x.sparse {
		return nil
	}
	need := 0
	for _, v := range vecs {
		need += compactWords(v)
	}
	x.grow.RLock()
	free := len(x.arena) - int(x.ctr.arenaUsed.Load())
	x.grow.RUnlock()
	if need <= free {
		return nil
	}
	return x.growArena(need - free)
}
