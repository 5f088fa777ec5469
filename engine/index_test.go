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
