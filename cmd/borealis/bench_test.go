package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchBadInvocations(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"bench"}, "borealis bench ann [flags]"},
		{[]string{"bench", "tpcc"}, "borealis bench ann [flags]"},
		{[]string{"bench", "ann", "--index", "hnsw"}, "want AM:GUC"},
		{[]string{"bench", "ann", "--ef", "10,x"}, "--ef \"10,x\""},
		{[]string{"bench", "ann", "--suite", "nonesuch"}, "no dataset: give --dataset"},
		{[]string{"bench", "ann", "--dataset", "mnist", "--maintenance-work-mem", "huge"}, "--maintenance-work-mem \"huge\""},
		{[]string{"bench", "ann", "--dataset", "mnist", "--output", "yaml"}, "--output must be json or table"},
		{[]string{"bench", "ann", "--dataset", "mnist", "--fresh-connections", "-1"}, "--fresh-connections, --insert-clients and --insert-time must be positive"},
		{[]string{"bench", "ann", "--dataset", "mnist", "--insert-time", "-1s"}, "--fresh-connections, --insert-clients and --insert-time must be positive"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errb.String(), tc.msg)
		}
	}
}

// TestBenchANNTiny runs the CLI end to end on a throwaway server; --output json carries the
// report and the paths of the files written.
func TestBenchANNTiny(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "ann", "--suite", "tiny", "--index", "hnsw:hnsw.ef_search", "--ef", "20",
		"--queries", "50", "--warmup", "5", "--shared-buffers", "128MB", "--maintenance-work-mem", "64MB",
		"--fresh-connections", "2", "--insert-clients", "2", "--insert-time", "200ms",
		"--cache-dir", t.TempDir(), "--out", out, "--output", "json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	var rep struct {
		Suite    string `json:"suite"`
		Datasets []struct {
			Dataset string `json:"dataset"`
		} `json:"datasets"`
		Files struct{ JSON, Markdown, PNG string } `json:"files"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
	}
	if rep.Suite != "tiny" || len(rep.Datasets) != 1 || rep.Datasets[0].Dataset != "synthetic:2000:16:l2" {
		t.Fatalf("report: %+v", rep)
	}
	for _, f := range []string{rep.Files.JSON, rep.Files.Markdown, rep.Files.PNG} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 || filepath.Dir(f) != out {
			t.Errorf("output %s: %v", f, err)
		}
	}
	if !strings.Contains(stderr.String(), "sweep hnsw ef=20") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
}

// A dataset that cannot be read fails before any server is started, naming the file.
func TestBenchMissingDatasetFailsFast(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"bench", "ann", "--dataset", "fvecs:/nonexistent/base.fvecs", "--index", "hnsw:hnsw.ef_search"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "/nonexistent/base.fvecs") || strings.Contains(errb.String(), "server: starting") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
