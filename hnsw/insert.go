package hnsw

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// Add inserts vec under id. The vector is copied (normalised under cosine).
// Errors: *DimensionError, ErrNonFinite, ErrZeroVector (cosine), ErrDuplicateID
// when id is already present or being added (a deleted id counts as present;
// the graph is left unchanged), *MemoryError when growing would exceed the limit.
func (x *Index) Add(id uint32, vec []float32) error {
	_, err := x.add(id, vec, false)
	return err
}

// AddTracked is Add that also returns, sorted and without repeats, every node
// whose neighbour list at any layer changed — the new node included — so the
// caller can rewrite exactly those pages.
func (x *Index) AddTracked(id uint32, vec []float32) (changed []uint32, err error) {
	return x.add(id, vec, true)
}

func (x *Index) add(id uint32, vec []float32, track bool) ([]uint32, error) {
	norm2, err := x.checkVector(vec)
	if err != nil {
		return nil, err
	}
	if err := x.ensureID(id); err != nil {
		return nil, err
	}
	defer x.grow.RUnlock()
	s := x.pool.get()
	defer x.pool.put(s)
	if err := x.insertLocked(s, id, vec, norm2); err != nil {
		return nil, err
	}
	if !track {
		return nil, nil
	}
	slices.Sort(s.changed)
	return slices.Compact(append([]uint32(nil), s.changed...)), nil
}

// insertLocked is the paper's INSERT (Algorithm 1). Caller holds grow shared
// and has made id addressable. s.changed collects the ids whose lists changed.
func (x *Index) insertLocked(s *scratch, id uint32, vec []float32, norm2 float64) error {
	if !atomic.CompareAndSwapUint32(&x.state[id], 0, statePending) {
		return fmt.Errorf("%w: id %d", ErrDuplicateID, id)
	}
	s.changed = append(s.changed[:0], id)
	level := x.levelOf(id)
	q := x.vec(id)
	x.store(q, vec, norm2)
	x.levels[id] = uint8(level)
	x.upper[id] = nil
	if level > 0 {
		x.upper[id] = make([]uint32, level*(x.m+1))
	}
	x.raiseIDLimit(id)

	e := x.entry.Load()
	for e == 0 {
		if x.entry.CompareAndSwap(0, packEntry(id, level)) {
			x.finishInsert(id)
			return nil
		}
		e = x.entry.Load()
	}
	ep, epLevel := uint32(e), int(e>>32)-1

	sp := searchSpec{accept: statePresent | statePending}
	s.entries = append(s.entries[:0], x.descend(s, q, ep, epLevel, level))
	for layer := min(level, epLevel); layer >= 0; layer-- {
		s.reset(len(x.state))
		s.visit(id)
		for _, c := range s.entries {
			if s.visit(c.id) {
				s.cand.push(c)
				if x.eligible(c.id, &sp) {
					s.res.push(c)
				}
			}
		}
		x.searchLayer(s, q, layer, x.efC, &sp)
		if len(s.res) == 0 {
			continue // every node reached is deleted: nothing to link to here
		}
		// W in ascending order becomes the selection input and the next layer's entries.
		s.cands = s.cands[:0]
		for len(s.res) > 0 {
			s.cands = append(s.cands, s.res.pop())
		}
		slices.Reverse(s.cands)
		s.entries = append(s.entries[:0], s.cands...)
		sel := x.selectNeighbors(s.cands, x.m, &s.sel, &s.pruned)

		x.locks[id].Lock()
		l := x.list(id, layer)
		for i, c := range sel {
			atomic.StoreUint32(&l[1+i], c.id)
		}
		atomic.StoreUint32(&l[0], uint32(len(sel)))
		x.locks[id].Unlock()

		for _, c := range sel {
			if x.link(s, c.id, id, c.dist, layer) {
				s.changed = append(s.changed, c.id)
			}
		}
	}

	if level > epLevel {
		for {
			cur := x.entry.Load()
			if int(cur>>32)-1 >= level || x.entry.CompareAndSwap(cur, packEntry(id, level)) {
				break
			}
		}
	}
	x.finishInsert(id)
	return nil
}

func (x *Index) finishInsert(id uint32) {
	atomic.StoreUint32(&x.state[id], statePresent)
	x.count.Add(1)
	x.live.Add(1)
}

// link adds the edge n → q (q at distance d from n) at layer, shrinking n's
// list with the heuristic when it is full. Deleted neighbours are dropped on
// the way. It reports whether n's list changed.
func (x *Index) link(s *scratch, n, q uint32, d float32, layer int) bool {
	x.locks[n].Lock()
	defer x.locks[n].Unlock()
	l := x.listFor(n, layer)
	if l == nil {
		return false
	}
	capn := x.capAt(layer)
	cnt := int(l[0])
	if cnt < capn {
		atomic.StoreUint32(&l[1+cnt], q)
		atomic.StoreUint32(&l[0], uint32(cnt+1))
		return true
	}
	vn := x.vec(n)
	cands := s.linkCands[:0]
	for i := 1; i <= cnt; i++ {
		e := l[i]
		if atomic.LoadUint32(&x.state[e])&stateDeleted != 0 {
			continue
		}
		cands = append(cands, candidate{dist: x.distance(vn, x.vec(e)), id: e})
	}
	cands = append(cands, candidate{dist: d, id: q})
	s.linkCands = cands
	sortAscending(cands)
	sel := x.selectNeighbors(cands, capn, &s.linkSel, &s.linkPruned)
	if len(sel) == cnt && !containsID(sel, q) {
		return false // q was the one pruned: the list keeps its old members
	}
	for i, c := range sel {
		atomic.StoreUint32(&l[1+i], c.id)
	}
	atomic.StoreUint32(&l[0], uint32(len(sel)))
	return true
}

func containsID(cs []candidate, id uint32) bool {
	for _, c := range cs {
		if c.id == id {
			return true
		}
	}
	return false
}
