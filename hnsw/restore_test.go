package hnsw

import (
	"errors"
	"slices"
	"testing"
)

// rebuild copies x through the page-facing accessors into a fresh index,
// the way a backend rebuilds its cache from pages.
func rebuild(t *testing.T, x *Index) *Index {
	t.Helper()
	o := x.Options()
	y, err := New(x.Dims(), x.Metric(), Options{M: o.M, EfConstruction: o.EfConstruction, Seed: o.Seed})
	if err != nil {
		t.Fatal(err)
	}
	for id := range x.IDLimit() {
		if !x.Contains(id) {
			continue
		}
		lvl := x.Level(id)
		lists := make([][]uint32, lvl+1)
		for l := range lists {
			lists[l] = x.Neighbors(id, l)
		}
		if err := y.Restore(id, lvl, x.Vector(id), lists); err != nil {
			t.Fatal(err)
		}
		if x.IsDeleted(id) {
			if err := y.MarkDeleted(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	ep, lvl, _ := x.EntryPoint()
	if err := y.SetEntryPoint(ep, lvl); err != nil {
		t.Fatal(err)
	}
	return y
}

func TestRestoreRebuildsTheSameGraph(t *testing.T) {
	data := clustered(2000, 16, 8, 21)
	x := build(t, data, Cosine, Options{M: 6, Seed: 8})
	for id := uint32(0); id < 2000; id += 5 {
		if err := x.Delete(id); err != nil {
			t.Fatal(err)
		}
	}
	y := rebuild(t, x)
	graphsEqual(t, x, y)
	if y.Live() != x.Live() {
		t.Fatalf("live %d vs %d", y.Live(), x.Live())
	}
}

// AddTracked must report exactly the nodes whose lists changed, so that
// rewriting only those keeps a page mirror identical to the graph.
func TestAddTrackedReportsExactlyTheChangedLists(t *testing.T) {
	data := clustered(1200, 16, 8, 22)
	x := build(t, data[:1000], L2, Options{M: 4, Seed: 9, Threads: 1})
	mirror := rebuild(t, x)
	for i := 1000; i < 1200; i++ {
		changed, err := x.AddTracked(uint32(i), data[i])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(changed, uint32(i)) {
			t.Fatalf("AddTracked(%d) did not report the new node", i)
		}
		if i%2 == 0 {
			del, err := x.DeleteTracked(uint32(i - 500))
			if err != nil {
				t.Fatal(err)
			}
			changed = append(changed, del...)
			if err := mirror.MarkDeleted(uint32(i - 500)); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range changed {
			if id == uint32(i) {
				lists := make([][]uint32, x.Level(id)+1)
				for l := range lists {
					lists[l] = x.Neighbors(id, l)
				}
				if err := mirror.Restore(id, x.Level(id), x.Vector(id), lists); err != nil {
					t.Fatal(err)
				}
				continue
			}
			for l := 0; l <= x.Level(id); l++ {
				if err := mirror.SetNeighbors(id, l, x.Neighbors(id, l)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	ep, lvl, _ := x.EntryPoint()
	if err := mirror.SetEntryPoint(ep, lvl); err != nil {
		t.Fatal(err)
	}
	graphsEqual(t, x, mirror)
}

func TestRestoreValidates(t *testing.T) {
	x, _ := New(2, L2, Options{M: 2})
	v := []float32{1, 2}
	if err := x.Restore(0, 0, v, [][]uint32{{0}}); !errors.Is(err, ErrInvalidGraph) {
		t.Errorf("self-loop: %v", err)
	}
	if err := x.Restore(0, 0, v, [][]uint32{{1, 2, 3, 4, 5}}); !errors.Is(err, ErrInvalidGraph) {
		t.Errorf("over capacity: %v", err)
	}
	if err := x.Restore(0, 0, v, [][]uint32{{1}, {1}}); !errors.Is(err, ErrInvalidGraph) {
		t.Errorf("layers above level: %v", err)
	}
	if err := x.Restore(0, 1, v, [][]uint32{{1}, {1}}); err != nil {
		t.Fatal(err)
	}
	if err := x.Restore(0, 0, v, nil); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("restore twice: %v", err)
	}
	if err := x.SetNeighbors(0, 2, nil); !errors.Is(err, ErrInvalidGraph) {
		t.Errorf("SetNeighbors above level: %v", err)
	}
	if err := x.SetNeighbors(9, 0, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetNeighbors on unknown id: %v", err)
	}
	if err := x.SetEntryPoint(0, 0); !errors.Is(err, ErrInvalidGraph) {
		t.Errorf("SetEntryPoint with the wrong level: %v", err)
	}
	// Node 1 is referenced but not restored yet: searching must not fail.
	if got := x.Search(v, 3, 10); len(got) != 1 || got[0].ID != 0 {
		t.Fatalf("search on a partly restored graph: %v", got)
	}
}
