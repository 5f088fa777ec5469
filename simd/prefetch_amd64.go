package simd

import "unsafe"

func prefetchRows(slab []uint32, stride int, rows []uint32, lines int) {
	prefetchGatherAMD64((*byte)(unsafe.Pointer(&slab[0])), stride*4, &rows[0], len(rows), lines)
}
