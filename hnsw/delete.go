package hnsw

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// Delete removes id from search results and repairs the graph around it.
// See DeleteTracked.
func (x *Index) Delete(id uint32) error {
	_, err := x.DeleteTracked(id)
	return err
}

// DeleteTracked marks id deleted and repairs the lists that pointed through
// it, returning (sorted, without repeats) the ids whose lists changed.
//
// The node stays in the graph as a tombstone: its vector and its own lists
// are kept so that edges still pointing at it keep routing searches, but it is
// never returned and never chosen as a new neighbour. Each of its neighbours n
// that links back to it gets a new list chosen by the selection heuristic
// from n's other neighbours plus the deleted node's neighbours, so the paths
// that ran through the deleted node now bypass it. If it was the entry point,
// the live node with the highest level takes over. Deleting an id twice is a
// no-op; deleting an unknown id returns ErrNotFound.
func (x *Index) DeleteTracked(id uint32) ([]uint32, error) {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) {
		return nil, fmt.Errorf("%w: id %d", ErrNotFound, id)
	}
	for {
		st := atomic.LoadUint32(&x.state[id])
		if st&statePresent == 0 {
			return nil, fmt.Errorf("%w: id %d", ErrNotFound, id)
		}
		if st&stateDeleted != 0 {
			return nil, nil
		}
		if atomic.CompareAndSwapUint32(&x.state[id], st, st|stateDeleted) {
			break
		}
	}
	x.ctr.live.Add(-1)

	s := x.pool.get()
	defer x.pool.put(s)
	var changed []uint32
	for layer := 0; layer <= int(x.levels[id]); layer++ {
		l := x.listFor(id, layer)
		if l == nil {
			continue
		}
		// Snapshot the deleted node's list: the repairs below read it.
		around := s.changed[:0]
		for i := range loadCount(l) {
			around = append(around, loadID(l, i))
		}
		s.changed = around
		for _, nb := range around {
			if atomic.LoadUint32(&x.state[nb])&stateDeleted == 0 && x.repair(s, nb, id, around, layer) {
				changed = append(changed, nb)
			}
		}
	}
	if e := x.ctr.entry.Load(); e != 0 && uint32(e) == id {
		x.replaceEntry(e)
	}
	slices.Sort(changed)
	return slices.Compact(changed), nil
}

// repair rebuilds n's list at layer without del, choosing from n's remaining
// neighbours and del's neighbours `around`. It reports whether n's list
// changed (false when n did not point to del).
func (x *Index) repair(s *scratch, n, del uint32, around []uint32, layer int) bool {
	x.lock(n).Lock()
	defer x.lock(n).Unlock()
	l := x.listFor(n, layer)
	if l == nil {
		return false
	}
	cnt := loadCount(l)
	found := false
	for i := range cnt {
		found = found || loadID(l, i) == del
	}
	if !found {
		return false
	}
	s.reset(int(x.ctr.idLimit.Load()))
	s.visit(n)
	s.visit(del)
	vn := x.vec(n)
	cands := s.linkCands[:0]
	add := func(e uint32) {
		if s.visit(e) && atomic.LoadUint32(&x.state[e])&stateDeleted == 0 && x.listFor(e, layer) != nil {
			cands = append(cands, candidate{dist: x.distance(vn, x.vec(e)), id: e})
		}
	}
	for i := range cnt {
		add(loadID(l, i))
	}
	for _, e := range around {
		add(e)
	}
	s.linkCands = cands
	sortAscending(cands)
	sel, nKept := x.selectNeighbors(s, cands, x.capAt(layer), &s.linkSel, &s.linkPruned)
	writeSelected(l, sel, nKept)
	return true
}

// replaceEntry moves the entry point off a deleted node (old) onto the live
// node with the highest level, lowest id first. With no live node left the
// tombstone stays: searches return nothing anyway.
func (x *Index) replaceEntry(old uint64) {
	x.entryMu.Lock()
	defer x.entryMu.Unlock()
	if x.ctr.entry.Load() != old {
		return
	}
	best, bestLevel := uint32(0), -1
	for id := range uint32(len(x.state)) {
		st := atomic.LoadUint32(&x.state[id])
		if st&statePresent != 0 && st&stateDeleted == 0 && int(x.levels[id]) > bestLevel {
			best, bestLevel = id, int(x.levels[id])
		}
	}
	if bestLevel >= 0 {
		x.ctr.entry.CompareAndSwap(old, packEntry(best, bestLevel))
	}
}
