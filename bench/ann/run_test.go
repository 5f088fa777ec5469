package ann

import (
	"bufio"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// tinyConfig is the end-to-end suite: 2,000 × 16, small enough for `make test`.
func tinyConfig(t *testing.T) Config {
	return Config{
		Suite:    "tiny",
		Datasets: []string{"synthetic:2000:16"},
		Indexes:  []IndexSpec{{AM: "hnsw", GUC: "hnsw.ef_search"}},
		Efs:      []int{10, 40},
		Queries:  100,
		Warmup:   10,
		Clients:  2,
		CacheDir: t.TempDir(),
		OutDir:   t.TempDir(),
		// Small, so a throwaway server fits beside everyone else's tests.
		SharedBuffers:      "128MB",
		MaintenanceWorkMem: "64MB",
		FreshConnections:   3,
		InsertClients:      2,
		InsertTime:         300 * time.Millisecond,
	}
}

// TestTinySuiteEndToEnd runs the whole benchmark against a throwaway server the runner starts
// itself, and checks every output file.
func TestTinySuiteEndToEnd(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.MinTime = 200 * time.Millisecond // repeated passes, as make bench does
	cfg.BuildRounds = 1
	// Generous: at load 40 on 2 cores the throwaway server alone took 2 minutes to start.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var progress strings.Builder
	rep, err := Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	for _, want := range []string{"server: starting a throwaway", "ground truth: computed", "load: 2000 rows", "build hnsw: CREATE INDEX",
		"fresh hnsw: 3 new connections", "sweep hnsw ef=40", "inserts hnsw: 1 client, then 2"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	if len(rep.Datasets) != 1 || len(rep.Datasets[0].Indexes) != 1 {
		t.Fatalf("report shape: %+v", rep.Datasets)
	}
	// The interleaved round: one build, measured and dropped before the sweep's own. The
	// server's CPU includes the building backend's.
	if rs := rep.Datasets[0].BuildRounds; len(rs) != 1 || rs[0].AM != "hnsw" || rs[0].Seconds <= 0 || rs[0].Bytes < 8192 ||
		rs[0].CPUSeconds < rs[0].BackendCPUSeconds-0.02 || !strings.Contains(progress.String(), "build round 1/1: hnsw") {
		t.Errorf("build rounds: %+v", rs)
	}
	ix := rep.Datasets[0].Indexes[0]
	if ix.Build.Seconds <= 0 || ix.Build.Bytes < 8192 || ix.Build.PeakMemory < ix.Build.MemoryBefore || ix.Build.MemoryBefore <= 0 {
		t.Errorf("build figures: %+v", ix.Build)
	}
	if len(ix.Points) != 2 {
		t.Fatalf("points: %+v", ix.Points)
	}
	for _, p := range ix.Points {
		if p.QPS <= 0 || p.QPSN <= 0 || p.P50ms <= 0 || p.P99ms < p.P50ms || p.Clients != 2 {
			t.Errorf("point %+v", p)
		}
	}
	// Fresh connections: the first query includes the connect; each connection costs the server
	// some memory (a backend is never free).
	if f := ix.Fresh; f == nil || f.Connections != 3 || f.ConnectP50ms <= 0 || f.FirstP50ms <= f.ConnectP50ms ||
		f.FirstP99ms < f.FirstP50ms || f.PerConnection <= 0 ||
		f.MarginalConnections != marginalConnections || f.Private <= 0 {
		t.Errorf("fresh connections: %+v", f)
	}
	if in := ix.Inserts; in == nil || in.Rate1 <= 0 || in.RateN <= 0 || in.Clients != 2 {
		t.Errorf("inserts: %+v", in)
	}
	// At ef=40 hnsw on 2,000 clustered points finds nearly everything; a broken recall
	// computation (ids off by one, wrong metric) would not.
	if r := ix.Points[1].Recall; r < 0.9 || r > 1 {
		t.Errorf("recall@10 at ef=40 is %v", r)
	}
	if rep.Machine.PostgreSQL == "" || rep.Machine.PGVector == "" || rep.Machine.SIMDPath == "" || rep.Machine.Cores <= 0 {
		t.Errorf("machine: %+v", rep.Machine)
	}

	files, err := rep.Write(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	checkJSONLines(t, files.JSON, map[string]int{"run": 1, "dataset": 1, "build": 1, "fresh": 1, "point": 2, "inserts": 1})
	md, err := os.ReadFile(files.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# ANN benchmark `tiny`", "pgvector 0.8", "| hnsw | 10 |", "| hnsw | 40 |", "server peak PSS", "only hnsw measured",
		"| index | first query p50 ms |", "Fresh connections: after each build, 3 new connections", "for 0.3 s with 1 new connection"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	f, err := os.Open(files.PNG)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
		t.Errorf("plot is %v", b)
	}
}

func checkJSONLines(t *testing.T, path string, want map[string]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Type   string  `json:"type"`
			Recall float64 `json:"recall"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: not JSON lines: %v: %s", path, err, sc.Text())
		}
		got[rec.Type]++
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d %q records, want %d (all: %v)", path, got[k], k, n, got)
		}
	}
}

// TestMissingAccessMethod uses a server given by DSN: a missing AM fails before anything is
// loaded, naming the way out, or is skipped with a warning when asked to.
func TestMissingAccessMethod(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	cfg := tinyConfig(t)
	cfg.DSN = s.DSN("postgres")
	cfg.Indexes = []IndexSpec{{AM: "nosuch_hnsw", GUC: "nosuch.ef_search"}, {AM: "hnsw", GUC: "hnsw.ef_search"}}
	// One deadline for five runs: 2 minutes ran out in the fourth under make test at nice 19
	// beside nice-0 benchmarks (load 40), and the run then failed with the deadline instead of
	// the error this test is about.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var progress strings.Builder
	if _, err := Run(ctx, cfg, &progress); err == nil || !strings.Contains(err.Error(), `no index access method "nosuch_hnsw"`) ||
		!strings.Contains(err.Error(), "--skip-missing") {
		t.Fatalf("missing AM: %v", err)
	}
	if got := s.QueryValue("postgres", "SELECT count(*) FROM pg_class WHERE relname = 'bench_items'"); got != "0" {
		t.Fatalf("a failed check still created the table (%s)", got)
	}

	cfg.SkipMissing = true
	cfg.Efs = []int{20}
	rep, err := Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), "warning: the server has no index access method \"nosuch_hnsw\": skipping") {
		t.Errorf("no warning:\n%s", progress.String())
	}
	d := rep.Datasets[0]
	if len(d.Indexes) != 1 || d.Indexes[0].Index.AM != "hnsw" || len(d.Skipped) != 1 {
		t.Errorf("indexes %+v, skipped %v", d.Indexes, d.Skipped)
	}
	// The server is local: its postmaster is found through the backend's parent.
	if d.Indexes[0].Build.PeakMemory <= 0 {
		t.Errorf("peak memory not measured on a local --dsn server: %+v", d.Indexes[0].Build)
	}

	// A GUC that no module defines cannot steer the search: PostgreSQL refuses a misspelt
	// name under a loaded module's prefix, and the runner refuses a mere placeholder.
	for guc, want := range map[string]string{
		"hnsw.ef_serch":    "is hnsw.ef_serch the search GUC of this access method?",
		"nosuch.ef_search": "nosuch.ef_search is not a parameter of any loaded module",
	} {
		cfg.Indexes = []IndexSpec{{AM: "hnsw", GUC: guc}}
		if _, err := Run(ctx, cfg, &progress); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("GUC %s: %v, want it to mention %q", guc, err, want)
		}
	}
}
