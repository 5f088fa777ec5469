package hnsw

// Iterator yields search results nearest first for as long as the caller asks,
// which is what PostgreSQL's iterative index scans need when a WHERE clause
// drops rows: the first ef results come from an ordinary beam search, and each
// further round resumes that search from where it stopped. It keeps the
// visited set, the unexpanded candidates, and every admitted node that did not
// fit in the beam, so no node is visited twice and none is lost.
//
// Order: each round's results are returned in increasing exact distance (on a
// QuantizedSearch index the whole round is rescored with float32 distances
// first). A resumed round can reach a node closer than one already returned,
// because the graph search is approximate. With SearchOptions.RelaxedOrder
// (pgvector's relaxed_order) such a node is still returned, slightly out of
// order: nothing admitted is ever dropped. Without it (strict_order) distances
// never decrease and such a node is skipped.
//
// Budget: SearchOptions.MaxVisited and MaxMemory end the graph walk as
// pgvector's hnsw.max_scan_tuples and scan_mem_multiplier do. Past them the
// iterator returns, nearest first, the eligible elements it found in earlier
// rounds but has not returned yet (pgvector's "discarded" heap), then ends.
//
// An Iterator is not safe for concurrent use; the index may change between
// calls to Next (new nodes may appear, deleted nodes are not returned). Call
// Close to recycle its memory.
type Iterator struct {
	x           *Index
	s           *scratch
	sp          searchSpec
	q           []float32
	ef          int
	relaxed     bool
	interrupt   func() bool
	interrupted bool
	batch       []candidate // current round's results, ascending exact distance
	pos         int
	last        float32 // internal distance of the last result returned
	hasLast     bool
	started     bool
	done        bool
	spill       minHeap // admitted nodes that did not fit in the beam
	visited     int     // layer-0 elements visited (pgvector's tuples)
	maxVisited  int
	maxMemory   int64
}

// NewIterator starts an iterative search for q. opts.Ef is the width of each
// round (default 40); Filter and MaxDistance apply to every result, and
// RelaxedOrder chooses what happens to nodes found late (see Iterator).
func (x *Index) NewIterator(q []float32, opts SearchOptions) (*Iterator, error) {
	s := x.pool.get()
	query, err := x.prepareSearch(s, q)
	if err != nil {
		x.pool.put(s)
		return nil, err
	}
	copy(s.query, query) // own the query: the caller may reuse q
	// The batch and the spill reuse the scratch's buffers (Close hands them back), so a scan
	// on a warm backend allocates only the Iterator itself.
	it := &Iterator{x: x, s: s, q: s.query, ef: opts.Ef, relaxed: opts.RelaxedOrder, interrupt: opts.Interrupt,
		maxVisited: opts.MaxVisited, maxMemory: opts.MaxMemory, batch: s.itBatch[:0], spill: s.itSpill[:0]}
	if it.ef <= 0 {
		it.ef = defaultEf
	}
	it.sp = searchSpec{filter: opts.Filter, accept: statePresent, it: it}
	if opts.UseMaxDistance {
		it.sp.bounded, it.sp.bound = true, x.internal(opts.MaxDistance)
	}
	return it, nil
}

// Next returns the next result; ok is false when there are no more (graph
// exhausted, or the distance bound reached), or when SearchOptions.Interrupt
// asked to stop (then Interrupted is true and Next may be called again).
func (it *Iterator) Next() (r Result, ok bool) {
	it.interrupted = false
	rounds := 0
	for !it.done {
		for it.pos < len(it.batch) {
			c := it.batch[it.pos]
			it.pos++
			if it.sp.bounded && c.dist > it.sp.bound {
				// The batch is ascending, so the rest of this round is out of
				// bounds too; later rounds start farther still.
				it.done = true
				return Result{}, false
			}
			if !it.relaxed && it.hasLast && c.dist < it.last {
				continue // found late: returning it would break the order
			}
			if it.x.IsDeleted(c.id) {
				continue // deleted since it was found
			}
			if !it.hasLast || c.dist > it.last {
				it.last, it.hasLast = c.dist, true
			}
			return Result{ID: c.id, Distance: it.x.reported(c.dist)}, true
		}
		// Poll only after a round of this call, so every call makes progress.
		if rounds > 0 && it.interrupt != nil && it.interrupt() {
			it.interrupted = true
			return Result{}, false
		}
		if it.started && it.overBudget() {
			it.drain()
		} else {
			it.round()
		}
		rounds++
	}
	return Result{}, false
}

// Visited is how many layer-0 elements the search has visited so far (what
// SearchOptions.MaxVisited counts).
func (it *Iterator) Visited() int { return it.visited }

// keptSpill is the most candidates an iterator's buffers may hold for the next one to reuse
// (512 kB).
const keptSpill = 1 << 16

// candidateBytes is the memory one kept candidate costs.
const candidateBytes = 8

// overBudget says whether the graph walk must stop: MaxVisited elements
// visited or MaxMemory bytes kept for later rounds (the spill, and the
// reached-but-unexpanded elements wherever they wait).
func (it *Iterator) overBudget() bool {
	if it.maxVisited > 0 && it.visited >= it.maxVisited {
		return true
	}
	return it.maxMemory > 0 && int64(len(it.spill)+len(it.s.cand))*candidateBytes >= it.maxMemory
}

// drain refills it.batch with the next ef elements of the spill, nearest
// first, without walking the graph; it ends the iterator when the spill is
// empty.
func (it *Iterator) drain() {
	it.batch, it.pos = it.batch[:0], 0
	it.s.cand = it.s.cand[:0] // never expanded now
	for len(it.batch) < it.ef && len(it.spill) > 0 {
		it.batch = append(it.batch, it.spill.pop())
	}
	if len(it.batch) == 0 {
		it.done = true
		return
	}
	if it.x.approxTraversal(it.s) {
		it.x.grow.RLock()
		it.x.rescore(it.s, it.q, it.batch)
		it.x.grow.RUnlock()
	}
}

// Interrupted reports whether the last Next stopped because
// SearchOptions.Interrupt asked it to, rather than because the results ran out.
func (it *Iterator) Interrupted() bool { return it.interrupted }

// round runs one beam search (the first) or resumes it, refilling it.batch in
// ascending exact distance.
func (it *Iterator) round() {
	x, s := it.x, it.s
	x.grow.RLock()
	defer x.grow.RUnlock()
	it.batch, it.pos = it.batch[:0], 0
	if !it.started {
		it.started = true
		if !x.startLayer0(s, it.q, &it.sp) {
			it.done = true
			return
		}
		it.visited++ // the layer-0 entry, as pgvector counts it
	} else {
		s.res = s.res[:0]
		for len(s.res) < it.ef && len(it.spill) > 0 {
			s.res.push(it.spill.pop())
		}
		if len(s.cand) == 0 && len(s.res) == 0 {
			it.done = true
			return
		}
	}
	x.searchLayer(s, it.q, 0, it.ef, &it.sp)
	for len(s.res) > 0 {
		it.batch = append(it.batch, s.res.pop())
	}
	if x.approxTraversal(s) {
		// Exact distances for the whole round, not just its approximate head:
		// int8 rounding reorders near-ties, and a true neighbour ranked past a
		// fixed window by its code would be lost however large ef is.
		x.rescore(s, it.q, it.batch)
		return
	}
	b := it.batch
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// Close releases the iterator's memory to the index's pool. The iterator
// must not be used afterwards.
func (it *Iterator) Close() {
	if it.s != nil {
		// Keep buffers of an ordinary scan's size only: a long iterative scan's spill
		// (up to work_mem × scan_mem_multiplier) is not held by an idle backend.
		if cap(it.spill) <= keptSpill {
			it.s.itSpill = it.spill[:0]
		}
		if cap(it.batch) <= keptSpill {
			it.s.itBatch = it.batch[:0]
		}
		it.batch, it.spill = nil, nil
		it.x.pool.put(it.s)
		it.s = nil
		it.done = true
	}
}
