package main

/*
#include <stdint.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"

	"github.com/borealisdb/borealis/hnsw"
)

// Inserts from several backends at once (pgext/src/hnswinsert.c), in two calls around the
// page write that makes the element durable: prepare finds the neighbours and hands C the
// element as its tuple needs it (stored vector, level, lists), C writes it to the pages and
// gets its id, and commit links it into the shared graph and names every element whose lists
// changed. No other page may name an element before its own tuple is on the pages; since
// nobody can reach an element before commit links it, every list the graph holds names
// elements already on the pages.

var (
	preparedMu   sync.Mutex
	prepared     = map[int64]*hnsw.PreparedInsert{}
	nextPrepared int64
)

// borealis_index_insert_prepare finds the neighbours of vec (dims floats) for a new element
// whose level is drawn from levelKey; it writes the vector as the graph stores it into stored
// (dims floats), the level, and the lists into slots (nslots of them, laid out as in
// borealis_index_node_lists), and returns a handle for commit or release. statusFull: the
// mapped graph has no upper-layer room left (C maps a larger one).
//
//export borealis_index_insert_prepare
func borealis_index_insert_prepare(h C.longlong, vec *C.float, levelKey C.ulonglong, stored *C.float,
	level *C.int, slots *C.uint32_t, nslots C.int, prep *C.longlong) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	v := floats(vec, g.x.Dims())
	if err := checkVector(g.x, v); err != nil {
		return fail(err)
	}
	p, err := g.x.PrepareInsert(v, uint64(levelKey))
	if errors.Is(err, hnsw.ErrFull) {
		fail(err)
		return statusFull
	}
	if err != nil {
		return fail(err)
	}
	out := uint32s(slots, int(nslots))
	for i := range out {
		out[i] = noNeighbor
	}
	m := g.x.Options().M
	pos := 0
	for layer := 0; layer <= p.Level(); layer++ {
		capacity := m
		if layer == 0 {
			capacity = 2 * m
		}
		if pos+capacity > len(out) {
			p.Release()
			return fail(fmt.Errorf("%d slots for an element of level %d", len(out), p.Level()))
		}
		p.Neighbors(out[pos:pos], layer)
		pos += capacity
	}
	copy(floats(stored, g.x.Dims()), p.Vector())
	*level = C.int(p.Level())
	preparedMu.Lock()
	nextPrepared++
	prepared[nextPrepared] = p
	*prep = C.longlong(nextPrepared)
	preparedMu.Unlock()
	return statusOK
}

func takePrepared(prep C.longlong) *hnsw.PreparedInsert {
	preparedMu.Lock()
	defer preparedMu.Unlock()
	p := prepared[int64(prep)]
	delete(prepared, int64(prep))
	return p
}

// borealis_index_insert_commit links the prepared element into the graph as id and writes
// into changed, up to capacity, every element whose lists changed (*nchanged is their count;
// the new element is among them only when its lists differ from what prepare reported). The
// handle is spent either way. statusFull: id is beyond the mapped graph's capacity.
//
//export borealis_index_insert_commit
func borealis_index_insert_commit(prep C.longlong, id C.uint32_t, changed *C.uint32_t, capacity C.int, nchanged *C.int) (rc C.int) {
	defer guard(&rc)
	*nchanged = 0
	p := takePrepared(prep)
	if p == nil {
		return fail(fmt.Errorf("no prepared insert with handle %d", int64(prep)))
	}
	ids, err := p.Commit(uint32(id))
	if errors.Is(err, hnsw.ErrFull) {
		fail(err)
		return statusFull
	}
	if err != nil {
		return fail(err)
	}
	return copyIDs(ids, changed, capacity, nchanged)
}

// borealis_index_insert_release drops a prepared insert that will not be committed.
//
//export borealis_index_insert_release
func borealis_index_insert_release(prep C.longlong) (rc C.int) {
	defer guard(&rc)
	if p := takePrepared(prep); p != nil {
		p.Release()
	}
	return statusOK
}

// borealis_index_nodes_lists reads, in one call, what C writes onto the pages for each of the
// n elements ids: into out, per element, its level, 1 if deleted else 0, then its lists in
// the page layout (2·m slots for layer 0, m per upper layer, unused 0xFFFFFFFF). An absent
// element is level -1 with no slots. *used is the number of words written; capacity too
// small is an error (C sizes out for the highest level).
//
//export borealis_index_nodes_lists
func borealis_index_nodes_lists(h C.longlong, ids *C.uint32_t, n C.int, out *C.uint32_t, capacity C.int, used *C.int) (rc C.int) {
	defer guard(&rc)
	*used = 0
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	m := g.x.Options().M
	dst := uint32s(out, int(capacity))
	pos := 0
	for _, id := range uint32s(ids, int(n)) {
		level := g.x.ClaimedLevel(id)
		nslots := 0
		if level >= 0 {
			nslots = 2*m + level*m
		}
		if pos+2+nslots > len(dst) {
			return fail(fmt.Errorf("room for %d words, element %d needs %d more", len(dst), id, 2+nslots))
		}
		dst[pos] = uint32(int32(level))
		dst[pos+1] = 0
		if g.x.IsDeleted(id) {
			dst[pos+1] = 1
		}
		out := dst[pos+2 : pos+2+nslots]
		for i := range out {
			out[i] = noNeighbor
		}
		at := 0
		for layer := 0; layer <= level; layer++ {
			capacity := m
			if layer == 0 {
				capacity = 2 * m
			}
			g.x.ClaimedNeighbors(out[at:at], id, layer)
			at += capacity
		}
		pos += 2 + nslots
	}
	*used = C.int(pos)
	return statusOK
}
