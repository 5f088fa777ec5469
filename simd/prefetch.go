package simd

// PrefetchRows asks the CPU to start loading, without waiting, the cache lines a caller is
// about to read at scattered places of slab: for each id in rows, `lines` consecutive 64-byte
// lines from slab[id*stride]. A graph search reads a few words (a state, a neighbour list)
// of each node it reaches at random places of large arrays; issuing those misses together,
// before the distance work that precedes their use, overlaps them with it instead of paying
// each in turn. It has no effect on results. An id past the end of slab is harmless (a
// prefetch never faults) and only wasted; an empty slab or rows does nothing. Without a
// kernel for the architecture it does nothing.
func PrefetchRows(slab []uint32, stride int, rows []uint32, lines int) {
	if len(slab) == 0 || len(rows) == 0 || lines <= 0 {
		return
	}
	prefetchRows(slab, stride, rows, lines)
}
