package ann

import (
	"strings"
	"testing"
)

// The metadata column keeps the advertised share of rows at each selectivity.
func TestCatOfSelectivity(t *testing.T) {
	const n = 200000
	for _, s := range []float64{0.1, 0.01, 0.001} {
		kept := 0
		for id := 0; id < n; id++ {
			if catOf(id) < catLimit(s) {
				kept++
			}
		}
		if got := float64(kept) / n; got < 0.8*s || got > 1.2*s {
			t.Fatalf("selectivity %g keeps %.4f of the rows", s, got)
		}
	}
}

func TestParseSelectivities(t *testing.T) {
	got, err := ParseSelectivities("0.1, 0.01,0.001")
	if err != nil || len(got) != 3 || got[2] != 0.001 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"0", "1.5", "x", "0.0001", "0.1,"} {
		if _, err := ParseSelectivities(bad); err == nil || !strings.Contains(err.Error(), "--filtered") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if iterativeGUC("hnsw.ef_search") != "hnsw.iterative_scan" || iterativeGUC("borealis.ef_search") != "borealis.iterative_scan" {
		t.Fatal("iterative GUC names")
	}
}
