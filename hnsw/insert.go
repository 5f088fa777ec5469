package hnsw

import (
	"fmt"
	"math"
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
	if id > MaxID {
		return nil, fmt.Errorf("%w: %d", ErrIDOutOfRange, id)
	}
	norm2, err := x.checkVector(vec)
	if err != nil {
		return nil, err
	}
	s := x.pool.get()
	defer x.pool.put(s)
	for {
		err := x.withID(id, func() error { return x.insertLocked(s, id, vec, norm2) })
		if err == errUpperFull {
			if err := x.growUpper(); err != nil {
				return nil, err
			}
			continue
		}
		if err == errArenaFull {
			if err := x.growArena(compactWords(vec)); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if !track {
		return nil, nil
	}
	slices.Sort(s.changed)
	return slices.Compact(append([]uint32(nil), s.changed...)), nil
}

// withID runs f with id addressable and grow held shared; the lock is
// released even when f panics (a panic on a damaged mapped graph becomes an
// error in the engine, and the index must stay usable for the next call).
func (x *Index) withID(id uint32, f func() error) error {
	if err := x.ensureID(id); err != nil {
		return err
	}
	defer x.grow.RUnlock()
	return f()
}

// insertLocked is the paper's INSERT (Algorithm 1). Caller holds grow shared
// and has made id addressable. s.changed collects the ids whose lists changed.
func (x *Index) insertLocked(s *scratch, id uint32, vec []float32, norm2 float64) error {
	if atomic.LoadUint32(&x.state[id]) != 0 {
		return fmt.Errorf("%w: id %d", ErrDuplicateID, id)
	}
	level := x.levelOf(id)
	// Room for the code and the upper lists first, so that running out leaves id unclaimed.
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
	s.changed = append(s.changed[:0], id)
	if x.sparse {
		x.putSparse(id, codeOff, vec, x.metric == Cosine, 1/math.Sqrt(norm2))
	} else {
		x.store(x.vec(id), vec, norm2)
	}
	q := x.vec(id)
	x.storeCodes(id)
	x.levels[id] = uint8(level)
	atomic.StoreUint32(&x.upperOff[id], off)
	x.raiseIDLimit(id)

	e := x.ctr.entry.Load()
	for e == 0 {
		if x.ctr.entry.CompareAndSwap(0, packEntry(id, level)) {
			x.finishInsert(id)
			return nil
		}
		e = x.ctr.entry.Load()
	}
	linked := x.findNeighbors(s, q, id, level, e)
	x.writeOwnLists(id, level, s, linked)
	x.linkBack(s, id, linked)
	x.raiseEntry(id, level)
	x.finishInsert(id)
	return nil
}

// findNeighbors runs the insert's searches for a node of level with vector q
// from entry e (packed, not 0) and chooses its neighbours at every layer it
// shares with the graph, into s.backLinks and s.backKept; it returns how many
// layers (from 0) have a selection. self is the node's id when it is already
// claimed (it is never its own neighbour), else noID. The graph is not changed.
func (x *Index) findNeighbors(s *scratch, q []float32, self uint32, level int, e uint64) (linked int) {
	for l := range s.backLinks {
		s.backLinks[l] = s.backLinks[l][:0]
	}
	ep, epLevel := uint32(e), int(e>>32)-1
	sp := searchSpec{accept: statePresent | statePending}
	if x.quantBuild() {
		if self != noID {
			x.ownCodesAsQuery(s, self)
		} else {
			x.quantizeQuery(s, q)
		}
		defer func() { s.quant = false }()
	}
	s.entries = append(s.entries[:0], x.descend(s, q, ep, epLevel, level))
	for layer := min(level, epLevel); layer >= 0; layer-- {
		s.reset(int(x.ctr.idLimit.Load()))
		if self != noID {
			s.visit(self)
		}
		for _, c := range s.entries {
			if s.visit(c.id) {
				if x.approxTraversal(s) {
					c.dist = x.scoreOne(s, q, c.id) // the beam was rescored: back to traversal's
				}
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
		if x.approxTraversal(s) {
			x.rescoreGather(s, q, s.cands)
		} else {
			slices.Reverse(s.cands)
		}
		s.entries = append(s.entries[:0], s.cands...)
		sel, nKept := x.selectNeighbors(s, s.cands, x.m, &s.sel, &s.pruned)
		s.backLinks[layer] = append(s.backLinks[layer][:0], sel...)
		s.backKept[layer] = nKept
		linked = max(linked, layer+1)
	}
	return linked
}

// noID stands for "no node" where an id is optional.
const noID = ^uint32(0)

// writeOwnLists stores the selections of s as id's lists.
func (x *Index) writeOwnLists(id uint32, level int, s *scratch, linked int) {
	x.lock(id).Lock()
	defer x.lock(id).Unlock()
	for layer := 0; layer < linked && layer <= level; layer++ {
		writeSelected(x.list(id, layer), s.backLinks[layer], s.backKept[layer])
		if layer == 0 {
			x.cacheSelected(id, s.backLinks[0])
		}
	}
}

// linkBack links id's chosen neighbours to it, once id's own lists are in
// place at every layer. A search that reaches id through an upper layer before
// that (in this process or in another mapping the graph) would descend into an
// empty lower list and find nothing: scans returned no rows about once in
// 23,000 while inserts ran. pgvector writes an element with its lists before
// updating its neighbours for the same reason.
func (x *Index) linkBack(s *scratch, id uint32, linked int) {
	for layer := linked - 1; layer >= 0; layer-- {
		for _, c := range s.backLinks[layer] {
			if x.link(s, c.id, id, c.dist, layer) {
				s.changed = append(s.changed, c.id)
			}
		}
		s.backLinks[layer] = s.backLinks[layer][:0]
	}
}

// raiseEntry makes id (of level) the entry point when it is higher than the current one.
func (x *Index) raiseEntry(id uint32, level int) {
	for {
		cur := x.ctr.entry.Load()
		if int(cur>>32)-1 >= level || x.ctr.entry.CompareAndSwap(cur, packEntry(id, level)) {
			return
		}
	}
}

func (x *Index) finishInsert(id uint32) {
	atomic.StoreUint32(&x.state[id], statePresent)
	x.ctr.count.Add(1)
	x.ctr.live.Add(1)
}

// link adds the edge n → q (q at distance d from n) at layer and reports
// whether n's list changed.
//
// A list with room takes q. A full list first gives up a deleted neighbour if
// it has one. Otherwise the list must drop one of its cap+1 candidates, and
// the paper's heuristic with keepPrunedConnections drops the farthest
// candidate that fails the diversity test (or the farthest of all when none
// fails). Re-running the test costs O(cap²) distances per link, half of a
// build's time, so each entry carries a "kept" bit from the last full run and
// link updates it incrementally in O(cap): q is tested against the kept
// entries closer than it, and if q is kept, the kept entries farther than q
// are tested against q alone. It does not re-admit entries whose pruner was
// just pruned (a rare cascade), so it can drop slightly more eagerly than a
// full re-run; lists whose bits are not valid get the full run.
func (x *Index) link(s *scratch, n, q uint32, d float32, layer int) bool {
	x.lock(n).Lock()
	defer x.lock(n).Unlock()
	l := x.listFor(n, layer)
	if l == nil {
		return false
	}
	capn := x.capAt(layer)
	word := l[0]
	cnt, valid := int(word&countMask), word&validBit != 0
	cached := layer == 0 && x.dcache0 != nil
	if cnt < capn {
		atomic.StoreUint32(&l[1+cnt], q)
		atomic.StoreUint32(&l[0], uint32(cnt+1)) // q's kept bit is unknown: bits no longer valid
		if cached {
			x.cacheDist(n, cnt, q, d)
		}
		return true
	}
	for i := 1; i <= cnt; i++ {
		if atomic.LoadUint32(&x.state[l[i]&idMask])&stateDeleted != 0 {
			atomic.StoreUint32(&l[i], q)
			atomic.StoreUint32(&l[0], uint32(cnt))
			if cached {
				x.cacheDist(n, i-1, q, d)
			}
			return true
		}
	}

	// Distances from n to its neighbours: from the cache where it has them, the rest in
	// one gather call.
	ids := s.ids[:cnt]
	dists := s.dists[:cnt]
	miss := s.missIDs[:0]
	for i := range ids {
		ids[i] = l[1+i] & idMask
		if d, ok := x.cachedDist(n, i, ids[i]); ok {
			dists[i] = d
		} else {
			miss = append(miss, ids[i])
		}
	}
	if len(miss) == cnt {
		x.pairDistances(s, x.vec(n), ids, dists)
	} else if len(miss) > 0 {
		md := s.missDists[:len(miss)]
		x.pairDistances(s, x.vec(n), miss, md)
		j := 0
		for i := range ids {
			if _, ok := x.cachedDist(n, i, ids[i]); !ok {
				dists[i] = md[j]
				j++
			}
		}
	}
	s.missIDs = miss
	cands := s.linkCands[:0]
	for i := range ids {
		cands = append(cands, candidate{dist: dists[i], id: l[1+i]}) // kept bit included
	}
	cands = append(cands, candidate{dist: d, id: q})
	s.linkCands = cands
	sortAscending(cands)

	if !valid {
		// Rewritten (and reported) even when q is the one dropped: the
		// order and the kept bits change, and later links get cheaper.
		for i := range cands {
			cands[i].id &= idMask
		}
		sel, nKept := x.selectNeighbors(s, cands, capn, &s.linkSel, &s.linkPruned)
		writeSelected(l, sel, nKept)
		if cached {
			x.cacheSelected(n, sel)
		}
		return true
	}

	qi := 0
	for cands[qi].id != q {
		qi++
	}
	vq := x.vec(q)
	kept := true
	for _, c := range cands[:qi] {
		if c.id&keptBit != 0 && x.pairDistance(s, vq, x.vec(c.id&idMask)) < d {
			kept = false
			break
		}
	}
	if kept {
		cands[qi].id |= keptBit
		for j := qi + 1; j < len(cands); j++ {
			c := cands[j]
			if c.id&keptBit != 0 && x.pairDistance(s, vq, x.vec(c.id&idMask)) < c.dist {
				cands[j].id &^= keptBit
			}
		}
	}
	drop := len(cands) - 1
	for j := drop; j >= 0; j-- {
		if cands[j].id&keptBit == 0 {
			drop = j
			break
		}
	}
	if cands[drop].id&idMask == q {
		return false // q is the one dropped; the others' bits did not change
	}
	w := 1
	for j, c := range cands {
		if j != drop {
			atomic.StoreUint32(&l[w], c.id)
			if cached {
				x.cacheDist(n, w-1, c.id&idMask, c.dist)
			}
			w++
		}
	}
	atomic.StoreUint32(&l[0], uint32(cnt)|validBit)
	return true
}
