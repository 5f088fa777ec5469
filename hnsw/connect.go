package hnsw

import (
	"slices"
	"sync/atomic"
)

// Graph repair. HNSW's neighbour selection can leave an element with no
// incoming edge: when a full list is pruned, the element it drops may have been
// linked from nowhere else, and no search can reach it again (inner-product
// graphs lose many this way: small-norm points are nobody's nearest).
// ConnectAll and Reconnect give such elements an incoming edge from their
// nearest reachable element that has a free slot in its layer-0 list. They only
// add edges (or replace one that has another way in), so they never disconnect
// anything, and they report the elements whose lists they changed so the
// caller can persist those lists.

// linkOrphan links u from the nearest reachable element with a free layer-0
// slot or, when every candidate's list is full, in place of an entry that
// another candidate also links to (so the replaced element keeps a way in). It
// returns the element whose list changed. reached, when not nil, restricts the
// candidates to elements marked in it.
func (x *Index) linkOrphan(u uint32, reached []bool, ef int) (uint32, bool) {
	vec := x.Vector(u)
	if vec == nil {
		return 0, false
	}
	capacity := x.m0
	res, err := x.SearchWith(nil, vec, ef, SearchOptions{Ef: ef})
	if err != nil {
		return 0, false
	}
	usable := func(id uint32) bool { return id != u && (reached == nil || reached[id]) }
	lists := make([][]uint32, len(res))
	linkedFrom := map[uint32]int{}
	for i, r := range res {
		lists[i] = x.Neighbors(r.ID, 0)
		if !usable(r.ID) {
			continue
		}
		if len(lists[i]) < capacity {
			if x.swapNeighbors(r.ID, lists[i], append(slices.Clone(lists[i]), u)) {
				return r.ID, true
			}
		}
		for _, w := range lists[i] {
			linkedFrom[w]++
		}
	}
	for i, r := range res {
		if !usable(r.ID) {
			continue
		}
		// Replace the last entry (the heuristic appends the farthest last) that has another way in.
		for j := len(lists[i]) - 1; j >= 0; j-- {
			w := lists[i][j]
			if w == u || linkedFrom[w] < 2 {
				continue
			}
			list := slices.Clone(lists[i])
			list[j] = u
			if x.swapNeighbors(r.ID, lists[i], list) {
				return r.ID, true
			}
		}
	}
	return 0, false
}

// ConnectAll links every live element the entry point cannot reach (after a
// build or a vacuum) and returns the elements whose layer-0 lists changed.
// stop, when not nil, is polled every few links; when it returns true
// ConnectAll returns at once with stopped = true and what it changed so far.
func (x *Index) ConnectAll(stop func() bool) (changed []uint32, stopped bool) {
	entry, _, ok := x.EntryPoint()
	if !ok {
		return nil, false
	}
	limit := x.IDLimit()
	reached := make([]bool, limit)
	var stack []uint32
	visit := func(from uint32) {
		stack = append(stack[:0], from)
		reached[from] = true
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for layer := 0; layer <= x.Level(cur); layer++ {
				for _, e := range x.Neighbors(cur, layer) {
					if e < limit && !reached[e] {
						reached[e] = true
						stack = append(stack, e)
					}
				}
			}
		}
	}
	visit(entry)
	ef := max(64, x.efC)
	linked := 0
	for u := range limit {
		if reached[u] || !x.Contains(u) || x.IsDeleted(u) {
			continue
		}
		// Each link is a search: look at the flag every few of them.
		if linked%16 == 0 && stop != nil && stop() {
			return changed, true
		}
		linked++
		if r, ok := x.linkOrphan(u, reached, ef); ok {
			changed = append(changed, r)
			visit(u)
		}
	}
	return changed, false
}

// Reconnect checks the elements an insert dropped from some list (AddTracked
// and DeleteTracked report them): one that a search for its own vector does not
// find has lost its way in, and is linked again. It returns the elements whose
// layer-0 lists changed.
//
// Every dropped element gets the search, even one that neighbours still link
// back to. A skip for elements two of their own neighbours link back to (stop
// 12) spared 15% of an inserting backend's CPU at 1,536 dimensions, but in the
// real insert path it cost recall: in TestHNSWKill9DuringInserts' workload
// (4 backends, 9,000 inserts of 24-dimension clustered rows) rows missing from
// their own top 10 went from 0-1 to 2-26 per run. The rows it left behind had
// 6-51 incoming edges and two or more mutual ones, yet a search did not reach
// them: a pair of close elements whose lists both lie in another cluster (the
// search that inserted the first landed there), or a pocket the rest of the
// graph barely links into. Back links are local; only the search sees that the
// way in is missing. reconnectSkip keeps the old test for comparisons.
func (x *Index) Reconnect(dropped []uint32) ([]uint32, error) {
	var changed []uint32
	ef := x.m0
	for _, w := range dropped {
		if !x.Contains(w) || x.IsDeleted(w) || x.reconnectSkip && x.linkedBack(w, dropped) {
			continue
		}
		res, err := x.SearchWith(nil, x.Vector(w), ef, SearchOptions{Ef: ef})
		if err != nil {
			return changed, err
		}
		if slices.ContainsFunc(res, func(r Result) bool { return r.ID == w }) {
			continue
		}
		if r, ok := x.linkOrphan(w, nil, ef); ok {
			changed = append(changed, r)
		}
	}
	return changed, nil
}

// swapNeighbors replaces id's layer-0 list with next if it still is prev: concurrent inserts
// (other processes of a mapped graph too) may have linked to id since prev was read, and
// writing next over their link would take away the way in they just gave a new element.
func (x *Index) swapNeighbors(id uint32, prev, next []uint32) bool {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) || atomic.LoadUint32(&x.state[id])&statePresent == 0 || len(next) > x.m0 {
		return false
	}
	for _, e := range next {
		if e == id || int(e) >= len(x.state) {
			return false
		}
	}
	x.lock(id).Lock()
	defer x.lock(id).Unlock()
	l := x.list(id, 0)
	if loadCount(l) != len(prev) {
		return false
	}
	for i, e := range prev {
		if loadID(l, i) != e {
			return false
		}
	}
	x.writeList(id, 0, next)
	return true
}

// linkedBack reports whether at least two elements of w's layer-0 list, other
// than those in skip, link back to w (Reconnect's skip, off unless
// reconnectSkip). One would not do: two elements that link only each other,
// each dropped by a different insert, would vouch for each other as an island.
func (x *Index) linkedBack(w uint32, skip []uint32) bool {
	x.grow.RLock()
	defer x.grow.RUnlock()
	present := func(id uint32) bool {
		return int(id) < len(x.state) && atomic.LoadUint32(&x.state[id])&statePresent != 0
	}
	if !present(w) {
		return false
	}
	l := x.list(w, 0)
	found := 0
	for i := range loadCount(l) {
		n := loadID(l, i)
		if n == w || !present(n) || slices.Contains(skip, n) {
			continue
		}
		nl := x.list(n, 0)
		for j := range loadCount(nl) {
			if loadID(nl, j) == w {
				if found++; found == 2 {
					return true
				}
				break
			}
		}
	}
	return false
}
