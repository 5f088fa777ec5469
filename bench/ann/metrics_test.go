package ann

import (
	"math"
	"testing"
	"time"
)

func TestRecall(t *testing.T) {
	for _, tc := range []struct {
		name     string
		k        int
		returned []float32
		kth      float32
		want     float64
	}{
		{"all found", 3, []float32{1, 2, 3}, 3, 1},
		{"one miss", 4, []float32{1, 2, 3, 9}, 4, 0.75},
		{"short answer", 4, []float32{1, 2}, 4, 0.5},
		{"empty answer", 2, nil, 1, 0},
		{"tie at k-th counts", 2, []float32{1, 2}, 2, 1},
		{"float noise at k-th counts", 2, []float32{1, 2.000001}, 2, 1},
		{"extra rows ignored", 2, []float32{1, 2, 3}, 2, 1},
		{"negative inner-product distances", 2, []float32{-10, -9}, -9, 1},
		{"negative, one too far", 2, []float32{-10, -8}, -9, 0.5},
	} {
		if got := Recall(tc.k, tc.returned, tc.kth); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: recall %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if p := Percentile(lat, 50); p != 50*time.Millisecond {
		t.Errorf("p50 %v", p)
	}
	if p := Percentile(lat, 99); p != 99*time.Millisecond {
		t.Errorf("p99 %v", p)
	}
	if p := Percentile(lat, 100); p != 100*time.Millisecond {
		t.Errorf("p100 %v", p)
	}
	if lat[0] != 100*time.Millisecond {
		t.Error("Percentile reordered its input")
	}
}

func TestQPSAtRecall(t *testing.T) {
	curve := []CurvePoint{{0.80, 1000}, {0.90, 800}, {0.96, 500}, {0.99, 200}}
	for _, tc := range []struct {
		r     float64
		qps   float64
		bound Bound
	}{
		{0.90, 800, Interpolated},
		{0.95, 550, Interpolated}, // 800 + (0.05/0.06)*(500-800)
		{0.99, 200, Interpolated},
		{0.995, 0, Unreached},
		{0.50, 1000, AtLeast},
	} {
		qps, b := QPSAtRecall(curve, tc.r)
		if b != tc.bound || math.Abs(qps-tc.qps) > 1e-6 {
			t.Errorf("r=%v: %v %v, want %v %v", tc.r, qps, b, tc.qps, tc.bound)
		}
	}
	// A dominated point (less recall and slower than another) does not drag the curve down.
	noisy := []CurvePoint{{0.90, 300}, {0.92, 700}, {0.99, 100}}
	if qps, _ := QPSAtRecall(noisy, 0.90); qps != 700 {
		t.Errorf("dominated point used: %v", qps)
	}
	if _, b := QPSAtRecall(nil, 0.9); b != Unreached {
		t.Error("empty curve reached a recall")
	}
}

func TestParseFlags(t *testing.T) {
	if s, err := ParseIndexSpec("borealis_hnsw:borealis.ef_search"); err != nil || s.AM != "borealis_hnsw" || s.GUC != "borealis.ef_search" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"hnsw", "hnsw:", ":x", "hnsw;drop:x", "HNSW:x", "hnsw:a.b.c"} {
		if _, err := ParseIndexSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if efs, err := ParseEfs("10, 20,40"); err != nil || len(efs) != 3 || efs[1] != 20 {
		t.Fatalf("%v %v", efs, err)
	}
	for _, bad := range []string{"", "10,,20", "0", "-5", "ten"} {
		if _, err := ParseEfs(bad); err == nil {
			t.Errorf("--ef %q accepted", bad)
		}
	}
	c := Config{Datasets: []string{"synthetic:10:2"}, Indexes: []IndexSpec{{"hnsw", "hnsw.ef_search"}}, MaintenanceWorkMem: "lots"}
	c.Defaults()
	if err := c.Validate(); err == nil {
		t.Error("bad maintenance_work_mem accepted")
	}
	c.MaintenanceWorkMem = "64MB"
	c.Indexes = append(c.Indexes, IndexSpec{"hnsw", "x"})
	if err := c.Validate(); err == nil {
		t.Error("same index twice accepted")
	}
}
