package main

/*
#include <stdint.h>
*/
import "C"

import (
	"slices"

	"github.com/borealisdb/borealis/hnsw"
)

// HNSW's neighbour selection can leave an element with no incoming edge: when a full list is
// pruned, the element it drops may have been linked from nowhere else, and no search can reach
// it again (inner-product graphs lose many this way: small-norm points are nobody's nearest).
// These functions give such elements an incoming edge from their nearest reachable element
// that has a free slot in its layer-0 list. They only add edges, so they never disconnect
// anything, and they report the elements whose lists they changed so C can write those pages.

// linkOrphan links u from the nearest reachable element with a free layer-0 slot or, when
// every candidate's list is full, in place of an entry that another candidate also links to
// (so the replaced element keeps a way in). It returns the element whose list changed.
func linkOrphan(x *hnsw.Index, u uint32, reached []bool, ef int) (uint32, bool) {
	vec := x.Vector(u)
	if vec == nil {
		return 0, false
	}
	capacity := 2 * x.Options().M
	res, err := x.SearchWith(nil, vec, ef, hnsw.SearchOptions{Ef: ef})
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
			if x.SetNeighbors(r.ID, 0, append(lists[i], u)) == nil {
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
			if x.SetNeighbors(r.ID, 0, list) == nil {
				return r.ID, true
			}
		}
	}
	return 0, false
}

// connectAll links every live element the entry point cannot reach and returns the elements
// whose lists changed. It returns interrupted=true (with what it changed so far) when
// PostgreSQL has an interrupt pending.
func connectAll(x *hnsw.Index) (changed []uint32, interrupted bool) {
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
	ef := max(64, x.Options().EfConstruction)
	linked := 0
	for u := range limit {
		if reached[u] || !x.Contains(u) || x.IsDeleted(u) {
			continue
		}
		// Each link is a search: look at the flag every few of them.
		if linked%16 == 0 && isInterrupted() {
			return changed, true
		}
		linked++
		if r, ok := linkOrphan(x, u, reached, ef); ok {
			changed = append(changed, r)
			visit(u)
		}
	}
	return changed, false
}

// isInterrupted is interrupted, replaceable in tests (no PostgreSQL there).
var isInterrupted = interrupted

// reconnect checks the elements an insert dropped from some list: one that a search for its own
// vector does not find has lost its way in, and is linked again. It returns the elements whose
// lists changed.
func reconnect(x *hnsw.Index, dropped []uint32) ([]uint32, error) {
	var changed []uint32
	ef := 2 * x.Options().M
	for _, w := range dropped {
		if !x.Contains(w) || x.IsDeleted(w) {
			continue
		}
		res, err := x.SearchWith(nil, x.Vector(w), ef, hnsw.SearchOptions{Ef: ef})
		if err != nil {
			return changed, err
		}
		if slices.ContainsFunc(res, func(r hnsw.Result) bool { return r.ID == w }) {
			continue
		}
		if r, ok := linkOrphan(x, w, nil, ef); ok {
			changed = append(changed, r)
		}
	}
	return changed, nil
}

// borealis_index_connect_all runs connectAll (after a build or a VACUUM); changed receives the
// elements whose lists changed.
//
//export borealis_index_connect_all
func borealis_index_connect_all(h C.longlong, changed *C.uint32_t, capacity C.int, nchanged *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	ids, stopped := connectAll(g.x)
	if rc := copyIDs(ids, changed, capacity, nchanged); rc != statusOK {
		return rc
	}
	if stopped {
		return statusInterrupted
	}
	return statusOK
}

// borealis_index_reconnect runs reconnect for the elements an insert dropped from a list.
//
//export borealis_index_reconnect
func borealis_index_reconnect(h C.longlong, dropped *C.uint32_t, ndropped C.int, changed *C.uint32_t, capacity C.int, nchanged *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	ids, err := reconnect(g.x, uint32s(dropped, int(ndropped)))
	if err != nil {
		return fail(err)
	}
	return copyIDs(ids, changed, capacity, nchanged)
}
