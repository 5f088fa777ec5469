package hnsw

import "testing"

func TestRecallClusteredAllMetrics(t *testing.T) {
	// Queries come from the same distribution but are not in the base set.
	all := clustered(20200, 128, 64, 1)
	data, queries := all[:20000], all[20000:]
	for _, m := range []Metric{L2, Cosine, InnerProduct} {
		t.Run(m.String(), func(t *testing.T) {
			if m != L2 && testing.Short() {
				t.Skip("short")
			}
			x := build(t, data, m, Options{M: 16, EfConstruction: 64, Seed: 7})
			r := recallAt(t, x, data, queries, nil, 10, 64)
			t.Logf("%s recall@10 ef=64: %.4f", m, r)
			if r < 0.95 {
				t.Fatalf("recall@10 = %.4f, want ≥ 0.95", r)
			}
		})
	}
}

func TestRecallSIFT5k(t *testing.T) {
	base, queries := loadSIFT5k(t)
	// The file has only 3 queries; add 97 held-out base vectors as queries so
	// the recall estimate is not three samples.
	held := base[len(base)-97:]
	base = base[:len(base)-97]
	queries = append(queries, held...)
	x := build(t, base, L2, Options{M: 16, EfConstruction: 64, Seed: 1})
	r := recallAt(t, x, base, queries, nil, 10, 64)
	t.Logf("sift5k recall@10 ef=64: %.4f (%d queries)", r, len(queries))
	if r < 0.95 {
		t.Fatalf("recall@10 = %.4f, want ≥ 0.95", r)
	}
}

func TestRecallMNISTSubset(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	// 10,000 of the 60,000 training images as base, 200 test images as
	// queries; the full set runs in bench/hnsw.
	base := loadMNIST(t, "train-images-idx3-ubyte.gz", 10000)
	queries := loadMNIST(t, "t10k-images-idx3-ubyte.gz", 200)
	x := build(t, base, L2, Options{M: 16, EfConstruction: 64, Seed: 1})
	r := recallAt(t, x, base, queries, nil, 10, 128)
	t.Logf("mnist-10k recall@10 ef=128: %.4f", r)
	if r < 0.97 {
		t.Fatalf("recall@10 = %.4f, want ≥ 0.97", r)
	}
}
