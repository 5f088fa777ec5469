package main

import (
	"math/rand/v2"
	"testing"

	"github.com/borealisdb/borealis/hnsw"
)

// clusteredIndex builds an index of n clustered vectors (the data shape of the SQL tests).
func clusteredIndex(t *testing.T, n, dims int, metric hnsw.Metric, seed uint64) *hnsw.Index {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	centres := make([][]float32, 30)
	for c := range centres {
		centres[c] = make([]float32, dims)
		for i := range centres[c] {
			centres[c][i] = float32(r.NormFloat64())
		}
	}
	x, err := hnsw.New(dims, metric, hnsw.Options{M: 16, EfConstruction: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for k := range n {
		c := centres[r.IntN(len(centres))]
		v := make([]float32, dims)
		for i := range v {
			v[i] = c[i] + float32(0.35*r.NormFloat64())
		}
		if err := x.Add(uint32(k), v); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// unreachable counts live elements no path from the entry point reaches, as the SQL checker does.
func unreachable(x *hnsw.Index) int {
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
		metric  hnsw.Metric
		n, dims int
	}{{"inner product", hnsw.InnerProduct, 4000, 32}, {"L2 after deleting 30%", hnsw.L2, 10000, 64}} {
		t.Run(c.name, func(t *testing.T) {
			x := clusteredIndex(t, c.n, c.dims, c.metric, 4)
			if c.metric == hnsw.L2 {
				for id := range uint32(c.n) {
					if (id+1)%10 < 3 {
						if _, err := x.DeleteTracked(id); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			before := unreachable(x)
			changed, stopped := connectAll(x)
			if stopped {
				t.Fatal("connectAll reported an interrupt with no PostgreSQL around")
			}
			if after := unreachable(x); after != 0 {
				t.Fatalf("%d of the %d unreachable elements are still unreachable", after, before)
			}
			t.Logf("%d unreachable before, %d lists changed", before, len(changed))
			if before == 0 || len(changed) == 0 {
				t.Fatalf("the data left %d orphans and %d lists changed: the case proves nothing", before, len(changed))
			}
		})
	}
}

func TestConnectAllStopsOnInterrupt(t *testing.T) {
	x := clusteredIndex(t, 2000, 16, hnsw.InnerProduct, 5)
	if unreachable(x) == 0 {
		t.Fatal("setup: this data should leave orphans to link")
	}
	isInterrupted = func() bool { return true }
	defer func() { isInterrupted = interrupted }()
	if _, stopped := connectAll(x); !stopped {
		t.Fatal("connectAll ignored a pending interrupt")
	}
}

func TestReconnectRelinksADroppedElement(t *testing.T) {
	x := clusteredIndex(t, 2000, 16, hnsw.L2, 6)
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
	changed, err := reconnect(x, []uint32{7, 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || unreachable(x) != 0 {
		t.Fatalf("reconnect changed %v, %d still unreachable", changed, unreachable(x))
	}
}

func TestCheckVectorNamesTheProblem(t *testing.T) {
	nan := float32(0)
	nan /= nan
	for _, c := range []struct {
		vec    []float32
		metric hnsw.Metric
		want   string
	}{
		{[]float32{1, nan}, hnsw.L2, "vector has a NaN or infinite component"},
		{[]float32{0, 0}, hnsw.Cosine, "vector is a zero vector, which has no cosine distance"},
		{[]float32{0, 0}, hnsw.L2, ""},
	} {
		err := checkVector(c.vec, c.metric)
		if (err == nil) != (c.want == "") || err != nil && err.Error() != c.want {
			t.Errorf("checkVector(%v, %v) = %v, want %q", c.vec, c.metric, err, c.want)
		}
	}
}

func TestFillSlotsUsesThePageLayout(t *testing.T) {
	x := clusteredIndex(t, 300, 8, hnsw.L2, 7)
	m := x.Options().M
	for id := range x.IDLimit() {
		level := x.Level(id)
		slots := make([]uint32, 2*m+level*m)
		fillSlots(x, id, slots)
		pos := 0
		for l := 0; l <= level; l++ {
			capacity := m
			if l == 0 {
				capacity = 2 * m
			}
			want := x.Neighbors(id, l)
			for i := range capacity {
				if i < len(want) && slots[pos+i] != want[i] || i >= len(want) && slots[pos+i] != noNeighbor {
					t.Fatalf("element %d layer %d slot %d = %d, want %v then empty", id, l, i, slots[pos+i], want)
				}
			}
			pos += capacity
		}
	}
}
