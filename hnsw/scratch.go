package hnsw

import (
	"sync"

	"github.com/borealisdb/borealis/simd"
)

// scratch is the per-search working memory: the visited set (a bitset indexed
// by id, cleared by zeroing only the words the last search touched, so it
// costs one bit per node per backend rather than a stamp of four bytes: at a
// million nodes 125 kB instead of 4 MB in every backend that searches a shared
// graph), the heaps, and buffers for neighbour selection. Scratches are
// recycled through a pool, so a steady-state search allocates nothing.
type scratch struct {
	visited []uint64 // bit id%64 of word id/64
	touched []uint32 // words of visited that are not zero

	query   []float32 // the query in stored form (normalised under cosine)
	cand    minHeap   // candidates still to expand
	res     maxHeap   // best eligible nodes found, at most ef
	entries []candidate
	sel     []candidate // neighbour selection output
	pruned  []candidate // neighbour selection discards
	cands   []candidate // neighbour selection input
	changed []uint32    // ids whose lists an insert changed
	ids     []uint32    // neighbours to score in one gather call
	next    [1]uint32   // the candidate whose list searchLayer prefetches
	dists   []float32   // their distances

	dots         []int32   // int8 dot products of one gather call
	rescoreIDs   []uint32  // an int8 insert search: its beam, rescored in one gather
	rescoreDists []float32 // and their exact distances

	missIDs   []uint32  // link: neighbours whose distance is not cached
	missDists []float32 // and their distances

	// Quantized traversal (set by searches on a QuantizedSearch index only).
	quant  bool
	qcodes []int8    // the query's int8 codes
	qscale float32   // their scale
	qnorm2 float32   // the query's squared norm (L2)
	qbits  []uint64  // the query's sign bits (binary quantization)
	qhalf  []float32 // Half elements: the query converted to float32 before it is quantized

	// Half elements under cosine: the query prepared once per search (halfquery.go), and
	// the slice it was prepared from.
	hq    simd.HalfQuery
	hqFor *float32

	// Sparse elements under a dot product: the query scattered by index, and a second array
	// for the node neighbour selection compares with others (sparsequery.go).
	sq, sqPair sparseQuery

	linkCands, linkSel, linkPruned []candidate // buffers for shrinking a neighbour's list

	// An Iterator's batch and spill, kept between iterators (iterator.go).
	itBatch []candidate
	itSpill minHeap

	// backLinks[l] are the neighbours an insert chose at layer l, linked back to the new
	// node only once its lists are written at every layer.
	backLinks [maxLevel + 1][]candidate
	backKept  [maxLevel + 1]int // nKept of each selection (see selectNeighbors)
}

// reset starts a new, empty visited set covering n ids.
func (s *scratch) reset(n int) {
	words := (n + 63) / 64
	if len(s.visited) < words {
		s.visited = make([]uint64, words+words/4)
	} else {
		for _, w := range s.touched {
			s.visited[w] = 0
		}
	}
	s.touched = s.touched[:0]
	s.cand = s.cand[:0]
	s.res = s.res[:0]
}

// visit marks id and reports whether it was unvisited.
func (s *scratch) visit(id uint32) bool {
	w := int(id >> 6)
	if w >= len(s.visited) {
		// The index grew since reset (an iterator spans several calls).
		nv := make([]uint64, w+1+len(s.visited)/4)
		copy(nv, s.visited)
		s.visited = nv
	}
	bit := uint64(1) << (id & 63)
	v := s.visited[w]
	if v&bit != 0 {
		return false
	}
	if v == 0 {
		s.touched = append(s.touched, uint32(w))
	}
	s.visited[w] = v | bit
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

		missIDs:   make([]uint32, 0, p.x.m0),
		missDists: make([]float32, p.x.m0),
	}
}

func (p *scratchPool) put(s *scratch) {
	s.quant = false // the next user may be an insert, which scores in float32
	s.hqFor = nil   // and has another query, possibly in the same buffer
	s.sq.forQ, s.sqPair.forQ = nil, nil
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
}
