package hnsw

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// sparseCodes makes n random sparse codes of words words (wide layout), 1..maxNNZ non-zeros
// over dims dimensions, clustered so a graph search has structure to find.
func sparseCodes(n, words, dims, maxNNZ int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([][]float32, n)
	room := (words - 1) / 2
	for i := range out {
		code := make([]float32, words)
		nnz := 1 + r.IntN(min(room, maxNNZ))
		idx := r.Perm(dims)[:nnz]
		sortInts(idx)
		code[0] = math.Float32frombits(uint32(nnz))
		for k, d := range idx {
			code[1+k] = math.Float32frombits(uint32(d))
			code[1+room+k] = float32(r.NormFloat64())
		}
		out[i] = code
	}
	return out
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j-1] > a[j]; j-- {
			a[j-1], a[j] = a[j], a[j-1]
		}
	}
}

// The compact arena holds what the wide slab held: Vector gives back the wide code, searches
// over a mapped graph sized for the compact codes return what a heap graph returns, and the
// file is a fraction of the fixed-width one.
func TestSparseArenaMappedMatchesHeap(t *testing.T) {
	const words, dims, n = 2001, 5000, 1500
	for _, metric := range []Metric{L2, Cosine, InnerProduct, L1} {
		data := sparseCodes(n, words, dims, 40, uint64(metric))
		used := int64(0)
		for _, v := range data {
			used += int64(compactWords(v))
		}
		opts := Options{M: 8, Seed: 2, Threads: 1, Element: Sparse, ArenaWords: used}
		heap, err := New(words, metric, opts)
		if err != nil {
			t.Fatal(err)
		}
		fixed := MappedSize(words, metric, Options{M: 8, Element: Sparse}, n)
		size := MappedSize(words, metric, opts, n)
		if size*10 > fixed {
			t.Fatalf("%v: arena graph %d bytes, fixed-width %d: want < 1/10", metric, size, fixed)
		}
		mem := alignedBytes(size)
		w, err := Attach(mem, words, metric, opts, n, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range data {
			if err := heap.Add(uint32(i), v); err != nil {
				t.Fatal(err)
			}
			if err := w.Add(uint32(i), v); err != nil {
				t.Fatalf("%v add %d: %v", metric, i, err)
			}
		}
		if u, s := w.ArenaUsed(); u != used || s != used {
			t.Fatalf("%v: arena %d of %d words used, want %d of %d", metric, u, s, used, used)
		}
		// A second view (another process) takes the arena's size from the header.
		r, err := Attach(mem, words, metric, Options{M: 8, Seed: 2, Element: Sparse}, n, false)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			got, want := r.Vector(uint32(i)), heap.Vector(uint32(i))
			if len(got) != words {
				t.Fatalf("%v: Vector(%d) has %d words", metric, i, len(got))
			}
			for k := range got {
				if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
					t.Fatalf("%v: Vector(%d)[%d] = %v, heap graph has %v", metric, i, k, got[k], want[k])
				}
			}
			if metric != Cosine {
				for k := range got {
					if math.Float32bits(got[k]) != math.Float32bits(data[i][k]) {
						t.Fatalf("%v: Vector(%d)[%d] = %v, added %v", metric, i, k, got[k], data[i][k])
					}
				}
			}
		}
		for q := range 30 {
			a, b := heap.Search(data[q], 10, 64), r.Search(data[q], 10, 64)
			if len(a) != 10 || len(a) != len(b) {
				t.Fatalf("%v query %d: %d / %d results", metric, q, len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%v query %d: heap %v, mapped %v", metric, q, a, b)
				}
			}
		}
		// Full: the next node is refused whole, before it claims an id.
		if err := w.Add(n-1+1, data[0]); !errors.Is(err, ErrFull) {
			t.Fatalf("%v: add past capacity: %v", metric, err)
		}
	}
}

// A mapped graph whose arena runs out refuses the insert with ErrFull at PrepareInsert (never
// at Commit, which runs after the pages are written) and at Add and Restore, leaving the id
// unclaimed; a node that fits still goes in after a refused one.
func TestSparseArenaFullIsErrFull(t *testing.T) {
	const words, dims = 201, 1000
	data := sparseCodes(60, words, dims, 100, 3)
	small := []float32{math.Float32frombits(1), math.Float32frombits(5)}
	small = append(small, make([]float32, words-2)...)
	small[1+100] = 1
	opts := Options{M: 4, Seed: 1, Element: Sparse, ArenaWords: 600}
	mem := alignedBytes(MappedSize(words, L2, opts, 64))
	x, err := Attach(mem, words, L2, opts, 64, true)
	if err != nil {
		t.Fatal(err)
	}
	id := uint32(0)
	var full error
	for _, v := range data {
		p, err := x.PrepareInsert(v, uint64(id))
		if err != nil {
			full = err
			break
		}
		if _, err := p.Commit(id); err != nil {
			t.Fatalf("commit %d: %v", id, err)
		}
		id++
	}
	if !errors.Is(full, ErrFull) || id == 0 {
		t.Fatalf("after %d inserts: %v, want ErrFull", id, full)
	}
	if x.ClaimedLevel(id) != -1 {
		t.Fatalf("refused insert claimed id %d", id)
	}
	if err := x.Add(id, data[id]); !errors.Is(err, ErrFull) {
		t.Fatalf("Add into a full arena: %v", err)
	}
	if err := x.Restore(id, 0, data[id], nil); !errors.Is(err, ErrFull) {
		t.Fatalf("Restore into a full arena: %v", err)
	}
	if x.Contains(id) {
		t.Fatal("a refused node is present")
	}
	used, size := x.ArenaUsed()
	if size-used >= 3 {
		p, err := x.PrepareInsert(small, 99)
		if err != nil {
			t.Fatalf("a 3-word code into %d free words: %v", size-used, err)
		}
		if _, err := p.Commit(id); err != nil {
			t.Fatal(err)
		}
		if got := x.Search(small, 1, 10); len(got) != 1 || got[0].ID != id || got[0].Distance != 0 {
			t.Fatalf("search for the small node: %v", got)
		}
	}
}

// Nodes without a code (never written: a reference word of 0) and references outside the
// arena read as the empty code, never out of range.
func TestSparseArenaBadReferencesReadEmpty(t *testing.T) {
	opts := Options{M: 4, Element: Sparse, ArenaWords: 64}
	mem := alignedBytes(MappedSize(21, L2, opts, 8))
	x, err := Attach(mem, 21, L2, opts, 8, true)
	if err != nil {
		t.Fatal(err)
	}
	if v := x.vec(3); len(v) != 1 || v[0] != 0 {
		t.Fatalf("unwritten node reads %v", v)
	}
	x.codeRef[4] = 60<<refWordsBits | 21 // runs past the arena's 64 words
	if v := x.vec(4); len(v) != 1 || v[0] != 0 {
		t.Fatalf("out-of-range reference reads %v", v)
	}
	// An absurd arena size in a header is refused, not mapped past the end.
	h := (*mappedHeader)(unsafe.Pointer(&mem[0]))
	h.arenaWords = 1 << 40
	if _, err := Attach(mem, 21, L2, Options{M: 4, Element: Sparse}, 8, false); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("attach with a damaged arena size: %v", err)
	}
}

// Several views insert sparse nodes at once through PrepareInsert/Commit while another
// searches: every node lands with its own code (run with -race).
func TestSparseArenaConcurrentPreparedInserts(t *testing.T) {
	const words, dims, n = 101, 400, 1200
	data := sparseCodes(n, words, dims, 50, 11)
	opts := Options{M: 8, EfConstruction: 40, Seed: 5, Element: Sparse, ArenaWords: int64(n) * 60}
	mem := alignedBytes(MappedSize(words, InnerProduct, opts, n))
	views := make([]*Index, 3)
	for i := range views {
		x, err := Attach(mem, words, InnerProduct, opts, n, i == 0)
		if err != nil {
			t.Fatal(err)
		}
		views[i] = x
	}
	var next, nextID atomic.Int64
	var done atomic.Bool
	var wg, searchers sync.WaitGroup
	rowOf := make([]int, n)
	for g := range 3 {
		x := views[g%2]
		wg.Go(func() {
			for {
				row := int(next.Add(1) - 1)
				if row >= n {
					return
				}
				p, err := x.PrepareInsert(data[row], uint64(row))
				if err != nil {
					t.Error(err)
					return
				}
				id := uint32(nextID.Add(1) - 1)
				rowOf[id] = row
				if _, err := p.Commit(id); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	searchers.Go(func() {
		for q := 0; !done.Load(); q++ {
			for _, r := range views[2].Search(data[q%n], 5, 20) {
				if !views[2].Contains(r.ID) {
					t.Errorf("search returned %d, not published", r.ID)
				}
			}
		}
	})
	wg.Wait()
	done.Store(true)
	searchers.Wait()
	for id := range uint32(n) {
		got, want := views[2].Vector(id), data[rowOf[id]]
		for k := range want {
			if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
				t.Fatalf("node %d word %d: %v, inserted %v", id, k, got[k], want[k])
			}
		}
	}
}

// An empty sparse code (no non-zeros: one word compact) is a point like any other under L2,
// and under inner product and cosine the dense-query traversal (sparsequery.go) reports the
// merge kernel's distances to the bit.
func TestSparseEmptyCodeAndDenseQueryBits(t *testing.T) {
	const words, dims = 41, 40
	for _, metric := range []Metric{L2, InnerProduct, Cosine} {
		opts := Options{M: 4, Seed: 1, Element: Sparse, ArenaWords: 4000}
		mem := alignedBytes(MappedSize(words, metric, opts, 300))
		x, err := Attach(mem, words, metric, opts, 300, true)
		if err != nil {
			t.Fatal(err)
		}
		data := sparseCodes(250, words, dims, 12, uint64(metric)+40)
		for i, v := range data {
			if err := x.Add(uint32(i), v); err != nil {
				t.Fatal(err)
			}
		}
		empty := make([]float32, words)
		if metric == L2 {
			if err := x.Add(250, empty); err != nil {
				t.Fatalf("empty code under l2: %v", err)
			}
			if got := x.Search(empty, 1, 40); len(got) != 1 || got[0].ID != 250 || got[0].Distance != 0 {
				t.Fatalf("search for the empty code: %v", got)
			}
			continue
		}
		if err := x.Add(250, empty); err == nil && metric == Cosine {
			t.Fatal("an empty code under cosine was accepted")
		}
		for q := range 20 {
			qv := sparseCodes(1, words, dims, 12, uint64(1000+q))[0]
			if metric == Cosine { // in stored form, as the search makes it
				norm2, _ := x.checkCode(qv)
				x.storeCode(qv, append([]float32(nil), qv...), norm2)
			}
			x.grow.RLock()
			for _, r := range x.Search(qv, 10, 100) {
				want := x.reported(x.distance(qv, x.vec(r.ID)))
				if math.Float32bits(r.Distance) != math.Float32bits(want) {
					t.Fatalf("%v query %d id %d: %v, merge kernel %v", metric, q, r.ID, r.Distance, want)
				}
			}
			x.grow.RUnlock()
		}
	}
}
