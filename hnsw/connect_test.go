package hnsw

import (
	"slices"
	"testing"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
)

// clusteredGraph builds a single-threaded graph of n clustered vectors (the
// data shape of the SQL tests).
func clusteredGraph(t *testing.T, n, dims int, metric Metric, seed uint64) *Index {
	t.Helper()
	x, err := New(dims, metric, Options{M: 16, EfConstruction: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hnswtest.Clustered(n, dims, 30, seed) {
		if err := x.Add(uint32(k), v); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// unreachable counts live elements no path from the entry point reaches, as
// the SQL checker does.
func unreachable(x *Index) int {
	entry, _, ok := x.EntryPoint()
	if !ok {
		return 0
	}
	seen := make([]bool, x.IDLimit())
	stack := []uint32{entry}
	seen[entry] = true
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for l := 0; l <= x.Level(cur); l++ {
			for _, e := range x.Neighbors(cur, l) {
				if !seen[e] {
					seen[e] = true
					stack = append(stack, e)
				}
			}
		}
	}
	n := 0
	for id := range x.IDLimit() {
		if x.Contains(id) && !x.IsDeleted(id) && !seen[id] {
			n++
		}
	}
	return n
}

func TestConnectAllLinksEveryOrphan(t *testing.T) {
	for _, c := range []struct {
		name    string
		metric  Metric
		n, dims int
	}{{"inner product", InnerProduct, 4000, 32}, {"L2 after deleting 30%", L2, 10000, 64}} {
		t.Run(c.name, func(t *testing.T) {
			x := clusteredGraph(t, c.n, c.dims, c.metric, 4)
			if c.metric == L2 {
				for id := range uint32(c.n) {
					if (id+1)%10 < 3 {
						if _, err := x.DeleteTracked(id); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			before := unreachable(x)
			changed, stopped := x.ConnectAll(nil)
			if stopped {
				t.Fatal("ConnectAll reported a stop nobody asked for")
			}
			if after := unreachable(x); after != 0 {
				t.Fatalf("%d of the %d unreachable elements are still unreachable", after, before)
			}
			t.Logf("%d unreachable before, %d lists changed", before, len(changed))
			if before == 0 || len(changed) == 0 {
				t.Fatalf("the data left %d orphans and %d lists changed: the case proves nothing", before, len(changed))
			}
			// Every reported list is a real layer-0 list within capacity.
			for _, id := range changed {
				if l := x.Neighbors(id, 0); l == nil || len(l) > x.m0 {
					t.Fatalf("changed element %d has list %v", id, l)
				}
			}
		})
	}
}

func TestConnectAllStops(t *testing.T) {
	x := clusteredGraph(t, 4000, 32, InnerProduct, 4)
	before := unreachable(x)
	if before < 20 {
		t.Fatalf("setup: this data should leave more than 16 orphans to link, not %d", before)
	}
	polls := 0
	changed, stopped := x.ConnectAll(func() bool { polls++; return true })
	if !stopped || polls != 1 || len(changed) != 0 || unreachable(x) != before {
		t.Fatalf("stop ignored: stopped=%v polls=%d changed=%v", stopped, polls, changed)
	}
	// Stopping after the first 16 links keeps what was linked and reports it.
	polls = 0
	changed, stopped = x.ConnectAll(func() bool { polls++; return polls > 1 })
	if left := unreachable(x); !stopped || len(changed) == 0 || left >= before || left == 0 {
		t.Fatalf("second run: stopped=%v changed=%d unreachable %d (was %d)", stopped, len(changed), unreachable(x), before)
	}
}

func TestConnectAllEmpty(t *testing.T) {
	x, err := New(4, L2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if changed, stopped := x.ConnectAll(nil); changed != nil || stopped {
		t.Fatalf("empty graph: %v %v", changed, stopped)
	}
}

func TestReconnectRelinksADroppedElement(t *testing.T) {
	x := clusteredGraph(t, 2000, 16, L2, 6)
	// Cut every edge into element 7 by hand, as a pruned insert could.
	for id := range x.IDLimit() {
		for l := 0; l <= x.Level(id); l++ {
			list := x.Neighbors(id, l)
			kept := list[:0]
			for _, e := range list {
				if e != 7 {
					kept = append(kept, e)
				}
			}
			if err := x.SetNeighbors(id, l, kept); err != nil {
				t.Fatal(err)
			}
		}
	}
	if e, _, _ := x.EntryPoint(); e == 7 || unreachable(x) == 0 {
		t.Fatalf("setup: element 7 should be unreachable (entry %d)", e)
	}
	// 8 is reachable and 99999 absent: neither may change anything.
	changed, err := x.Reconnect([]uint32{7, 8, 99999})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || unreachable(x) != 0 {
		t.Fatalf("Reconnect changed %v, %d still unreachable", changed, unreachable(x))
	}
	if r := x.Search(x.Vector(7), 1, 64); len(r) != 1 || r[0].ID != 7 {
		t.Fatalf("element 7 still not found by its own vector: %v", r)
	}
}

func TestReconnectFullListsReplaceASharedEntry(t *testing.T) {
	// M = 2 fills every layer-0 list (capacity 4) at once: the orphan must
	// replace an entry that another candidate also links to.
	data := clustered(600, 8, 5, 9)
	x := build(t, data, L2, Options{M: 2, EfConstruction: 32, Threads: 1})
	const orphan = 11
	for id := range x.IDLimit() {
		for l := 0; l <= x.Level(id); l++ {
			list := x.Neighbors(id, l)
			kept := list[:0]
			for _, e := range list {
				if e != orphan {
					kept = append(kept, e)
				}
			}
			if err := x.SetNeighbors(id, l, kept); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := unreachable(x)
	if e, _, _ := x.EntryPoint(); e == orphan || before == 0 {
		t.Fatalf("setup: %d should be unreachable (entry %d)", orphan, e)
	}
	changed, err := x.Reconnect([]uint32{orphan})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 {
		t.Fatalf("Reconnect changed %v", changed)
	}
	if after := unreachable(x); after >= before {
		t.Fatalf("unreachable %d -> %d", before, after)
	}
}

// cutEdgesInto removes id from every list except those of keep.
func cutEdgesInto(t *testing.T, x *Index, id uint32, keep ...uint32) {
	t.Helper()
	for from := range x.IDLimit() {
		if slices.Contains(keep, from) {
			continue
		}
		for l := 0; l <= x.Level(from); l++ {
			list := x.Neighbors(from, l)
			kept := list[:0]
			for _, e := range list {
				if e != id {
					kept = append(kept, e)
				}
			}
			if err := x.SetNeighbors(from, l, kept); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestReconnectKeepsAnElementItsNeighboursLinkTo(t *testing.T) {
	x := clusteredGraph(t, 2000, 16, L2, 8)
	x.reconnectSkip = true // the skip is off by default (connect.go): this tests its condition
	const w = 7
	own := x.Neighbors(w, 0)
	n1, n2 := own[0], own[1]
	for _, n := range []uint32{n1, n2} {
		back := x.Neighbors(n, 0)
		if !slices.Contains(back, w) {
			back = append(back[:min(len(back), x.m0-1)], w)
			if err := x.SetNeighbors(n, 0, back); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Only two of w's own neighbours link to it: it keeps its way in, and Reconnect leaves it be.
	cutEdgesInto(t, x, w, n1, n2)
	if !x.linkedBack(w, nil) {
		t.Fatalf("setup: %d and %d should link back to %d", n1, n2, w)
	}
	changed, err := x.Reconnect([]uint32{w})
	if err != nil || len(changed) != 0 {
		t.Fatalf("Reconnect of an element with back links changed %v (%v)", changed, err)
	}
	if r := x.Search(x.Vector(w), 1, 64); len(r) != 1 || r[0].ID != w {
		t.Fatalf("element %d with back links is not found by its own vector: %v", w, r)
	}
	// One back link is not enough (a pair that links only each other is an island), nor is
	// one from an element the same insert dropped.
	if x.linkedBack(w, []uint32{n1}) {
		t.Fatalf("the back link of %d, dropped too, vouched for %d", n1, w)
	}
	cutEdgesInto(t, x, w, n1)
	if x.linkedBack(w, nil) {
		t.Fatalf("one back link (from %d) vouched for %d", n1, w)
	}
	// Without any link it has lost its way in: the search runs and relinks it.
	cutEdgesInto(t, x, w)
	if unreachable(x) == 0 {
		t.Fatalf("setup: %d should now be unreachable", w)
	}
	changed, err = x.Reconnect([]uint32{w})
	if err != nil || len(changed) != 1 || unreachable(x) != 0 {
		t.Fatalf("Reconnect changed %v (%v), %d unreachable", changed, err, unreachable(x))
	}
}
