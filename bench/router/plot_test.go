package main

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlotCommittedReports reads the per-round figures of committed reports back from their
// tables and draws them: the values are the report's own (checked against figures in its
// tables), and the picture is a real PNG of the expected size.
func TestPlotCommittedReports(t *testing.T) {
	cases := []struct {
		report string
		paths  int
		want   map[string]float64 // "path/round" -> TPS, as in the report
	}{
		{"../results/router-pool-quiet.md", 3, map[string]float64{"direct/1": 22904, "router/1": 13715, "pgbouncer/1": 14669, "router/5": 15818, "pgbouncer/5": 13191}},
		{"../results/router-sockmap-quiet.md", 4, map[string]float64{"direct/2": 22402, "router/2": 13259, "sockmap-scan/1": 15181, "sockmap-verdict/5": 17189}},
		{"../results/router-iouring-quiet.md", 4, nil},
	}
	for _, c := range cases {
		run, err := ReadRun(c.report)
		if err != nil {
			t.Fatalf("%s: %v", c.report, err)
		}
		paths := map[string]bool{}
		got := map[string]float64{}
		for _, r := range run.Rounds {
			paths[r.Path] = true
			got[fmt.Sprintf("%s/%d", r.Path, r.Round)] = r.TPS
		}
		if len(paths) != c.paths {
			t.Errorf("%s: paths %v, want %d", c.report, paths, c.paths)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s TPS %v, want %v", c.report, k, got[k], v)
			}
		}
		if !strings.HasPrefix(run.Command, "/tmp/") && !strings.Contains(run.Command, "bench") {
			t.Errorf("%s: command %q not read from the report", c.report, run.Command)
		}
		out := filepath.Join(t.TempDir(), "plot.png")
		if err := PlotRun(run, out); err != nil {
			t.Fatal(err)
		}
		checkPNG(t, out)
	}
}

// TestWriteRunRoundTrip: a run's JSON is what -plot reads first, and it keeps every field.
func TestWriteRunRoundTrip(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "r.md")
	rs := []result{{path: "direct", round: 1, tps: 1000, p50: 0.2, p99: 1.1}, {path: "router", round: 1, tps: 800, p50: 0.3, p99: 1.3, cpuPerTxn: 25, syscalls: 1.1},
		{path: "pgbouncer", round: 1, tps: 700}, {path: "direct", round: 2, tps: 1100}, {path: "router", round: 2, tps: 900}, {path: "pgbouncer", round: 2, tps: 650}}
	if err := WriteRun(report, Run{Title: "t", Command: "c", Rounds: toRounds(rs)}); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, "r.png"))
	// The markdown report does not exist: the JSON alone must be enough.
	run, err := ReadRun(report)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Rounds) != 6 || run.Rounds[1].TPS != 800 || run.Rounds[1].ProxyCPUPerTxnUs != 25 || run.Rounds[1].P99Ms != 1.3 {
		t.Errorf("round trip lost data: %+v", run.Rounds)
	}
}

// TestReadRunErrors: a wrong file gets an error that says what is wanted.
func TestReadRunErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, content, want string }{
		{"missing.md", "", "bench/router report"},
		{"notes.md", "# notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "no per-round TPS table"},
		{"bad.md", "| round | direct TPS |\n|---:|---:|\n| 1 | fast |\n", `"fast" is not a number`},
		{"clash.md", "| round | direct TPS |\n|---:|---:|\n| 1 | 10 |\n\n| round | direct TPS |\n|---:|---:|\n| 1 | 11 |\n", "earlier table"},
		{"broken.json", "{", "JSON bench/router writes"},
	}
	for _, c := range cases {
		f := filepath.Join(dir, c.name)
		if c.content != "" {
			if err := os.WriteFile(f, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ReadRun(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 300 {
		t.Errorf("%s: %v, want a full-size plot", path, b)
	}
}
