package hnsw

import (
	"errors"
	"math"
	"testing"
)

func TestBadVectorsAreTypedErrors(t *testing.T) {
	x, err := New(3, Cosine, Options{})
	if err != nil {
		t.Fatal(err)
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name string
		vec  []float32
		want error
	}{
		{"short", []float32{1, 2}, ErrDimensionMismatch},
		{"long", []float32{1, 2, 3, 4}, ErrDimensionMismatch},
		{"nan", []float32{1, nan, 3}, ErrNonFinite},
		{"inf", []float32{-inf, 0, 0}, ErrNonFinite},
		{"zero under cosine", []float32{0, 0, 0}, ErrZeroVector},
	}
	for _, c := range cases {
		if err := x.Add(1, c.vec); !errors.Is(err, c.want) {
			t.Errorf("Add %s: %v, want %v", c.name, err, c.want)
		}
		if _, err := x.SearchInto(nil, c.vec, 1, 10); !errors.Is(err, c.want) {
			t.Errorf("Search %s: %v, want %v", c.name, err, c.want)
		}
		if _, err := x.NewIterator(c.vec, SearchOptions{}); !errors.Is(err, c.want) {
			t.Errorf("NewIterator %s: %v, want %v", c.name, err, c.want)
		}
	}
	var de *DimensionError
	if err := x.Add(1, []float32{1}); !errors.As(err, &de) || de.Got != 1 || de.Want != 3 {
		t.Errorf("DimensionError = %+v", de)
	}
	if x.Len() != 0 {
		t.Fatalf("failed adds left %d nodes", x.Len())
	}
	// A zero vector is fine under L2 and inner product.
	y, _ := New(3, L2, Options{})
	if err := y.Add(0, []float32{0, 0, 0}); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicateIDsAreRejectedAndLeaveTheGraphUnchanged(t *testing.T) {
	x, _ := New(2, L2, Options{M: 4})
	if err := x.Add(1, []float32{1, 1}); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(1, []float32{5, 5}); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("duplicate Add: %v, want ErrDuplicateID", err)
	}
	if v := x.Vector(1); v[0] != 1 || x.Len() != 1 {
		t.Fatalf("duplicate changed the node: %v, len %d", v, x.Len())
	}
	// In a batch: nothing is added when any id repeats or already exists.
	err := x.AddBatch([]uint32{2, 3, 2}, [][]float32{{2, 2}, {3, 3}, {4, 4}})
	if !errors.Is(err, ErrDuplicateID) || x.Len() != 1 {
		t.Fatalf("batch with a repeated id: %v, len %d", err, x.Len())
	}
	err = x.AddBatch([]uint32{2, 1}, [][]float32{{2, 2}, {3, 3}})
	if !errors.Is(err, ErrDuplicateID) || x.Len() != 1 {
		t.Fatalf("batch with an existing id: %v, len %d", err, x.Len())
	}
	err = x.AddBatch([]uint32{2, 3}, [][]float32{{2, 2}, {3}})
	if !errors.Is(err, ErrDimensionMismatch) || x.Len() != 1 {
		t.Fatalf("batch with a bad vector: %v, len %d", err, x.Len())
	}
}

func TestIDsAboveMaxIDAreRejected(t *testing.T) {
	x, _ := New(2, L2, Options{})
	if err := x.Add(MaxID+1, []float32{1, 2}); !errors.Is(err, ErrIDOutOfRange) {
		t.Fatalf("Add(MaxID+1): %v", err)
	}
	if err := x.AddBatch([]uint32{MaxID + 1}, [][]float32{{1, 2}}); !errors.Is(err, ErrIDOutOfRange) {
		t.Fatalf("AddBatch(MaxID+1): %v", err)
	}
	if err := x.Restore(0, 0, []float32{1, 2}, [][]uint32{{MaxID + 1}}); !errors.Is(err, ErrInvalidGraph) {
		t.Fatalf("Restore linking past MaxID: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, c := range []struct {
		dims int
		m    Metric
		o    Options
	}{
		{0, L2, Options{}}, {4, 0, Options{}}, {4, 9, Options{}}, {4, L2, Options{M: 1}},
		{4, L2, Options{EfConstruction: -1}}, {4, L2, Options{Threads: -2}},
	} {
		if _, err := New(c.dims, c.m, c.o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New(%d, %v, %+v) = %v, want ErrInvalidOptions", c.dims, c.m, c.o, err)
		}
	}
}

func TestMemoryLimitRefusesBuild(t *testing.T) {
	need := EstimateMemory(100000, 128, 16)
	if need < 100000*128*4 {
		t.Fatalf("estimate %d is below the raw vector size", need)
	}
	x, _ := New(128, L2, Options{M: 16, MemoryLimit: need / 2})
	err := x.Reserve(100000)
	var me *MemoryError
	if !errors.Is(err, ErrOutOfMemory) || !errors.As(err, &me) || me.NeedBytes != need {
		t.Fatalf("Reserve over the limit: %v", err)
	}
	if err := x.Add(99999, make([]float32, 128)); !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("Add past the limit: %v", err)
	}
	if err := x.Reserve(1000); err != nil {
		t.Fatalf("Reserve within the limit: %v", err)
	}
}
