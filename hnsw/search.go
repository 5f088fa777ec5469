package hnsw

import (
	"slices"
	"sync/atomic"

	"github.com/borealisdb/borealis/simd"
)

// SearchOptions tune one search or iterator.
type SearchOptions struct {
	// Ef is the beam width at layer 0; raised to k when smaller. 0 means 40
	// (pgvector's hnsw.ef_search default).
	Ef int
	// Filter, when set, admits only ids for which it returns true. Rejected
	// nodes still route the search; the search keeps going until it has Ef
	// admitted nodes or runs out of graph, so a very selective filter can visit
	// much of the graph. It is called from the searching goroutine while the
	// index is read-locked, so it must not call methods of the same index.
	Filter func(id uint32) bool
	// MaxDistance, when UseMaxDistance is set, keeps only results whose
	// distance (pgvector scale) is ≤ MaxDistance, and stops the search early:
	// once Ef admitted nodes were seen and Ef nodes expanded, as soon as the
	// closest unexplored node is beyond the bound. This can miss a few nodes
	// inside the bound that the unbounded search would reach through nodes
	// outside it. `WHERE 1 - (e <=> q) > 0.8` is MaxDistance 0.2 under Cosine.
	MaxDistance    float32
	UseMaxDistance bool
	// RelaxedOrder (iterators only) is pgvector's relaxed_order: a node that a
	// resumed round finds closer than one already returned is returned anyway,
	// slightly out of order, instead of being skipped (strict_order, the
	// default). See Iterator.
	RelaxedOrder bool
	// Interrupt (iterators only), when set, is polled before each resumed round
	// of the search. When it returns true, Next returns ok = false at once with
	// Interrupted() true, and the iterator stays usable: a later Next resumes
	// where it stopped. Under strict order one Next can otherwise run many
	// rounds whose finds are all skipped, long enough to delay a cancel.
	Interrupt func() bool
	// MaxVisited (iterators only), when > 0, is pgvector's
	// hnsw.max_scan_tuples: once the layer-0 search has visited that many
	// elements (entry plus every neighbour whose distance it computed), no
	// further round walks the graph. The iterator then returns what it found
	// and has not returned yet, nearest first, and ends. A round in progress
	// finishes, so the count may overshoot by about one round.
	MaxVisited int
	// MaxMemory (iterators only), when > 0, bounds the bytes an iterator keeps
	// for later rounds (found-but-unreturned and reached-but-unexpanded
	// elements), as pgvector's work_mem × hnsw.scan_mem_multiplier: reaching
	// it ends the graph walk as MaxVisited does.
	MaxMemory int64
}

// defaultEf is used when SearchOptions.Ef is 0.
const defaultEf = 40

// searchSpec is SearchOptions in internal form plus the iterator's overflow.
type searchSpec struct {
	filter  func(uint32) bool
	bound   float32
	bounded bool
	// accept is the state mask a node needs to be a result: statePresent for
	// searches, statePresent|statePending for inserts (a node being inserted
	// concurrently is already a valid neighbour).
	accept uint32
	it     *Iterator // non-nil: keep evicted and rejected nodes for later rounds
}

// eligible says whether node e may enter the result heap.
func (x *Index) eligible(e uint32, sp *searchSpec) bool {
	st := atomic.LoadUint32(&x.state[e])
	if st&sp.accept == 0 || st&stateDeleted != 0 {
		return false
	}
	return sp.filter == nil || sp.filter(e)
}

// listFor returns id's list at layer, or nil when id has no such layer (an
// absent id, or a cache rebuilt from pages that referenced it before its turn).
func (x *Index) listFor(id uint32, layer int) []uint32 {
	if layer == 0 {
		return x.list(id, 0)
	}
	if atomic.LoadUint32(&x.upperOff[id]) == 0 || layer > int(x.levels[id]) {
		return nil
	}
	return x.list(id, layer)
}

// descend walks greedily (ef = 1) from ep at epLevel down to layer stop+1 and
// returns the closest node found, the entry into layer stop.
func (x *Index) descend(s *scratch, q []float32, ep uint32, epLevel, stop int) candidate {
	cur := candidate{dist: x.scoreOne(s, q, ep), id: ep}
	for layer := epLevel; layer > stop; layer-- {
		for improved := true; improved; {
			improved = false
			l := x.listFor(cur.id, layer)
			if l == nil {
				break
			}
			ids := s.ids[:loadCount(l)]
			for i := range ids {
				ids[i] = loadID(l, i)
			}
			dists := s.dists[:len(ids)]
			x.score(s, q, ids, dists)
			for i, d := range dists {
				if d < cur.dist {
					cur = candidate{dist: d, id: ids[i]}
					improved = true
				}
			}
		}
	}
	return cur
}

// searchLayer is the beam search of the paper (Algorithm 2) on one layer. The
// caller has filled s.cand with entry points (visited) and s.res with those
// that are eligible. On return s.res holds up to ef eligible nodes.
func (x *Index) searchLayer(s *scratch, q []float32, layer, ef int, sp *searchSpec) {
	expanded := 0
	for len(s.cand) > 0 {
		c := s.cand.pop()
		if len(s.res) >= ef {
			limit := s.res[0].dist
			// The distance bound ends the search early, but only after ef
			// expansions: nodes inside the bound are often reached through a
			// few nodes just outside it.
			// (Not on a Hamming walk: its distances are not the bound's.)
			if sp.bounded && sp.bound < limit && expanded >= ef && !(s.quant && x.bin) {
				limit = sp.bound
			}
			if c.dist > limit {
				if sp.it != nil {
					s.cand.push(c) // not expanded: a later round starts from it
				}
				return
			}
		}
		l := x.listFor(c.id, layer)
		if l == nil {
			continue
		}
		expanded++
		ids := s.ids[:0]
		for i := range loadCount(l) {
			if e := loadID(l, i); s.visit(e) {
				ids = append(ids, e)
			}
		}
		if len(ids) == 0 {
			continue
		}
		if sp.it != nil {
			sp.it.visited += len(ids)
		}
		s.ids = ids
		// The neighbours' state words (read by eligible below) and the next candidate's
		// list are at random places of large arrays: their cache misses, paid in turn,
		// were 8% and 6% of a backend's CPU per query at 100k x 128 (perf). Started now,
		// they arrive while the distances are computed.
		simd.PrefetchRows(x.state, 1, ids, 1)
		if len(s.cand) > 0 && layer == 0 {
			// Usually the next expanded; its list is 4-byte aligned, so it can start up
			// to 60 bytes into a line and reach one line further.
			s.next[0] = s.cand[0].id
			simd.PrefetchRows(x.links0, x.m0+1, s.next[:], (4*(x.m0+1)+60+63)/64)
		}
		dists := s.dists[:len(ids)]
		x.score(s, q, ids, dists)
		for j, e := range ids {
			d := dists[j]
			if len(s.res) < ef || d < s.res[0].dist {
				s.cand.push(candidate{dist: d, id: e})
				if x.eligible(e, sp) {
					s.res.push(candidate{dist: d, id: e})
					if len(s.res) > ef {
						ev := s.res.pop()
						if sp.it != nil {
							sp.it.spill.push(ev)
						}
					}
				}
			} else if sp.it != nil {
				// Straight into the candidates: this round ends before it
				// reaches them (they are beyond the beam), the next starts
				// there, and no transfer between heaps is paid per round.
				s.cand.push(candidate{dist: d, id: e})
				if x.eligible(e, sp) {
					sp.it.spill.push(candidate{dist: d, id: e})
				}
			}
		}
	}
}

// Search returns the k nearest neighbours of q, nearest first, exploring with
// beam width ef. It returns nil for an invalid query; use SearchInto or
// SearchWith to get the error.
func (x *Index) Search(q []float32, k, ef int) []Result {
	out, err := x.SearchWith(nil, q, k, SearchOptions{Ef: ef})
	if err != nil {
		return nil
	}
	return out
}

// SearchInto appends the k nearest neighbours of q to dst and returns it. With
// a dst of sufficient capacity it makes no allocation.
func (x *Index) SearchInto(dst []Result, q []float32, k, ef int) ([]Result, error) {
	return x.SearchWith(dst, q, k, SearchOptions{Ef: ef})
}

// SearchWith is SearchInto with a filter and a distance bound. Results are in
// increasing distance; fewer than k are returned when the filter, the bound or
// deletions leave fewer.
func (x *Index) SearchWith(dst []Result, q []float32, k int, o SearchOptions) ([]Result, error) {
	if k <= 0 {
		return dst, nil
	}
	s := x.pool.get()
	defer x.pool.put(s)
	query, err := x.prepareSearch(s, q)
	if err != nil {
		return dst, err
	}
	sp := searchSpec{filter: o.Filter, accept: statePresent}
	if o.UseMaxDistance {
		sp.bounded, sp.bound = true, x.internal(o.MaxDistance)
	}
	ef := max(o.Ef, k)
	if o.Ef == 0 {
		ef = max(defaultEf, k)
	}
	x.grow.RLock()
	defer x.grow.RUnlock()
	if !x.startLayer0(s, query, &sp) {
		return dst, nil
	}
	x.searchLayer(s, query, 0, ef, &sp)
	// Pop the max-heap into s.entries (descending), then emit from the end.
	buf := s.entries[:0]
	for len(s.res) > 0 {
		buf = append(buf, s.res.pop())
	}
	s.entries = buf
	if x.approxTraversal(s) {
		// Exact distances for the whole beam, re-sorted; emit from the end as
		// above. Rescoring only the approximate head would cap recall: int8
		// rounding reorders near-ties, so a true neighbour can rank past any
		// fixed window, however large ef is.
		x.rescore(s, query, buf)
		slices.Reverse(buf)
	}
	for i, taken := len(buf)-1, 0; i >= 0 && taken < k; i, taken = i-1, taken+1 {
		d := buf[i].dist
		if sp.bounded && d > sp.bound {
			break
		}
		dst = append(dst, Result{ID: buf[i].id, Distance: x.reported(d)})
	}
	return dst, nil
}

// prepareQuery validates q and returns it in stored form (normalised into s.query under cosine).
func (x *Index) prepareQuery(s *scratch, q []float32) ([]float32, error) {
	norm2, err := x.checkVector(q)
	if err != nil {
		return nil, err
	}
	if x.metric != Cosine {
		return q, nil
	}
	x.store(s.query, q, norm2)
	return s.query, nil
}

// prepareSearch is prepareQuery for searches and iterators, which (unlike
// inserts) traverse with int8 distances on a QuantizedSearch index.
func (x *Index) prepareSearch(s *scratch, q []float32) ([]float32, error) {
	query, err := x.prepareQuery(s, q)
	if err == nil {
		x.quantizeQuery(s, query)
	}
	return query, err
}

// startLayer0 descends the upper layers and seeds s.cand/s.res for the
// layer-0 beam search. It returns false when there is nothing to search.
// Caller holds grow shared.
func (x *Index) startLayer0(s *scratch, q []float32, sp *searchSpec) bool {
	e := x.ctr.entry.Load()
	if e == 0 || x.ctr.live.Load() == 0 {
		return false
	}
	ep, epLevel := uint32(e), int(e>>32)-1
	s.reset(int(x.ctr.idLimit.Load()))
	c := x.descend(s, q, ep, epLevel, 0)
	s.visit(c.id)
	s.cand.push(c)
	if x.eligible(c.id, sp) {
		s.res.push(c)
	}
	return true
}
