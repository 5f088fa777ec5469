package hnsw

import (
	"fmt"
	"math"
	"sync/atomic"
)

// The functions in this file rebuild a graph exactly as it was stored (for
// instance from PostgreSQL pages into a backend's cache) without running any
// search: nodes, lists and the entry point are taken as given.

// Restore installs node id with its top layer, its vector and its neighbour
// lists (neighbors[l] is the list at layer l; missing layers are empty).
//
// vec is the stored form, as Vector returns it: under Cosine it should be unit
// length and is kept bit-for-bit when its norm is within 1e-4 of 1 (otherwise
// it is normalised, so a raw vector also works). Neighbour ids may name nodes
// not restored yet; storage grows to cover them. The entry point becomes id
// when the graph has none or id's level is higher; SetEntryPoint overrides.
// Errors: vector errors as in Add, ErrDuplicateID, ErrInvalidGraph for a bad
// level, a list longer than its layer's capacity, or a self-loop.
func (x *Index) Restore(id uint32, level int, vec []float32, neighbors [][]uint32) error {
	return x.restore(id, level, vec, neighbors, false)
}

func (x *Index) restore(id uint32, level int, vec []float32, neighbors [][]uint32, deleted bool) error {
	norm2, err := x.checkVector(vec)
	if err != nil {
		return err
	}
	if id > MaxID {
		return fmt.Errorf("%w: %d", ErrIDOutOfRange, id)
	}
	if level < 0 || level > maxLevel || len(neighbors) > level+1 {
		return fmt.Errorf("%w: node %d: level %d with %d layers of neighbours", ErrInvalidGraph, id, level, len(neighbors))
	}
	top := id
	for layer, ns := range neighbors {
		if len(ns) > x.capAt(layer) {
			return fmt.Errorf("%w: node %d layer %d: %d neighbours, capacity %d", ErrInvalidGraph, id, layer, len(ns), x.capAt(layer))
		}
		for _, e := range ns {
			if e == id || e > MaxID {
				return fmt.Errorf("%w: node %d links to %d", ErrInvalidGraph, id, e)
			}
			top = max(top, e)
		}
	}
	for {
		err := x.withID(top, func() error { return x.restoreLocked(id, level, vec, neighbors, deleted, norm2) })
		switch err {
		case errUpperFull:
			err = x.growUpper()
		case errArenaFull:
			err = x.growArena(compactWords(vec))
		default:
			return err
		}
		if err != nil {
			return err
		}
	}
}

// restoreLocked is restore once id is addressable (caller holds grow shared).
func (x *Index) restoreLocked(id uint32, level int, vec []float32, neighbors [][]uint32, deleted bool, norm2 float64) error {
	if atomic.LoadUint32(&x.state[id]) != 0 {
		return fmt.Errorf("%w: id %d", ErrDuplicateID, id)
	}
	var codeOff uint64
	if x.sparse {
		var ok bool
		if codeOff, ok = x.allocCode(compactWords(vec)); !ok {
			return errArenaFull
		}
	}
	off := uint32(0)
	if level > 0 {
		var ok bool
		if off, ok = x.allocUpper(level); !ok {
			return errUpperFull
		}
	}
	if !atomic.CompareAndSwapUint32(&x.state[id], 0, statePending) {
		return fmt.Errorf("%w: id %d", ErrDuplicateID, id)
	}
	asIs := x.metric != Cosine || math.Abs(norm2-1) <= 1e-4
	switch {
	case x.sparse:
		x.putSparse(id, codeOff, vec, !asIs, 1/math.Sqrt(norm2))
	case asIs && x.metric == Cosine:
		copy(x.vec(id), vec)
	default:
		x.store(x.vec(id), vec, norm2)
	}
	x.storeCodes(id)
	x.levels[id] = uint8(level)
	atomic.StoreUint32(&x.upperOff[id], off)
	x.lock(id).Lock()
	for layer := 0; layer <= level; layer++ {
		var ns []uint32
		if layer < len(neighbors) {
			ns = neighbors[layer]
		}
		x.writeList(id, layer, ns)
	}
	x.lock(id).Unlock()
	x.raiseIDLimit(id)
	st := statePresent
	if deleted {
		st |= stateDeleted
	} else {
		x.ctr.live.Add(1)
	}
	x.ctr.count.Add(1)
	atomic.StoreUint32(&x.state[id], st)
	for {
		e := x.ctr.entry.Load()
		if e != 0 && int(e>>32)-1 >= level || x.ctr.entry.CompareAndSwap(e, packEntry(id, level)) {
			return nil
		}
	}
}

// writeList stores ns as id's list at layer (caller holds grow shared and id's lock).
func (x *Index) writeList(id uint32, layer int, ns []uint32) {
	l := x.list(id, layer)
	for i, e := range ns {
		atomic.StoreUint32(&l[1+i], e)
	}
	atomic.StoreUint32(&l[0], uint32(len(ns))) // kept bits unknown: not valid
}

// SetNeighbors replaces id's list at layer with ids (copied), for a cache
// applying a page another backend changed. Errors: ErrNotFound, ErrInvalidGraph
// (layer above the node's level, too many ids, a self-loop).
func (x *Index) SetNeighbors(id uint32, layer int, ids []uint32) error {
	top := id
	for _, e := range ids {
		if e == id || e > MaxID {
			return fmt.Errorf("%w: node %d links to %d", ErrInvalidGraph, id, e)
		}
		top = max(top, e)
	}
	if err := x.ensureID(top); err != nil {
		return err
	}
	defer x.grow.RUnlock()
	if atomic.LoadUint32(&x.state[id])&statePresent == 0 {
		return fmt.Errorf("%w: id %d", ErrNotFound, id)
	}
	if layer < 0 || layer > int(x.levels[id]) || len(ids) > x.capAt(layer) {
		return fmt.Errorf("%w: node %d (level %d) layer %d with %d neighbours", ErrInvalidGraph, id, x.levels[id], layer, len(ids))
	}
	x.lock(id).Lock()
	x.writeList(id, layer, ids)
	x.lock(id).Unlock()
	return nil
}

// SetEntryPoint makes id, whose top layer must be level, the node searches
// start from. Errors: ErrNotFound, ErrInvalidGraph when level is not id's level.
func (x *Index) SetEntryPoint(id uint32, level int) error {
	if got := x.Level(id); got < 0 {
		return fmt.Errorf("%w: id %d", ErrNotFound, id)
	} else if got != level {
		return fmt.Errorf("%w: entry point %d has level %d, not %d", ErrInvalidGraph, id, got, level)
	}
	x.ctr.entry.Store(packEntry(id, level))
	return nil
}

// MarkDeleted flags id as deleted without repairing any list: for a cache
// whose pages already hold the repaired lists. Marking twice is a no-op.
func (x *Index) MarkDeleted(id uint32) error {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) {
		return fmt.Errorf("%w: id %d", ErrNotFound, id)
	}
	for {
		st := atomic.LoadUint32(&x.state[id])
		if st&statePresent == 0 {
			return fmt.Errorf("%w: id %d", ErrNotFound, id)
		}
		if st&stateDeleted != 0 {
			return nil
		}
		if atomic.CompareAndSwapUint32(&x.state[id], st, st|stateDeleted) {
			x.ctr.live.Add(-1)
			return nil
		}
	}
}
