package hnsw

import (
	"slices"
	"testing"
)

// buildQuant builds data on an int8 index, with inserts searching in int8 (quant) or in
// float32, single-threaded so the two graphs differ only by that.
func buildQuant(t *testing.T, data [][]float32, metric Metric, quant bool) *Index {
	t.Helper()
	x, err := New(len(data[0]), metric, Options{M: 16, EfConstruction: 64, Seed: 1, Threads: 1, QuantizedSearch: true})
	if err != nil {
		t.Fatal(err)
	}
	x.noQuantBuild = !quant
	for i, v := range data {
		if err := x.Add(uint32(i), v); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func sameLayer0(a, b *Index) bool {
	for id := range a.IDLimit() {
		if !slices.Equal(a.Neighbors(id, 0), b.Neighbors(id, 0)) {
			return false
		}
	}
	return true
}

// Int8 construction decides only which nodes an insert's search visits; neighbour selection
// uses exact distances. Recall must stay within 0.01 of the float32-built graph at every ef,
// on real data (MNIST, L2: the approximation's norm terms) and on clustered cosine data.
func TestInt8ConstructionKeepsRecall(t *testing.T) {
	for _, c := range []struct {
		name            string
		metric          Metric
		base, queries   [][]float32
		minRecallAtEf40 float64
	}{
		{"mnist-3k-l2", L2, loadMNIST(t, "train-images-idx3-ubyte.gz", 3000), loadMNIST(t, "t10k-images-idx3-ubyte.gz", 60), 0.97},
		{"clustered-cosine-256", Cosine, clustered(2000, 256, 8, 21), clustered(60, 256, 8, 22), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := buildQuant(t, c.base, c.metric, false)
			q := buildQuant(t, c.base, c.metric, true)
			if sameLayer0(f, q) {
				t.Fatal("the int8-built graph is the float32-built one: inserts did not search with int8 codes")
			}
			truth := make([][]uint32, len(c.queries))
			for i, qv := range c.queries {
				truth[i] = bruteForce(f, c.base, nil, qv, 10)
			}
			for _, ef := range []int{10, 20, 40} {
				rf, rq := recallWith(t, f, c.queries, truth, ef), recallWith(t, q, c.queries, truth, ef)
				t.Logf("ef %d: recall@10 float32-built %.4f, int8-built %.4f", ef, rf, rq)
				if rq < rf-0.01 {
					t.Errorf("ef %d: int8-built recall %.4f < float32-built %.4f - 0.01", ef, rq, rf)
				}
				if ef == 40 && rq < c.minRecallAtEf40 {
					t.Errorf("ef 40: int8-built recall %.4f < %.2f", rq, c.minRecallAtEf40)
				}
			}
		})
	}
}

// recallWith is recall@len(truth[i]) of x's searches at ef against precomputed truth.
func recallWith(t *testing.T, x *Index, queries [][]float32, truth [][]uint32, ef int) float64 {
	t.Helper()
	hit, total := 0, 0
	for i, q := range queries {
		got, err := x.SearchInto(nil, q, len(truth[i]), ef)
		if err != nil {
			t.Fatal(err)
		}
		hit += found(truth[i], got)
		total += len(truth[i])
	}
	return float64(hit) / float64(total)
}

// An insert searches for its own node with the codes stored for it: the same bytes, scale
// and norm quantizeQuery computes from its vector.
func TestOwnCodesAreTheQueryCodes(t *testing.T) {
	for _, metric := range []Metric{L2, Cosine, InnerProduct} {
		data := clustered(50, 96, 3, 4)
		x := buildQuant(t, data, metric, true)
		a, b := x.pool.get(), x.pool.get()
		for id := range uint32(len(data)) {
			x.ownCodesAsQuery(a, id)
			x.quantizeQuery(b, x.vec(id))
			if !slices.Equal(a.qcodes, b.qcodes) || a.qscale != b.qscale || a.qnorm2 != b.qnorm2 {
				t.Fatalf("%v node %d: stored codes differ from the query's", metric, id)
			}
		}
	}
}
