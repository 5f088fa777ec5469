package main

import (
	"math"
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
	halfNaN := math.Float32frombits(0x3C00_7E00) // binary16 NaN, then 1.0
	for _, c := range []struct {
		vec    []float32
		metric hnsw.Metric
		elem   hnsw.Element
		want   string
	}{
		{[]float32{1, nan}, hnsw.L2, hnsw.Float32, "vector has a NaN or infinite component"},
		{[]float32{0, 0}, hnsw.Cosine, hnsw.Float32, "vector is a zero vector, which has no cosine distance"},
		{[]float32{0, 0}, hnsw.L2, hnsw.Float32, ""},
		{[]float32{halfNaN, 0}, hnsw.L2, hnsw.Half, "vector has a NaN or infinite component"},
		{[]float32{0, 0}, hnsw.Cosine, hnsw.Half, "vector is a zero vector, which has no cosine distance"},
		{[]float32{nan, 0}, hnsw.Hamming, hnsw.Bits, ""}, // bit patterns, not floats
		{[]float32{0, 0, 0}, hnsw.Cosine, hnsw.Sparse, "vector is a zero vector, which has no cosine distance"},
		{[]float32{math.Float32frombits(1), math.Float32frombits(2), nan}, hnsw.L1, hnsw.Sparse, "vector has a NaN or infinite component"},
	} {
		x, err := hnsw.New(len(c.vec), c.metric, hnsw.Options{Element: c.elem})
		if err != nil {
			t.Fatal(err)
		}
		err = checkVector(x, c.vec)
		if (err == nil) != (c.want == "") || err != nil && err.Error() != c.want {
			t.Errorf("checkVector(%v %v, %v) = %v, want %q", c.elem, c.metric, c.vec, err, c.want)
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
