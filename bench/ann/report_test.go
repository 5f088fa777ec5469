package ann

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestCompareRatios(t *testing.T) {
	cand := IndexResult{Index: IndexSpec{"borealis_hnsw", "borealis.ef_search"}, Build: Build{Seconds: 10, Bytes: 900},
		Points: []Point{{Ef: 10, Recall: 0.92, QPS: 4000}, {Ef: 20, Recall: 0.97, QPS: 3000}, {Ef: 40, Recall: 0.995, QPS: 2000}}}
	base := IndexResult{Index: IndexSpec{"hnsw", "hnsw.ef_search"}, Build: Build{Seconds: 20, Bytes: 1000},
		Points: []Point{{Ef: 10, Recall: 0.85, QPS: 2000}, {Ef: 20, Recall: 0.95, QPS: 1000}, {Ef: 40, Recall: 0.98, QPS: 500}}}
	cmp := compare([]IndexResult{cand, base})
	if len(cmp) != 1 {
		t.Fatalf("%+v", cmp)
	}
	c := cmp[0]
	if c.BuildRatio != 0.5 || c.SizeRatio != 0.9 {
		t.Errorf("build %v size %v", c.BuildRatio, c.SizeRatio)
	}
	// 0.90: candidate above it at every ef (at least 4000), baseline 2000 + 0.5*(1000-2000).
	// 0.95: candidate 4000 + 0.6*(3000-4000) = 3400, baseline 1000. 0.99: baseline never.
	want := []struct {
		ratio      float64
		cand, base string
	}{{4000.0 / 1500, "at_least", "interpolated"}, {3.4, "interpolated", "interpolated"}, {0, "interpolated", "unreached"}}
	for i, w := range want {
		q := c.QPS[i]
		if math.Abs(q.Ratio-w.ratio) > 1e-9 || q.CandidateSide != w.cand || q.BaselineSide != w.base {
			t.Errorf("recall %.2f: %+v, want ratio %v (%s, %s)", q.Recall, q, w.ratio, w.cand, w.base)
		}
	}
	rep := &Report{Suite: "t", Settings: Settings{K: 10, Clients: 2, MemoryKind: MemoryKind},
		Datasets: []DatasetResult{{Dataset: "d", Indexes: []IndexResult{cand, base}, Comparisons: cmp}}}
	lines := strings.Join(rep.SummaryLines(), "\n")
	for _, s := range []string{"d: borealis_hnsw / hnsw: build time 0.50x, index size 0.90x", "QPS@0.90 >=2.67x", "QPS@0.95 3.40x", "QPS@0.99 n/a (baseline never reached it)"} {
		if !strings.Contains(lines, s) {
			t.Errorf("summary lacks %q: %s", s, lines)
		}
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil || !strings.Contains(md.String(), "| borealis_hnsw ÷ hnsw | 0.50 | - | 0.90 | >=2.67x | 3.40x | n/a (baseline never reached it) |") {
		t.Errorf("markdown ratio row missing (%v):\n%s", err, md.String())
	}
	if compare([]IndexResult{cand}) != nil {
		t.Error("a single index has nothing to compare with")
	}
	if c.FirstQueryRatio != 0 || c.MemoryPerConnectionDiff != nil || c.MarginalDiff != nil || c.InsertRatio1 != 0 {
		t.Errorf("measures neither index has were compared: %+v", c)
	}
}

func TestCompareFreshConnectionsAndInserts(t *testing.T) {
	cand := IndexResult{Index: IndexSpec{"borealis_hnsw", "borealis.ef_search"}, Build: Build{Seconds: 1, Bytes: 1},
		Fresh: &Fresh{Connections: 10, FirstP50ms: 1000, FirstP99ms: 1200, ConnectP50ms: 3, PerConnection: 150 << 20,
			MarginalConnections: 3, Marginal: 4 << 20, Private: 3 << 20},
		Inserts: &Inserts{Seconds: 10, Rate1: 200, Clients: 4, RateN: 128}}
	base := IndexResult{Index: IndexSpec{"hnsw", "hnsw.ef_search"}, Build: Build{Seconds: 1, Bytes: 1},
		Fresh: &Fresh{Connections: 10, FirstP50ms: 25, FirstP99ms: 30, ConnectP50ms: 3, PerConnection: 2 << 20,
			MarginalConnections: 3, Marginal: 2 << 20, Private: 1 << 20},
		Inserts: &Inserts{Seconds: 10, Rate1: 250, Clients: 4, RateN: 320}}
	cmp := compare([]IndexResult{cand, base})
	c := cmp[0]
	if c.FirstQueryRatio != 40 || c.MemoryPerConnectionDiff == nil || *c.MemoryPerConnectionDiff != 148<<20 ||
		c.MarginalDiff == nil || *c.MarginalDiff != 2<<20 ||
		c.InsertRatio1 != 0.8 || c.InsertRatioN != 0.4 {
		t.Fatalf("%+v", c)
	}
	rep := &Report{Suite: "t", Settings: Settings{K: 10, Clients: 2, MemoryKind: MemoryKind, FreshConnections: 10, InsertClients: 4, InsertSeconds: 10},
		Datasets: []DatasetResult{{Dataset: "d", Indexes: []IndexResult{cand, base}, Comparisons: cmp}}}
	lines := strings.Join(rep.SummaryLines(), "\n")
	for _, s := range []string{"first query on a fresh connection 40.00x", "memory per fresh connection +148.0 MiB", "memory per additional connection +2.0 MiB", "inserts 0.80x (1 client), 0.40x (N clients)"} {
		if !strings.Contains(lines, s) {
			t.Errorf("summary lacks %q: %s", s, lines)
		}
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"| borealis_hnsw | 1000.0 | 1200.0 | 3.0 | 150.0 MiB | 4.0 MiB | 3.0 MiB | 200 | 128 (4 clients) |",
		"| hnsw | 25.0 | 30.0 | 3.0 | 2.0 MiB | 2.0 MiB | 1.0 MiB | 250 | 320 (4 clients) |",
		"| 40.00x | +148.0 MiB | +2.0 MiB | 0.80x | 0.40x |",
	} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
	var png bytes.Buffer
	if err := rep.WritePNG(&png); err != nil || png.Len() == 0 {
		t.Fatalf("plot: %v", err)
	}
}
