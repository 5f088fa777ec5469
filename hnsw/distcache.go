package hnsw

import "math"

// The layer-0 distance cache of a graph in the Go heap (a build's graph).
//
// When a full list takes a new neighbour, link must know the distance from the list's
// owner to each of its neighbours. Recomputing them was a quarter of a build's distance
// evaluations (about 230 of 900 per insert at M 16, every one a row fetched from memory:
// 6 kB each at 1,536 dims). pgvector keeps each neighbour's distance beside it; so does
// this cache, beside the list rather than in it, because the list layout is the mapped
// graph file's, shared with backends that never build.
//
// Each slot holds (id+1)<<32 | distance bits for the entry at the same position of the
// node's layer-0 list. The tag makes the cache advisory: a writer that does not fill it
// (restore, repair, SetNeighbors) leaves a tag that no longer matches the list, and link
// recomputes just that distance. A matching tag is always right, because a node's vector
// never changes once it is stored (ids are not reused). Slots are read and written under
// the owning node's lock, like its list.
//
// The cache costs 8 bytes per layer-0 slot, so it is kept only where vectors are at least
// four times larger (dims ≥ 8·2M: 256 at M 16); below that a recomputed distance is cheap
// and memory is the scarcer resource. Mapped graphs never have it.

// cachesDists says whether the graph keeps the cache (decided before the first growth).
func (x *Index) cachesDists() bool { return !x.noDistCache && x.dims >= 8*x.m0 }

func packDist(id uint32, d float32) uint64 {
	return uint64(id+1)<<32 | uint64(math.Float32bits(d))
}

// cachedDist returns the cached distance from n to the neighbour id in slot i of n's
// layer-0 list, if there is one.
func (x *Index) cachedDist(n uint32, i int, id uint32) (float32, bool) {
	if x.dcache0 == nil {
		return 0, false
	}
	v := x.dcache0[int(n)*x.m0+i]
	if uint32(v>>32) != id+1 {
		return 0, false
	}
	return math.Float32frombits(uint32(v)), true
}

// cacheDist records d as the distance from n to id in slot i of n's layer-0 list.
func (x *Index) cacheDist(n uint32, i int, id uint32, d float32) {
	if x.dcache0 != nil {
		x.dcache0[int(n)*x.m0+i] = packDist(id, d)
	}
}

// cacheSelected records the distances of a layer-0 list just written from cands.
func (x *Index) cacheSelected(n uint32, cands []candidate) {
	if x.dcache0 == nil {
		return
	}
	c := x.dcache0[int(n)*x.m0:]
	for i, e := range cands {
		c[i] = packDist(e.id&idMask, e.dist)
	}
}

// DistanceCacheBytes is what KeepDistanceCache would allocate: 8 bytes per layer-0 slot of
// the graph's current capacity, or 0 when the graph does not cache (low dims, or it has
// the cache already).
func (x *Index) DistanceCacheBytes() int64 {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if x.dcache0 != nil || x.noDistCache || x.dims < 8*x.m0 {
		return 0
	}
	return int64(len(x.state)) * int64(x.m0) * 8
}

// KeepDistanceCache gives a mapped graph the distance cache, in the Go heap of this
// process only, for a build that links every node; DropDistanceCache ends it. (A graph in
// the Go heap has it from its first growth.) Other processes' writers do not fill it,
// which the tags make harmless.
func (x *Index) KeepDistanceCache() {
	x.grow.Lock()
	defer x.grow.Unlock()
	if x.dcache0 == nil && !x.noDistCache && x.dims >= 8*x.m0 {
		x.dcache0 = make([]uint64, len(x.state)*x.m0)
	}
}

// DropDistanceCache frees the cache KeepDistanceCache made (inserts then recompute).
func (x *Index) DropDistanceCache() {
	x.grow.Lock()
	defer x.grow.Unlock()
	if x.mapped {
		x.dcache0 = nil
	}
}
