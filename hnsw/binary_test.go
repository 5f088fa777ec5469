package hnsw

import (
	"errors"
	"testing"
)

// Binary quantization traverses by Hamming distance over sign bits and
// rescores with exact float32: results are exact pgvector distances in order,
// and recall climbs with ef to the float32 search's.
func TestBinaryQuantizationExactOrderAndRecall(t *testing.T) {
	all := clustered(5050, 256, 32, 41)
	data, queries := all[:5000], all[5000:]
	for _, m := range []Metric{Cosine, InnerProduct, L2} {
		x := build(t, data, m, Options{M: 16, EfConstruction: 64, Seed: 9, Quantization: QuantBinary})
		if x.Quantization() != QuantBinary || x.Options().QuantizedSearch {
			t.Fatalf("%v: quantization %v, options %+v", m, x.Quantization(), x.Options())
		}
		for _, q := range queries[:20] {
			checkExactSorted(t, m, q, data, x.Search(q, 10, 100))
			// Iterators too, across rounds.
			res := drain(t, x, q, SearchOptions{Ef: 20}, 200)
			checkExactSorted(t, m, q, data, res)
		}
		low, high := recallAt(t, x, data, queries, nil, 10, 40), recallAt(t, x, data, queries, nil, 10, 200)
		t.Logf("%v 5000x256 binary recall@10: ef 40 %.3f, ef 200 %.3f", m, low, high)
		if high < 0.95 || high < low {
			t.Fatalf("%v binary recall@10: ef 40 %.3f, ef 200 %.3f (want ≥ 0.95 at 200)", m, low, high)
		}
	}
}

// A distance bound still holds on a Hamming walk (applied after rescoring).
func TestBinaryQuantizationDistanceBound(t *testing.T) {
	all := clustered(2010, 64, 16, 42)
	data, q := all[:2000], all[2000]
	x := build(t, data, Cosine, Options{M: 12, Seed: 3, Quantization: QuantBinary})
	exact := build(t, data, Cosine, Options{M: 12, Seed: 3})
	ref, _ := exact.SearchWith(nil, q, 50, SearchOptions{Ef: 200})
	bound := ref[20].Distance
	got, err := x.SearchWith(nil, q, 50, SearchOptions{Ef: 200, MaxDistance: bound, UseMaxDistance: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 15 {
		t.Fatalf("bounded binary search found %d within %v", len(got), bound)
	}
	for _, r := range got {
		if r.Distance > bound {
			t.Fatalf("result %v beyond the bound %v", r, bound)
		}
	}
}

func TestQuantizationOptionChecked(t *testing.T) {
	if _, err := New(8, L2, Options{Quantization: 7}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("quantization 7: %v", err)
	}
	x, err := New(8, L2, Options{QuantizedSearch: true})
	if err != nil || x.Quantization() != QuantInt8 {
		t.Fatalf("QuantizedSearch: %v %v", x.Quantization(), err)
	}
	// Mapped graphs refuse to open with another quantization than they were laid out with.
	for _, q := range []Quantization{QuantNone, QuantInt8, QuantBinary} {
		opts := Options{M: 4, Quantization: q}
		mem := alignedBytes(MappedSize(130, Cosine, opts, 64))
		if _, err := Attach(mem, 130, Cosine, opts, 64, true); err != nil {
			t.Fatal(err)
		}
		other := Options{M: 4, Quantization: (q + 1) % 3}
		if _, err := Attach(mem, 130, Cosine, other, 64, false); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v graph opened as %v: %v", q, other.Quantization, err)
		}
	}
}
