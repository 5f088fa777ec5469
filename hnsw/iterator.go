package hnsw

// Iterator yields search results in increasing distance for as long as the
// caller asks, which is what PostgreSQL's iterative index scans need when a
// WHERE clause drops rows: the first ef results come from an ordinary beam
// search, and each further round resumes that search from where it stopped.
// It keeps the visited set, the unexpanded candidates, and every admitted node
// that did not fit in the beam, so no node is visited twice and none is lost.
//
// Order guarantee: distances returned are non-decreasing. A resumed round can
// reach a node closer than one already returned (the graph search is
// approximate); such a node is skipped rather than returned out of order.
//
// An Iterator is not safe for concurrent use; the index may change between
// calls to Next (new nodes may appear, deleted nodes are not returned). Call
// Close to recycle its memory.
type Iterator struct {
	x       *Index
	s       *scratch
	sp      searchSpec
	q       []float32
	ef      int
	batch   []candidate // current round's results, ascending
	pos     int
	exact   int     // QuantizedSearch: batch[:exact] has exact distances, sorted
	last    float32 // internal distance of the last result returned
	hasLast bool
	started bool
	done    bool
	spill   minHeap // admitted nodes that did not fit in the beam
	later   minHeap // reached nodes not yet expanded
}

// NewIterator starts an iterative search for q. opts.Ef is the width of each
// round (default 40); Filter and MaxDistance apply to every result.
func (x *Index) NewIterator(q []float32, opts SearchOptions) (*Iterator, error) {
	s := x.pool.get()
	query, err := x.prepareSearch(s, q)
	if err != nil {
		x.pool.put(s)
		return nil, err
	}
	copy(s.query, query) // own the query: the caller may reuse q
	it := &Iterator{x: x, s: s, q: s.query, ef: opts.Ef}
	if it.ef <= 0 {
		it.ef = defaultEf
	}
	it.sp = searchSpec{filter: opts.Filter, accept: statePresent, it: it}
	if opts.UseMaxDistance {
		it.sp.bounded, it.sp.bound = true, x.internal(opts.MaxDistance)
	}
	return it, nil
}

// Next returns the next nearest result; ok is false when there are no more
// (graph exhausted, or the distance bound reached).
func (it *Iterator) Next() (r Result, ok bool) {
	for !it.done {
		for it.pos < len(it.batch) {
			if it.s.quant && it.pos >= it.exact {
				// Rescore the next window. Results are ordered by exact
				// distance within a window; a node whose exact distance falls
				// below one already returned is skipped, as for late finds.
				it.exact = it.pos + min(len(it.batch)-it.pos, rescoreWindow)
				it.x.grow.RLock()
				it.x.rescore(it.q, it.batch[it.pos:it.exact])
				it.x.grow.RUnlock()
			}
			c := it.batch[it.pos]
			it.pos++
			if it.s.quant && it.hasLast && c.dist < it.last {
				continue
			}
			if it.sp.bounded && c.dist > it.sp.bound {
				it.done = true
				return Result{}, false
			}
			if it.x.IsDeleted(c.id) {
				continue // deleted since it was found
			}
			it.last, it.hasLast = c.dist, true
			return Result{ID: c.id, Distance: it.x.reported(c.dist)}, true
		}
		it.round()
	}
	return Result{}, false
}

// round runs one beam search (the first) or resumes it, refilling it.batch.
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
	} else {
		for len(it.later) > 0 {
			s.cand.push(it.later.pop())
		}
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
	// Reverse into ascending order, dropping nodes closer than what was
	// already returned (found late; returning them would break the order).
	b := it.batch
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	if s.quant {
		it.exact = 0 // Next rescores window by window
		return
	}
	if it.hasLast && len(b) > 0 && b[0].dist < it.last {
		k := 0
		for k < len(b) && b[k].dist < it.last {
			k++
		}
		it.pos = k
	}
}

// Close releases the iterator's memory to the index's pool. The iterator
// must not be used afterwards.
func (it *Iterator) Close() {
	if it.s != nil {
		it.x.pool.put(it.s)
		it.s = nil
		it.done = true
	}
}
