package hnsw

import "sync"

// scratch is the per-search working memory: a generation-stamped visited set
// (an array indexed by id; a node is visited when its stamp equals the current
// generation, so clearing is one increment instead of a memset or a map), the
// heaps, and buffers for neighbour selection. Scratches are recycled through a
// pool, so a steady-state search allocates nothing.
type scratch struct {
	visited []uint32
	gen     uint32

	query   []float32 // the query in stored form (normalised under cosine)
	cand    minHeap   // candidates still to expand
	res     maxHeap   // best eligible nodes found, at most ef
	entries []candidate
	sel     []candidate // neighbour selection output
	pruned  []candidate // neighbour selection discards
	cands   []candidate // neighbour selection input
	changed []uint32    // ids whose lists an insert changed
	ids     []uint32    // neighbours to score in one gather call
	dists   []float32   // their distances

	// Quantized traversal (set by searches on a QuantizedSearch index only).
	quant  bool
	qcodes []int8  // the query's int8 codes
	qscale float32 // their scale
	qnorm2 float32 // the query's squared norm (L2)

	linkCands, linkSel, linkPruned []candidate // buffers for shrinking a neighbour's list
}

// reset starts a new visited generation covering n ids.
func (s *scratch) reset(n int) {
	if len(s.visited) < n {
		s.visited = make([]uint32, n+n/4)
		s.gen = 0
	}
	s.gen++
	if s.gen == 0 { // wrapped: old stamps could collide, clear once every 2^32 searches
		clear(s.visited)
		s.gen = 1
	}
	s.cand = s.cand[:0]
	s.res = s.res[:0]
}

// visit marks id and reports whether it was unvisited.
func (s *scratch) visit(id uint32) bool {
	if int(id) >= len(s.visited) {
		// The index grew since reset (an iterator spans several calls).
		nv := make([]uint32, int(id)+1+len(s.visited)/4)
		copy(nv, s.visited)
		s.visited = nv
	}
	if s.visited[id] == s.gen {
		return false
	}
	s.visited[id] = s.gen
	return true
}

// scratchPool is a LIFO free list. sync.Pool would drop scratches at every GC
// and make the next searches reallocate their visited arrays.
type scratchPool struct {
	x    *Index
	mu   sync.Mutex
	free []*scratch
}

func (p *scratchPool) get() *scratch {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return s
	}
	p.mu.Unlock()
	return &scratch{
		query: make([]float32, p.x.dims),
		ids:   make([]uint32, 0, p.x.m0),
		dists: make([]float32, p.x.m0),
	}
}

func (p *scratchPool) put(s *scratch) {
	s.quant = false // the next user may be an insert, which scores in float32
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
}
