package hnsw

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// Several "processes" (Index views over the same mapped memory, each with its own Go-side
// state, as PostgreSQL backends have) insert at once with PrepareInsert/Commit, taking ids
// only after preparing, as the extension does, while others search for the vectors being
// inserted. Every node lands, every search finds k results, and recall holds.
func TestPreparedInsertsFromSeveralViewsAtOnce(t *testing.T) {
	const dims, n, k = 16, 3000, 10
	data := clustered(n, dims, 8, 21)
	opts := Options{M: 8, EfConstruction: 48, Seed: 5}
	mem := alignedBytes(MappedSize(dims, Cosine, opts, n))
	views := make([]*Index, 3)
	for i := range views {
		x, err := Attach(mem, dims, Cosine, opts, n, i == 0)
		if err != nil {
			t.Fatal(err)
		}
		views[i] = x
	}
	var (
		nextRow, nextID atomic.Int64
		current         atomic.Int64
		wg              sync.WaitGroup
		short, searches atomic.Int64
		done            atomic.Bool
	)
	for g := range 4 {
		x := views[g%2]
		wg.Go(func() {
			for {
				row := int(nextRow.Add(1) - 1)
				if row >= n {
					return
				}
				current.Store(int64(row))
				p, err := x.PrepareInsert(data[row], uint64(row))
				if err != nil {
					t.Error(err)
					return
				}
				id := uint32(nextID.Add(1) - 1)
				if _, err := p.Commit(id); err != nil {
					t.Errorf("commit %d: %v", id, err)
					return
				}
			}
		})
	}
	var searchers sync.WaitGroup
	for range 2 {
		searchers.Go(func() {
			x := views[2]
			for !done.Load() {
				if x.Len() < 2*k {
					continue
				}
				res := x.Search(data[current.Load()], k, 32)
				searches.Add(1)
				if len(res) < k {
					short.Add(1)
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	searchers.Wait()
	r := views[2]
	if r.Len() != n {
		t.Fatalf("%d nodes after %d inserts", r.Len(), n)
	}
	if short.Load() > 0 {
		t.Fatalf("%d of %d searches during the inserts returned fewer than %d results", short.Load(), searches.Load(), k)
	}
	// Ids were handed out in commit order, not row order: map them back through the vectors.
	byID := make([][]float32, n)
	for id := range uint32(n) {
		byID[id] = append([]float32(nil), r.Vector(id)...)
	}
	if got := recallAt(t, r, byID, byID[:200], nil, k, 64); got < 0.9 {
		t.Fatalf("recall %.3f after concurrent prepared inserts", got)
	}
	// Past capacity, a prepared insert fails cleanly and leaves the graph as it was.
	p, err := views[0].PrepareInsert(data[0], 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(n); !errors.Is(err, ErrFull) {
		t.Fatalf("commit past capacity: %v, want ErrFull", err)
	}
	if r.Len() != n {
		t.Fatalf("a failed commit changed the graph: %d nodes", r.Len())
	}
	t.Logf("%d searches during the inserts", searches.Load())
}

// A node prepared on an empty graph that another node entered first still gets neighbours.
func TestPreparedInsertOnEmptyGraphRacingAnother(t *testing.T) {
	data := clustered(2, 8, 1, 3)
	x, err := New(8, L2, Options{M: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, err := x.PrepareInsert(data[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := x.PrepareInsert(data[1], 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(0); err != nil {
		t.Fatal(err)
	}
	changed, err := b.Commit(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 || changed[0] != 0 || changed[1] != 1 {
		t.Fatalf("changed %v, want [0 1]: both lists gained the link", changed)
	}
	if got := x.Neighbors(1, 0); len(got) != 1 || got[0] != 0 {
		t.Fatalf("late node's list %v, want [0]", got)
	}
	if _, err := b.Commit(1); err == nil {
		t.Fatal("a prepared insert committed twice")
	}
}
