package hnsw

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Metric selects the distance, with pgvector's meaning.
type Metric uint8

const (
	// L2 is pgvector's `<->`: Euclidean distance (square root included).
	L2 Metric = iota + 1
	// Cosine is pgvector's `<=>`: 1 − cos(a, b), in [0, 2].
	Cosine
	// InnerProduct is pgvector's `<#>`: −(a·b).
	InnerProduct
	// L1 is pgvector's `<+>`: the sum of absolute differences.
	L1
	// Hamming is pgvector's `<~>` on bit strings: the number of differing bits.
	Hamming
	// Jaccard is pgvector's `<%>` on bit strings: 1 − |a∧b| / |a∨b|.
	Jaccard
)

func (m Metric) String() string {
	switch m {
	case L2:
		return "l2"
	case Cosine:
		return "cosine"
	case InnerProduct:
		return "inner_product"
	case L1:
		return "l1"
	case Hamming:
		return "hamming"
	case Jaccard:
		return "jaccard"
	}
	return fmt.Sprintf("Metric(%d)", uint8(m))
}

func (m Metric) valid() bool { return m >= L2 && m <= Jaccard }

// Options are the build parameters. Zero fields take the defaults shown.
type Options struct {
	// M is the neighbour count above layer 0; layer 0 keeps 2·M. Default 16, at least 2.
	M int
	// EfConstruction is the beam width used while inserting. Default 64.
	EfConstruction int
	// Seed drives the level of each node. Levels are a pure function of
	// (Seed, id), so a single-threaded build in the same order is identical.
	Seed uint64
	// Threads is the number of goroutines AddBatch uses. 0 means GOMAXPROCS;
	// 1 gives the deterministic single-thread build.
	Threads int
	// ArenaWords is, for Sparse elements in a mapped graph (Attach), the words
	// of compact codes it has room for (arena.go): 1 + 2n per node of n
	// non-zeros. 0 means room for every node at the type's full width. Graphs
	// in the Go heap grow their arena and ignore it.
	ArenaWords int64
	// MemoryLimit refuses growth whose EstimateMemory exceeds it. 0 means the
	// Go runtime's soft memory limit (GOMEMLIMIT / debug.SetMemoryLimit).
	MemoryLimit int64
	// QuantizedSearch keeps an int8 copy of every vector (one byte per
	// component more) and makes searches and iterators traverse the graph with
	// int8 distances, rescoring what they return with exact float32 distances.
	// It pays off when the float32 vectors do not fit in cache (high
	// dimensions); results stay exact pgvector distances, recall drops slightly.
	// It is shorthand for Quantization: QuantInt8.
	QuantizedSearch bool
	// Element is how stored words are read (element.go); Float32 by default.
	// Every metric is defined on Float32, Half and Sparse but Hamming and
	// Jaccard, which are only defined on Bits.
	Element Element
	// Quantization chooses the codes searches traverse the graph with (see
	// Quantization); QuantNone (the zero value) unless QuantizedSearch is set.
	Quantization Quantization
}

// Quantization is the compact copy of every vector that searches and
// iterators traverse the graph with; what they return is always rescored with
// exact float32 distances. Neighbour selection and deletes use float32
// whatever it is; with QuantInt8 an insert's own search also walks with int8
// codes and rescores its beam (quantbuild.go), so the graph can differ
// slightly, at the same recall.
type Quantization uint8

const (
	// QuantNone traverses with float32 distances.
	QuantNone Quantization = iota
	// QuantInt8 keeps one int8 per component and a scale per vector (a
	// quarter of the float32 bytes).
	QuantInt8
	// QuantBinary keeps the sign of each component, one bit (1/32 of the
	// float32 bytes), and traverses by Hamming distance. It suits embeddings
	// whose components are centred on zero (most text embedding models) under
	// cosine or inner product; raise ef to keep recall.
	QuantBinary
)

func (q Quantization) String() string {
	switch q {
	case QuantNone:
		return "none"
	case QuantInt8:
		return "int8"
	case QuantBinary:
		return "binary"
	}
	return fmt.Sprintf("Quantization(%d)", uint8(q))
}

// Result is one search hit. Distance is the metric's pgvector value.
type Result struct {
	ID       uint32
	Distance float32
}

// Node state bits, stored atomically per id.
const (
	statePending uint32 = 1 << iota // claimed by an insert in progress
	statePresent                    // fully inserted
	stateDeleted                    // tombstone: navigable, never returned
)

// counters are the graph-wide values every reader and writer updates
// atomically. Their layout is part of the mapped format (mapped.go).
type counters struct {
	// entry packs (level+1)<<32 | id; 0 means no entry point.
	entry     atomic.Uint64
	count     atomic.Int64  // present nodes, deleted included
	live      atomic.Int64  // present and not deleted
	upperUsed atomic.Uint64 // words of upperSlab handed out
	idLimit   atomic.Uint32 // 1 + largest id added
	_         uint32
	arenaUsed atomic.Uint64 // words of the sparse code arena handed out (arena.go)
}

const lockStripes = 4096

// maxLevel caps node levels; with M ≥ 2 a level this high has probability ≤ 2^-31.
const maxLevel = 31

// Index is an HNSW graph. Create it with New. All methods are safe for
// concurrent use.
type Index struct {
	dims   int
	metric Metric
	m      int // neighbour capacity above layer 0
	m0     int // neighbour capacity at layer 0 (2·M)
	efC    int
	seed   uint64
	mL     float64
	thr    int
	limit  int64
	quant  bool // traversal with codes: Quantization int8 or binary
	bin    bool // Quantization binary: codes are sign bits (bits, words per vector)
	words  int  // uint64 words per binary code
	cdims  int  // components per int8 code: dims, or 2·dims for Half rows (quanthalf.go)
	elem   Element
	sparse bool // Sparse elements: codes live compact in arena (arena.go), not in vectors

	// grow guards the slices below against reallocation: every reader and
	// inserter holds it shared; only growth takes it exclusively.
	grow sync.RWMutex

	vectors []float32 // stored form, stride dims (not for Sparse elements)
	codeRef []uint64  // Sparse: where each node's compact code lies in arena (arena.go)
	arena   []float32 // Sparse: compact codes, handed out by ctr.arenaUsed
	codes   []int8    // QuantizedSearch: int8 copy of vectors, stride dims
	scales  []float32 // QuantizedSearch: per-vector scale of codes
	norms2  []float32 // QuantizedSearch under L2: squared norm of each vector
	bits    []uint64  // QuantBinary: sign bits of vectors, stride words
	links0  []uint32  // layer-0 lists, stride m0+1: [count, ids...]
	dcache0 []uint64  // heap graphs of high dims: layer-0 neighbour distances, stride m0 (distcache.go)
	levels  []uint8   // level of each node (valid once claimed)
	state   []uint32  // state bits, accessed atomically
	// Upper layers are flat too: a node of level l > 0 owns l·(m+1) words of
	// upperSlab from upperOff[id]−1 on (0: none), handed out by a bump
	// allocator (ctr.upperUsed) and never reused. No pointer anywhere, so the
	// whole graph can live in a file mapping (see mapped.go).
	upperOff  []uint32
	upperSlab []uint32

	// locks are taken by writers of a node's lists, striped by id so their
	// memory does not grow with the graph (no writer holds two at once). A
	// mapped graph uses sharedLocks instead, lock words in the mapping, since
	// other processes write it too (sharedlock.go).
	locks       [lockStripes]sync.Mutex
	sharedLocks []uint32

	// ctr holds the shared counters: in the Index's own memory, or in the
	// header of a mapped graph so that every process sees the same ones.
	ctr *counters
	// mapped graphs live in memory the Index does not own and cannot grow.
	mapped bool
	// noDistCache turns the distance cache off (tests compare graphs built with and without).
	noDistCache bool
	// noQuantBuild makes inserts search in float32 on an int8 index (tests and benchmarks compare).
	noQuantBuild bool
	// reconnectSkip makes Reconnect pass over a dropped element that two of its own
	// neighbours link back to, without the search (connect.go says why that is off; tests
	// compare graph quality with and without it).
	reconnectSkip bool

	// entryMu serialises entry replacement after deleting the entry node.
	entryMu sync.Mutex

	pool scratchPool
}

// New returns an empty index for vectors of dims components.
func New(dims int, metric Metric, opts Options) (*Index, error) {
	if dims <= 0 || dims > 1<<16 {
		return nil, fmt.Errorf("%w: dims %d outside 1..65536", ErrInvalidOptions, dims)
	}
	if !metric.valid() {
		return nil, fmt.Errorf("%w: unknown metric %d", ErrInvalidOptions, metric)
	}
	if opts.QuantizedSearch && opts.Quantization == QuantNone {
		opts.Quantization = QuantInt8
	}
	if opts.Quantization > QuantBinary {
		return nil, fmt.Errorf("%w: unknown quantization %d", ErrInvalidOptions, opts.Quantization)
	}
	if err := checkElementOptions(dims, metric, opts); err != nil {
		return nil, err
	}
	if opts.M == 0 {
		opts.M = 16
	}
	if opts.EfConstruction == 0 {
		opts.EfConstruction = 64
	}
	if opts.M < 2 || opts.M > 1000 {
		return nil, fmt.Errorf("%w: M %d outside 2..1000", ErrInvalidOptions, opts.M)
	}
	if opts.EfConstruction < 1 || opts.EfConstruction > 100000 {
		return nil, fmt.Errorf("%w: EfConstruction %d outside 1..100000", ErrInvalidOptions, opts.EfConstruction)
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("%w: Threads %d is negative", ErrInvalidOptions, opts.Threads)
	}
	if opts.MemoryLimit < 0 {
		return nil, fmt.Errorf("%w: MemoryLimit %d is negative", ErrInvalidOptions, opts.MemoryLimit)
	}

	x := &Index{
		dims:   dims,
		metric: metric,
		m:      opts.M,
		m0:     2 * opts.M,
		efC:    opts.EfConstruction,
		seed:   opts.Seed,
		mL:     1 / math.Log(float64(opts.M)),
		thr:    opts.Threads,
		limit:  opts.MemoryLimit,
		quant:  opts.Quantization != QuantNone,
		bin:    opts.Quantization == QuantBinary,
		words:  (codeDims(dims, opts.Element) + 63) / 64,
		cdims:  codeDims(dims, opts.Element),
		elem:   opts.Element,
		sparse: opts.Element == Sparse,
		ctr:    new(counters),
	}
	x.pool.x = x
	return x, nil
}

// Options returns the options in force (defaults filled in).
func (x *Index) Options() Options {
	return Options{M: x.m, EfConstruction: x.efC, Seed: x.seed, Threads: x.thr, MemoryLimit: x.limit,
		QuantizedSearch: x.quant && !x.bin, Quantization: x.Quantization(), Element: x.elem,
		ArenaWords: x.arenaWords()}
}

// Quantization is the traversal codes' kind.
func (x *Index) Quantization() Quantization {
	switch {
	case x.bin:
		return QuantBinary
	case x.quant:
		return QuantInt8
	}
	return QuantNone
}

// Dims is the number of components per vector.
func (x *Index) Dims() int { return x.dims }

// Metric is the distance the index was built for.
func (x *Index) Metric() Metric { return x.metric }

// Len is the number of nodes in the graph, deleted ones included (they stay as
// navigable tombstones).
func (x *Index) Len() int { return int(x.ctr.count.Load()) }

// Live is the number of nodes that are present and not deleted.
func (x *Index) Live() int { return int(x.ctr.live.Load()) }

// IDLimit is one more than the largest id ever added: iterate 0..IDLimit()-1
// and skip ids for which Contains is false to visit every node.
func (x *Index) IDLimit() uint32 { return x.ctr.idLimit.Load() }

// Contains reports whether id has been fully added (deleted or not).
func (x *Index) Contains(id uint32) bool { return x.stateOf(id)&statePresent != 0 }

// IsDeleted reports whether id is a deleted node.
func (x *Index) IsDeleted(id uint32) bool { return x.stateOf(id)&stateDeleted != 0 }

func (x *Index) stateOf(id uint32) uint32 {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) {
		return 0
	}
	return atomic.LoadUint32(&x.state[id])
}

// EntryPoint returns the node every search starts from and its level; ok is
// false for an empty graph.
func (x *Index) EntryPoint() (id uint32, level int, ok bool) {
	e := x.ctr.entry.Load()
	if e == 0 {
		return 0, 0, false
	}
	return uint32(e), int(e>>32) - 1, true
}

func packEntry(id uint32, level int) uint64 { return uint64(level+1)<<32 | uint64(id) }

// Level returns the top layer of id, or -1 if id is not present.
func (x *Index) Level(id uint32) int {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) || atomic.LoadUint32(&x.state[id])&statePresent == 0 {
		return -1
	}
	return int(x.levels[id])
}

// Neighbors returns a copy of id's neighbour list at layer (nil if id is not
// present or has no such layer). Lists of deleted nodes are kept: they still
// route searches.
func (x *Index) Neighbors(id uint32, layer int) []uint32 {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) || atomic.LoadUint32(&x.state[id])&statePresent == 0 ||
		layer < 0 || layer > int(x.levels[id]) {
		return nil
	}
	l := x.list(id, layer)
	out := make([]uint32, loadCount(l))
	for i := range out {
		out[i] = loadID(l, i)
	}
	return out
}

// Vector returns a copy of id's stored vector, or nil if id is not present.
// Under Cosine the stored form is the unit-length copy, not the vector that was
// added; under L2 and InnerProduct it is the vector as added.
func (x *Index) Vector(id uint32) []float32 {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) || atomic.LoadUint32(&x.state[id])&statePresent == 0 {
		return nil
	}
	if x.sparse {
		out := make([]float32, x.dims)
		widen(out, x.sparseVec(id))
		return out
	}
	return append([]float32(nil), x.vec(id)...)
}

// VectorInto is Vector into dst (Dims long, or longer); false if id is not present.
func (x *Index) VectorInto(dst []float32, id uint32) bool {
	x.grow.RLock()
	defer x.grow.RUnlock()
	if int(id) >= len(x.state) || atomic.LoadUint32(&x.state[id])&statePresent == 0 {
		return false
	}
	if x.sparse {
		widen(dst[:x.dims], x.sparseVec(id))
	} else {
		copy(dst[:x.dims], x.vec(id))
	}
	return true
}

// vec is the stored vector of id (caller holds grow): for Sparse elements its
// compact code (1 + 2n words), which the sparse kernels read as they read the
// wide form.
func (x *Index) vec(id uint32) []float32 {
	if x.sparse {
		return x.sparseVec(id)
	}
	o := int(id) * x.dims
	return x.vectors[o : o+x.dims : o+x.dims]
}

// list is id's neighbour array at layer: [count, ids...] (caller holds grow).
func (x *Index) list(id uint32, layer int) []uint32 {
	if layer == 0 {
		o := int(id) * (x.m0 + 1)
		return x.links0[o : o+x.m0+1 : o+x.m0+1]
	}
	o := int(atomic.LoadUint32(&x.upperOff[id])) - 1 + (layer-1)*(x.m+1)
	return x.upperSlab[o : o+x.m+1 : o+x.m+1]
}

// capAt is the neighbour capacity of a layer.
func (x *Index) capAt(layer int) int {
	if layer == 0 {
		return x.m0
	}
	return x.m
}

func (x *Index) memoryLimit() int64 {
	if x.limit > 0 {
		return x.limit
	}
	return debug.SetMemoryLimit(-1)
}

// Reserve makes room for ids 0..n-1, so that later adds do not reallocate. It
// fails with a *MemoryError when EstimateMemory(n, ...) exceeds the limit.
func (x *Index) Reserve(n int) error {
	if n < 0 || int64(n) > math.MaxUint32 {
		return fmt.Errorf("%w: cannot reserve %d nodes", ErrInvalidOptions, n)
	}
	x.grow.RLock()
	have := len(x.state)
	x.grow.RUnlock()
	if n <= have {
		return nil
	}
	x.grow.Lock()
	defer x.grow.Unlock()
	return x.growLocked(n)
}

// growLocked resizes every per-node slice to hold n ids (caller holds grow exclusively).
func (x *Index) growLocked(n int) error {
	old := len(x.state)
	if n <= old {
		return nil
	}
	if x.mapped {
		return fmt.Errorf("%w: room for %d nodes, %d needed", ErrFull, old, n)
	}
	need := EstimateMemory(n, x.dims, x.m)
	if x.cachesDists() {
		need += int64(n) * int64(8*x.m0)
	}
	if x.bin {
		need += int64(n) * int64(8*x.words)
	} else if x.quant {
		need += int64(n) * int64(x.cdims+8) // codes, scale, norm
	}
	if need > x.memoryLimit() {
		return &MemoryError{Nodes: n, NeedBytes: need, LimitBytes: x.memoryLimit()}
	}
	if x.sparse {
		x.codeRef = growSlice(x.codeRef, n)
	} else {
		x.vectors = growSlice(x.vectors, n*x.dims)
	}
	if x.bin {
		x.bits = growSlice(x.bits, n*x.words)
	} else if x.quant {
		x.codes = growSlice(x.codes, n*x.cdims)
		x.scales = growSlice(x.scales, n)
		if x.metric == L2 {
			x.norms2 = growSlice(x.norms2, n)
		}
	}
	x.links0 = growSlice(x.links0, n*(x.m0+1))
	if x.cachesDists() {
		x.dcache0 = growSlice(x.dcache0, n*x.m0)
	}
	x.upperOff = growSlice(x.upperOff, n)
	x.levels = growSlice(x.levels, n)
	x.state = growSlice(x.state, n)
	if want := upperWords(n, x.m); want > uint64(len(x.upperSlab)) {
		x.upperSlab = growSlice(x.upperSlab, int(want))
	}
	return nil
}

// upperWords is the upper-layer room planned for n nodes: twice the expected
// n·(m+1)/(m−1) words (a node reaches layer l with probability M^−l), plus
// room for a few nodes of the highest levels.
func upperWords(n, m int) uint64 {
	return uint64(n)*uint64(m+1)*2/uint64(m-1) + uint64(2*maxLevel*(m+1))
}

// allocUpper hands out room for the upper lists of a node of level > 0 and
// returns its upperOff value; ok is false when the slab is full (caller holds
// grow shared; growUpper makes room).
func (x *Index) allocUpper(level int) (off uint32, ok bool) {
	need := uint64(level * (x.m + 1))
	for {
		used := x.ctr.upperUsed.Load()
		if used+need > uint64(len(x.upperSlab)) {
			return 0, false
		}
		if x.ctr.upperUsed.CompareAndSwap(used, used+need) {
			return uint32(used) + 1, true
		}
	}
}

// growUpper doubles the upper slab (caller holds no lock).
func (x *Index) growUpper() error {
	x.grow.Lock()
	defer x.grow.Unlock()
	if x.mapped {
		return fmt.Errorf("%w: upper layers of %d words are full", ErrFull, len(x.upperSlab))
	}
	x.upperSlab = growSlice(x.upperSlab, 2*len(x.upperSlab)+64*(x.m+1))
	return nil
}

// growSlice returns s extended with zeros to length n.
func growSlice[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	out := make([]T, n, n)
	copy(out, s)
	return out
}

// ensureID makes id addressable and returns with grow held shared. Growth is
// geometric so that ascending adds stay amortised O(1).
func (x *Index) ensureID(id uint32) error {
	for {
		x.grow.RLock()
		if int(id) < len(x.state) {
			return nil
		}
		x.grow.RUnlock()
		x.grow.Lock()
		n := len(x.state)
		var err error
		if int(id) >= n {
			want := max(int(id)+1, n+n/2, 1024)
			if err = x.growLocked(want); err != nil {
				// The geometric step may not fit where the exact size does.
				err = x.growLocked(int(id) + 1)
			}
		}
		x.grow.Unlock()
		if err != nil {
			return err
		}
	}
}

func (x *Index) threads() int {
	if x.thr > 0 {
		return x.thr
	}
	return runtime.GOMAXPROCS(0)
}

// raiseIDLimit records that id exists.
func (x *Index) raiseIDLimit(id uint32) {
	for {
		cur := x.ctr.idLimit.Load()
		if id < cur || x.ctr.idLimit.CompareAndSwap(cur, id+1) {
			return
		}
	}
}

func atomicLoad(p *uint32) uint32 { return atomic.LoadUint32(p) }
