package main

/*
#include <stdint.h>
*/
import "C"

import (
	"errors"
	"fmt"

	"github.com/borealisdb/borealis/hnsw"
)

// A backend's cache of an index is rebuilt from the index's pages by C, which reads each
// element tuple and neighbour tuple and hands them over here. Lists may name elements not
// restored yet (pages are read in block order, and a standby may be mid-replay); the graph
// tolerates that, and C re-reads every element a later change names.

// borealis_index_restore installs element id as read from its page.
//
//export borealis_index_restore
func borealis_index_restore(h C.longlong, id C.uint32_t, level, deleted C.int, vec *C.float) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	if g.x.Level(uint32(id)) >= 0 {
		if deleted != 0 {
			if err := g.x.MarkDeleted(uint32(id)); err != nil {
				return fail(err)
			}
		}
		return statusOK
	}
	if err := g.x.Restore(uint32(id), int(level), floats(vec, g.x.Dims()), nil); err != nil {
		return fail(fmt.Errorf("element %d: %w", uint32(id), err))
	}
	if deleted != 0 {
		if err := g.x.MarkDeleted(uint32(id)); err != nil {
			return fail(err)
		}
	}
	return statusOK
}

// borealis_index_set_lists replaces element id's lists with the page's slots (layout as in
// borealis_index_node_lists).
//
//export borealis_index_set_lists
func borealis_index_set_lists(h C.longlong, id C.uint32_t, slots *C.uint32_t, nslots C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	level := g.x.Level(uint32(id))
	if level < 0 {
		return fail(fmt.Errorf("neighbour tuple for element %d, which is not loaded", uint32(id)))
	}
	m := g.x.Options().M
	limit := g.x.Capacity()
	in := uint32s(slots, int(nslots))
	pos := 0
	list := make([]uint32, 0, 2*m)
	for layer := 0; layer <= level; layer++ {
		capacity := m
		if layer == 0 {
			capacity = 2 * m
		}
		if pos+capacity > len(in) {
			return fail(fmt.Errorf("element %d: neighbour tuple too short for level %d", uint32(id), level))
		}
		list = list[:0]
		for _, e := range in[pos : pos+capacity] {
			// A standby's pages can name elements replayed after the mapping was sized;
			// they come back with the change that added them.
			if e != noNeighbor && e != uint32(id) && (!g.x.Mapped() || int(e) < limit) {
				list = append(list, e)
			}
		}
		if err := g.x.SetNeighbors(uint32(id), layer, list); err != nil {
			return fail(fmt.Errorf("element %d: %w", uint32(id), err))
		}
		pos += capacity
	}
	return statusOK
}

// borealis_index_set_entry sets the entry point from the meta page.
//
//export borealis_index_set_entry
func borealis_index_set_entry(h C.longlong, id C.uint32_t, level C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	if err := g.x.SetEntryPoint(uint32(id), int(level)); err != nil {
		return fail(err)
	}
	return statusOK
}

// borealis_index_insert adds element id (an aminsert) and writes into changed, up to capacity,
// every element whose lists changed, the new one included; *nchanged is their count, which
// may exceed capacity (C then asks again with room: the insert is not repeated, see below).
//
//export borealis_index_insert
func borealis_index_insert(h C.longlong, id C.uint32_t, vec *C.float, changed *C.uint32_t, capacity C.int, nchanged *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	v := floats(vec, g.x.Dims())
	if err := checkVector(g.x, v); err != nil {
		return fail(err)
	}
	ids, err := g.x.AddTracked(uint32(id), v)
	if errors.Is(err, hnsw.ErrFull) {
		fail(err)
		return statusFull
	}
	if err != nil {
		return fail(err)
	}
	return copyIDs(ids, changed, capacity, nchanged)
}

func copyIDs(ids []uint32, out *C.uint32_t, capacity C.int, n *C.int) C.int {
	*n = C.int(len(ids))
	if len(ids) > int(capacity) {
		return fail(fmt.Errorf("%d changed elements, room for %d", len(ids), int(capacity)))
	}
	copy(uint32s(out, len(ids)), ids)
	return statusOK
}

// borealis_index_delete marks element id deleted and repairs the lists around it (VACUUM),
// reporting the elements whose lists changed.
//
//export borealis_index_delete
func borealis_index_delete(h C.longlong, id C.uint32_t, changed *C.uint32_t, capacity C.int, nchanged *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	ids, err := g.x.DeleteTracked(uint32(id))
	if err != nil {
		return fail(err)
	}
	return copyIDs(ids, changed, capacity, nchanged)
}
