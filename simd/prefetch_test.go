package simd

import (
	"math"
	"testing"
)

// PrefetchRows must never fault or write: ids far past the slab (up to the largest uint32,
// times a stride), empty inputs and zero lines are all legal, and the slab is unchanged.
func TestPrefetchRowsIsHarmless(t *testing.T) {
	slab := make([]uint32, 1000)
	for i := range slab {
		slab[i] = uint32(i)
	}
	for _, c := range []struct {
		stride, lines int
		rows          []uint32
	}{
		{1, 1, []uint32{0, 5, 999}},
		{33, 3, []uint32{0, 1, 29}},
		{1, 1, []uint32{1000, 1 << 20, math.MaxUint32}},
		{33, 3, []uint32{math.MaxUint32, math.MaxUint32 - 1}},
		{1, 0, []uint32{1}},
		{1, 1, nil},
	} {
		PrefetchRows(slab, c.stride, c.rows, c.lines)
	}
	PrefetchRows(nil, 1, []uint32{1}, 1)
	for i, v := range slab {
		if v != uint32(i) {
			t.Fatalf("slab[%d] = %d after prefetches, want %d", i, v, i)
		}
	}
}
