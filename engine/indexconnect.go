package main

/*
#include <stdint.h>
*/
import "C"

// Graph repair lives in hnsw (Index.ConnectAll, Index.Reconnect); these are its ABI wrappers:
// C writes the pages of the elements whose lists changed.

// borealis_index_connect_all runs hnsw ConnectAll (after a build or a VACUUM); changed receives the
// elements whose lists changed.
//
//export borealis_index_connect_all
func borealis_index_connect_all(h C.longlong, changed *C.uint32_t, capacity C.int, nchanged *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	g.x.DropDistanceCache() // the build's inserts are done (startChunk)
	// ConnectAll keeps a reached flag, a queue entry and possibly a changed id per element.
	if err := reserve("the connectivity pass", int64(g.x.Len())*9); err != nil {
		return fail(err)
	}
	ids, stopped := g.x.ConnectAll(interrupted)
	if rc := copyIDs(ids, changed, capacity, nchanged); rc != statusOK {
		return rc
	}
	if stopped {
		return statusInterrupted
	}
	return statusOK
}

// borealis_index_reconnect runs hnsw Reconnect for the elements an insert dropped from a list.
//
//export borealis_index_reconnect
func borealis_index_reconnect(h C.longlong, dropped *C.uint32_t, ndropped C.int, changed *C.uint32_t, capacity C.int, nchanged *C.int) (rc C.int) {
	defer guard(&rc)
	g, err := lookup(h)
	if err != nil {
		return fail(err)
	}
	ids, err := g.x.Reconnect(uint32s(dropped, int(ndropped)))
	if err != nil {
		return fail(err)
	}
	return copyIDs(ids, changed, capacity, nchanged)
}
