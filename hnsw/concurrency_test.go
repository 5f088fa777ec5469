package hnsw

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Parallel build plus concurrent searches, inserts and deletes; run with -race.
func TestConcurrentBuildSearchDelete(t *testing.T) {
	n := 4000
	if testing.Short() || raceEnabled {
		n = 1500
	}
	all := clustered(n+100, 16, 8, 31)
	data, queries := all[:n], all[n:]
	x, err := New(16, Cosine, Options{M: 8, EfConstruction: 48, Seed: 1, Threads: 4})
	if err != nil {
		t.Fatal(err)
	}
	half := n / 2
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	if err := x.AddBatch(ids[:half], data[:half]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	// Second half in parallel (4 goroutines inside AddBatch) ...
	wg.Go(func() {
		if err := x.AddBatch(ids[half:], data[half:]); err != nil {
			errs <- err
		}
	})
	// ... while other goroutines search, iterate and delete.
	for g := range 2 {
		wg.Go(func() {
			dst := make([]Result, 0, 10)
			for i, q := range queries {
				var err error
				if dst, err = x.SearchInto(dst[:0], q, 10, 32); err != nil {
					errs <- err
					return
				}
				if i%10 == g {
					it, _ := x.NewIterator(q, SearchOptions{Ef: 8})
					for range 30 {
						it.Next()
					}
					it.Close()
				}
			}
		})
	}
	wg.Go(func() {
		for id := uint32(0); id < uint32(half); id += 10 {
			if err := x.Delete(id); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if x.Len() != n || x.Live() != n-half/10 {
		t.Fatalf("Len %d Live %d, want %d and %d", x.Len(), x.Live(), n, n-half/10)
	}
	r := recallAt(t, x, data, queries, func(i int) bool { return i >= half || i%10 != 0 }, 10, 64)
	t.Logf("recall@10 after concurrent build/delete: %.4f", r)
	if r < 0.95 {
		t.Fatalf("recall@10 = %.4f after a concurrent build", r)
	}
}

// Growth (storage reallocation) while searching: Add ids in ascending order
// from several goroutines, each beyond the current capacity.
func TestConcurrentAddWithGrowth(t *testing.T) {
	data := clustered(3000, 8, 4, 32)
	x, _ := New(8, L2, Options{M: 4, Seed: 1})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := g; i < len(data); i += 3 {
				if err := x.Add(uint32(i), data[i]); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					x.Search(data[i], 5, 16)
				}
			}
		})
	}
	wg.Wait()
	if x.Len() != len(data) {
		t.Fatalf("Len = %d", x.Len())
	}
	if got := x.Search(data[123], 1, 32); len(got) != 1 || got[0].ID != 123 {
		t.Fatalf("search for an added vector: %v", got)
	}
}

// A search running while a node is inserted must not reach it through an upper layer before
// its layer-0 list is written: it would descend into an empty list and return nothing (the
// scans that returned no rows during inserts). The searcher queries the very vector being
// inserted, so its descent passes through the new node whenever that node has upper layers.
func TestSearchDuringInsertFindsResults(t *testing.T) {
	const n, k = 3000, 10
	data := clustered(n, 16, 4, 77)
	x, err := New(16, L2, Options{M: 4, EfConstruction: 32, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := x.Add(uint32(i), data[i]); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg      sync.WaitGroup
		current atomic.Int64
		done    atomic.Bool
		empty   atomic.Int64
		total   atomic.Int64
	)
	current.Store(100)
	wg.Go(func() {
		defer done.Store(true)
		for i := 100; i < n; i++ {
			current.Store(int64(i))
			if err := x.Add(uint32(i), data[i]); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			dst := make([]Result, 0, k)
			for !done.Load() {
				var err error
				dst, err = x.SearchInto(dst[:0], data[current.Load()], k, 16)
				if err != nil {
					t.Error(err)
					return
				}
				total.Add(1)
				if len(dst) < k {
					empty.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if empty.Load() > 0 {
		t.Fatalf("%d of %d searches during inserts returned fewer than %d results", empty.Load(), total.Load(), k)
	}
	t.Logf("%d searches during %d inserts", total.Load(), n-100)
}
