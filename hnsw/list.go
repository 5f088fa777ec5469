package hnsw

import "sync/atomic"

// A neighbour list is [count, id...] in a fixed-capacity array. Two spare
// bits make link cheap (see link): bit 31 of an id entry says the neighbour
// passed the selection heuristic's diversity test ("kept", as opposed to
// re-admitted by keepPrunedConnections), and bit 31 of the count says those
// bits are up to date. Readers mask both off; ids are therefore limited to
// 31 bits (MaxID).
const (
	keptBit   = MaxID + 1
	idMask    = keptBit - 1
	validBit  = 1 << 31
	countMask = validBit - 1
)

// MaxID is the largest node id the index accepts (2^31 − 1): the top bit of
// a list entry is the kept bit.
const MaxID = 1<<31 - 1

// loadCount reads the number of entries of list l.
func loadCount(l []uint32) int {
	return min(int(atomic.LoadUint32(&l[0])&countMask), len(l)-1)
}

// loadID reads entry i (0-based) of list l.
func loadID(l []uint32, i int) uint32 { return atomic.LoadUint32(&l[1+i]) & idMask }

// writeSelected stores sel as list l. When nKept ≥ 0, sel[:nKept] passed the
// diversity test and the rest did not, and the kept bits are recorded as valid.
// Caller holds the node's lock.
func writeSelected(l []uint32, sel []candidate, nKept int) {
	for i, c := range sel {
		v := c.id & idMask
		if i < nKept {
			v |= keptBit
		}
		atomic.StoreUint32(&l[1+i], v)
	}
	n := uint32(len(sel))
	if nKept >= 0 {
		n |= validBit
	}
	atomic.StoreUint32(&l[0], n)
}
