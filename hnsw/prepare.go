package hnsw

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// An insert in two halves, for a caller that must record the node durably between finding
// its neighbours and letting anyone link to it: PostgreSQL writes the element's tuple, with
// its vector and lists, before any other page may name it, and hands out the element's id
// only then. PrepareInsert searches and chooses the neighbours without changing the graph
// (except for reserving upper-layer room); Commit claims the id, writes the node and its
// lists, links its neighbours back and publishes it. Several processes may prepare and
// commit at once on a mapped graph. Between the two the graph may change: Commit links to
// the neighbours chosen then, which stay valid (nodes are never removed while inserts run),
// and redoes the search only when the graph was empty at prepare time and no longer is.

// PreparedInsert is a node ready to be committed under an id. It holds a scratch of its
// index until Commit or Release.
type PreparedInsert struct {
	x      *Index
	s      *scratch
	vec    []float32 // stored form (unit length under cosine)
	norm2  float64
	level  int
	upper  uint32 // upperOff reserved for the node, 0 at level 0
	code   uint64 // Sparse: arena offset reserved for the node's compact code
	entry  uint64 // entry point the search started from, 0 for an empty graph
	linked int    // layers with a selection in s.backLinks
}

// PrepareInsert finds the neighbours of vec for a node whose level is drawn from levelKey
// (hashed, like an id: any value that differs between nodes). The vector is checked as in
// Add and copied. Errors: vector errors as in Add; ErrFull (wrapped) when a mapped graph has
// no upper-layer room left, or no sparse code room (both are claimed here, never at Commit).
func (x *Index) PrepareInsert(vec []float32, levelKey uint64) (*PreparedInsert, error) {
	norm2, err := x.checkVector(vec)
	if err != nil {
		return nil, err
	}
	p := &PreparedInsert{x: x, s: x.pool.get(), norm2: norm2, level: x.levelFor(levelKey)}
	p.vec = make([]float32, x.dims)
	x.store(p.vec, vec, norm2)
	if x.sparse {
		if p.code, err = x.claimCode(p.vec); err != nil {
			p.Release()
			return nil, err
		}
	}
	if p.level > 0 {
		for {
			x.grow.RLock()
			off, ok := x.allocUpper(p.level)
			x.grow.RUnlock()
			if ok {
				p.upper = off
				break
			}
			if err := x.growUpper(); err != nil {
				p.Release()
				return nil, err
			}
		}
	}
	x.grow.RLock()
	defer x.grow.RUnlock()
	p.entry = x.ctr.entry.Load()
	if p.entry != 0 {
		p.linked = x.findNeighbors(p.s, p.vec, noID, p.level, p.entry)
	}
	return p, nil
}

// Level is the node's top layer.
func (p *PreparedInsert) Level() int { return p.level }

// Vector is the node's vector in stored form (owned by p).
func (p *PreparedInsert) Vector() []float32 { return p.vec }

// Neighbors appends the ids chosen at layer to dst (none above Level, or when the graph was
// empty).
func (p *PreparedInsert) Neighbors(dst []uint32, layer int) []uint32 {
	if layer < 0 || layer >= p.linked {
		return dst
	}
	for _, c := range p.s.backLinks[layer] {
		dst = append(dst, c.id&idMask)
	}
	return dst
}

// Commit inserts the node under id and returns, sorted and without repeats, every node whose
// lists changed: the chosen neighbours that took the link, and id itself when its lists are
// not the ones Neighbors reported (the graph was empty at prepare time). p is released.
// Errors: ErrDuplicateID, ErrFull (wrapped) when id is beyond a mapped graph's capacity.
func (p *PreparedInsert) Commit(id uint32) (changed []uint32, err error) {
	x, s := p.x, p.s
	if s == nil {
		return nil, fmt.Errorf("%w: prepared insert used twice", ErrInvalidOptions)
	}
	defer p.Release()
	if id > MaxID {
		return nil, fmt.Errorf("%w: %d", ErrIDOutOfRange, id)
	}
	err = x.withID(id, func() error {
		if !atomic.CompareAndSwapUint32(&x.state[id], 0, statePending) {
			return fmt.Errorf("%w: id %d", ErrDuplicateID, id)
		}
		s.changed = s.changed[:0]
		if x.sparse {
			x.putSparse(id, p.code, p.vec, false, 1) // p.vec is in stored form
		} else {
			copy(x.vec(id), p.vec)
		}
		x.storeCodes(id)
		x.levels[id] = uint8(p.level)
		atomic.StoreUint32(&x.upperOff[id], p.upper)
		x.raiseIDLimit(id)
		if p.entry == 0 {
			e := x.ctr.entry.Load()
			for e == 0 {
				if x.ctr.entry.CompareAndSwap(0, packEntry(id, p.level)) {
					x.finishInsert(id)
					return nil
				}
				e = x.ctr.entry.Load()
			}
			// Another node came first: search from it after all.
			p.linked = x.findNeighbors(s, x.vec(id), id, p.level, e)
			s.changed = append(s.changed, id)
		}
		x.writeOwnLists(id, p.level, s, p.linked)
		x.linkBack(s, id, p.linked)
		x.raiseEntry(id, p.level)
		x.finishInsert(id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(s.changed)
	return slices.Compact(append([]uint32(nil), s.changed...)), nil
}

// Release gives up a prepared insert that will not be committed (its upper-layer room is
// not reused). Releasing twice, or after Commit, does nothing.
func (p *PreparedInsert) Release() {
	if p.s != nil {
		p.x.pool.put(p.s)
		p.s = nil
	}
}

// ClaimedLevel is Level for a node an insert has claimed, published or not (-1 when
// unclaimed). A neighbour can link to a node that another process is still committing (its
// lists are written before anyone links to it), and that neighbour's caller must then write
// the node's lists too.
func (x *Index) ClaimedLevel(id uint32) int {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) || atomic.LoadUint32(&x.state[id])&(statePresent|statePending) == 0 {
		return -1
	}
	return int(x.levels[id])
}

// ClaimedNeighbors appends id's list at layer to dst, for a claimed node as ClaimedLevel.
func (x *Index) ClaimedNeighbors(dst []uint32, id uint32, layer int) []uint32 {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) || atomic.LoadUint32(&x.state[id])&(statePresent|statePending) == 0 ||
		layer < 0 || layer > int(x.levels[id]) {
		return dst
	}
	l := x.list(id, layer)
	for i := range loadCount(l) {
		dst = append(dst, loadID(l, i))
	}
	return dst
}
