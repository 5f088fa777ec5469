package hnsw

import "unsafe"

// Prefaulting a mapped graph's rows before a build writes them.
//
// A build writes each node's vector, code and layer-0 list into a fresh graph file, one
// row at a time: every 4 kB page of the file meets its first write as a page fault, a
// trap into the kernel per page (about two per node at 1,536 dims, and on this project's
// virtual machines a trap is dear). A profile of a 50,000 × 1,536 build put 15% of the
// building backend's CPU in (*Index).store, most of it those faults. Prefault asks the
// kernel to map the rows of the next ids writable in one madvise(MADV_POPULATE_WRITE)
// per slab instead: the same pages, allocated in a loop inside the kernel without a trap
// each. It is only advice: where the kernel lacks it (before Linux 5.14) or refuses, the
// writes fault as before, so its error is not returned. It never maps more than the rows
// asked for (rounded out to whole pages), so a build larger than memory still pages.

// Prefault prepares the rows of ids first..first+n-1 of a mapped graph for writing (a
// no-op for a graph in the Go heap or a sparse one, whose codes go to the arena).
func (x *Index) Prefault(first, n int) {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if !x.mapped || x.sparse || n <= 0 || first < 0 || first >= len(x.state) {
		return
	}
	n = min(n, len(x.state)-first)
	populateRows(x.vectors, first*x.dims, n*x.dims)
	populateRows(x.codes, first*x.dims, n*x.dims)
	populateRows(x.links0, first*(x.m0+1), n*(x.m0+1))
}

// populateRows prefaults s[from:from+n] for writing, rounded out to whole pages.
func populateRows[T any](s []T, from, n int) {
	if len(s) == 0 || from >= len(s) {
		return
	}
	n = min(n, len(s)-from)
	var zero T
	size := uintptr(unsafe.Sizeof(zero))
	start := uintptr(unsafe.Pointer(&s[from]))
	end := start + uintptr(n)*size
	const page = 4096
	start &^= page - 1
	end = (end + page - 1) &^ (page - 1)
	populateWrite(start, end-start)
}
