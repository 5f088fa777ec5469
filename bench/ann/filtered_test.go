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

// --max-scan-tuples reaches each AM's own setting; 0 leaves both at their defaults, and a
// negative value is refused naming the flag.
func TestFilteredSettingsMaxScanTuples(t *testing.T) {
	cfg := Config{IterativeScan: "strict_order"}
	got := strings.Join(filteredSettings(IndexSpec{AM: "hnsw", GUC: "hnsw.ef_search"}, &cfg), "; ")
	if strings.Contains(got, "max_scan_tuples") || !strings.Contains(got, "SET hnsw.iterative_scan = strict_order") {
		t.Fatalf("default settings: %s", got)
	}
	cfg.MaxScanTuples = 200000
	for am, want := range map[string]string{"hnsw:hnsw.ef_search": "SET hnsw.max_scan_tuples = 200000",
		"borealis_hnsw:borealis.ef_search": "SET borealis.max_scan_tuples = 200000"} {
		ix, err := ParseIndexSpec(am)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(filteredSettings(ix, &cfg), "; "); !strings.Contains(got, want) {
			t.Fatalf("%s: %s, want %s", am, got, want)
		}
	}
	if maxScanText(0) == maxScanText(200000) || !strings.Contains(maxScanText(200000), "200000") {
		t.Fatal("the report must say which max_scan_tuples ran")
	}
	bad := Config{Datasets: []string{"synthetic:100:4"}, Indexes: []IndexSpec{{AM: "hnsw", GUC: "hnsw.ef_search"}}, MaxScanTuples: -1}
	bad.Defaults()
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--max-scan-tuples") {
		t.Fatalf("negative max_scan_tuples: %v", err)
	}
}
