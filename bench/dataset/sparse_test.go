package dataset

import (
	"math"
	"testing"
)

func TestSparseSyntheticShape(t *testing.T) {
	d := SparseSynthetic(2000, 30000, 100, IP, 7)
	again := SparseSynthetic(2000, 30000, 100, IP, 7)
	other := SparseSynthetic(2000, 30000, 100, IP, 8)
	if d.N() != 2000 || d.NQ() != 100 || d.Dim != 30000 || d.Base != nil {
		t.Fatalf("shape: %d base, %d queries, dim %d", d.N(), d.NQ(), d.Dim)
	}
	same, differs := true, false
	for i, v := range d.Sparse.Base {
		n := len(v.Indices)
		if n < sparseMinNNZ || n > sparseMaxNNZ || len(v.Values) != n {
			t.Fatalf("row %d: %d non-zeros", i, n)
		}
		for j := range v.Indices {
			if v.Indices[j] < 0 || v.Indices[j] >= 30000 || j > 0 && v.Indices[j] <= v.Indices[j-1] {
				t.Fatalf("row %d: indices not ascending within the vocabulary: %v", i, v.Indices)
			}
			if !(v.Values[j] > 0) || math.IsInf(float64(v.Values[j]), 0) {
				t.Fatalf("row %d: weight %v", i, v.Values[j])
			}
		}
		w := again.Sparse.Base[i]
		same = same && len(w.Indices) == n && w.Indices[0] == v.Indices[0] && w.Values[n-1] == v.Values[n-1]
		o := other.Sparse.Base[i]
		differs = differs || len(o.Indices) != n || o.Indices[0] != v.Indices[0]
	}
	if !same || !differs {
		t.Fatalf("same seed same data: %v; another seed other data: %v", same, differs)
	}
	// Term popularity is skewed (Zipf head) and the data has neighbourhoods: a query's best
	// base vector scores well above a random one.
	df := map[int32]int{}
	for _, v := range d.Sparse.Base {
		for _, id := range v.Indices {
			df[id]++
		}
	}
	if df[0] < d.N()/4 || len(df) < 3000 {
		t.Fatalf("term 0 in %d of %d vectors, %d distinct terms: not Zipf-like", df[0], d.N(), len(df))
	}
	for q := 0; q < 10; q++ {
		best, sum := 0.0, 0.0
		for _, v := range d.Sparse.Base {
			s := SparseDot(d.Sparse.Queries[q], v)
			best = max(best, s)
			sum += s
		}
		if best < 3*sum/float64(d.N()) {
			t.Fatalf("query %d: best score %.2f, mean %.2f: no neighbourhoods", q, best, sum/float64(d.N()))
		}
	}
}

func TestSparseDistances(t *testing.T) {
	a := SparseVec{Indices: []int32{1, 4, 9}, Values: []float32{1, 2, 3}}
	b := SparseVec{Indices: []int32{0, 4, 9}, Values: []float32{5, 1, -1}}
	if got := SparseDistance(IP, a, b); got != -(2 - 3) {
		t.Fatalf("ip %v", got)
	}
	if got := SparseDistance(L2, a, b); got != 1+25+1+16 {
		t.Fatalf("l2 %v", got)
	}
	want := 1 - (2.0-3)/math.Sqrt(14*27)
	if got := SparseDistance(Cosine, a, b); math.Abs(float64(got)-want) > 1e-6 {
		t.Fatalf("cosine %v want %v", got, want)
	}
	m := Midpoint(a, b)
	if len(m.Indices) != 4 || m.Values[0] != 2.5 || m.Values[2] != 1.5 || m.Values[3] != 1 {
		t.Fatalf("midpoint %+v", m)
	}
	if _, err := Open("sparse:10:20", Options{}); err == nil {
		t.Fatal("a vocabulary smaller than the non-zeros was accepted")
	}
	if d, err := Open("sparse:10:30000:cosine", Options{Queries: 3}); err != nil || d.Metric != Cosine || d.NQ() != 3 {
		t.Fatalf("open: %v", err)
	}
}
