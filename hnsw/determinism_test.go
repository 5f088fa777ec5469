package hnsw

import (
	"slices"
	"testing"
)

// graphsEqual compares everything serialisation would write.
func graphsEqual(t *testing.T, a, b *Index) {
	t.Helper()
	ea, la, oka := a.EntryPoint()
	eb, lb, okb := b.EntryPoint()
	if ea != eb || la != lb || oka != okb {
		t.Fatalf("entry points differ: %d/%d vs %d/%d", ea, la, eb, lb)
	}
	if a.IDLimit() != b.IDLimit() || a.Len() != b.Len() {
		t.Fatalf("sizes differ: %d/%d vs %d/%d", a.IDLimit(), a.Len(), b.IDLimit(), b.Len())
	}
	for id := range a.IDLimit() {
		if a.Level(id) != b.Level(id) || a.IsDeleted(id) != b.IsDeleted(id) {
			t.Fatalf("node %d: level/deleted differ", id)
		}
		if !slices.Equal(a.Vector(id), b.Vector(id)) {
			t.Fatalf("node %d: vectors differ", id)
		}
		for l := 0; l <= a.Level(id); l++ {
			if na, nb := a.Neighbors(id, l), b.Neighbors(id, l); !slices.Equal(na, nb) {
				t.Fatalf("node %d layer %d: %v vs %v", id, l, na, nb)
			}
		}
	}
}

func TestSeededSingleThreadBuildIsDeterministic(t *testing.T) {
	data := clustered(3000, 32, 16, 3)
	a := build(t, data, Cosine, Options{M: 8, EfConstruction: 40, Seed: 42, Threads: 1})
	b := build(t, data, Cosine, Options{M: 8, EfConstruction: 40, Seed: 42, Threads: 1})
	graphsEqual(t, a, b)
	// A different seed changes the levels, so the graph must differ somewhere.
	c := build(t, data, Cosine, Options{M: 8, EfConstruction: 40, Seed: 43, Threads: 1})
	same := true
	for id := range uint32(len(data)) {
		if a.Level(id) != c.Level(id) {
			same = false
			break
		}
	}
	if same {
		t.Fatal("seeds 42 and 43 gave identical levels")
	}
}

func TestLevelDistributionFollowsML(t *testing.T) {
	x, _ := New(4, L2, Options{M: 16, Seed: 9})
	const n = 200000
	above := 0
	for id := range uint32(n) {
		if x.levelOf(id) >= 1 {
			above++
		}
	}
	// P(level ≥ 1) = exp(-1/mL) = 1/M.
	got, want := float64(above)/n, 1.0/16
	if got < want*0.9 || got > want*1.1 {
		t.Fatalf("fraction above layer 0 = %.4f, want ≈ %.4f", got, want)
	}
}
