package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sharedDir is the shared real-data folder: $BOREALIS_DATASETS when set, else the nearest
// shared/datasets beside the repository or one of its parents (CI clones the repository next
// to shared/; a worktree may sit a level deeper). The tests that read it fail when it is
// missing.
var sharedDir = func() string {
	if dir := os.Getenv("BOREALIS_DATASETS"); dir != "" {
		return dir
	}
	wd, _ := os.Getwd()
	for dir := wd; filepath.Dir(dir) != dir; dir = filepath.Dir(dir) {
		if st, err := os.Stat(filepath.Join(dir, "shared", "datasets")); err == nil && st.IsDir() {
			return filepath.Join(dir, "shared", "datasets")
		}
	}
	return "../../../shared/datasets"
}()

func TestSyntheticIsDeterministic(t *testing.T) {
	a := Synthetic(500, 16, 20, L2, 7)
	b := Synthetic(500, 16, 20, L2, 7)
	c := Synthetic(500, 16, 20, L2, 8)
	if a.N() != 500 || a.NQ() != 20 || a.Dim != 16 {
		t.Fatalf("shape %d×%d, %d queries", a.N(), a.Dim, a.NQ())
	}
	if !slices.Equal(a.Base, b.Base) || !slices.Equal(a.Queries, b.Queries) {
		t.Fatal("same seed gave different data")
	}
	if slices.Equal(a.Base, c.Base) {
		t.Fatal("different seeds gave the same data")
	}
}

func TestOpenSpecs(t *testing.T) {
	d, err := Open("synthetic:300:8:cosine", Options{Queries: 10, Seed: 1})
	if err != nil || d.Metric != Cosine || d.N() != 300 || d.NQ() != 10 {
		t.Fatalf("synthetic spec: %v %+v", err, d)
	}
	for spec, want := range map[string]string{
		"synthetic:10":          "want synthetic:N:D",
		"synthetic:x:8":         "positive integers",
		"synthetic:10:8:hamm":   `unknown metric "hamm"`,
		"glove":                 `unknown dataset "glove"`,
		"fvecs:":                "want fvecs:PATH",
		"fvecs:/nonexistent.fv": "no such file",
		"mnist:extra":           "takes no arguments",
	} {
		if _, err := Open(spec, Options{Queries: 5}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", spec, err, want)
		}
	}
}

func TestCheckFailsFastWithoutReading(t *testing.T) {
	if err := Check("synthetic:100000000:1536", Options{}); err != nil {
		t.Fatalf("a large synthetic spec is valid: %v", err)
	}
	if err := Check("mnist", Options{Dir: sharedDir}); err != nil {
		t.Fatal(err)
	}
	for spec, want := range map[string]string{
		"synthetic:1:x":      "positive integers",
		"fvecs:/nonexistent": "no such file",
		"sift5k":             "--datasets-dir",
		"glove":              "unknown dataset",
	} {
		if err := Check(spec, Options{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to mention %q", spec, err, want)
		}
	}
}

func TestFvecsRoundTripAndHoldOut(t *testing.T) {
	rows := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	path := filepath.Join(t.TempDir(), "x.fvecs")
	if err := os.WriteFile(path, WriteFvecs(rows, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open("fvecs:"+path+":ip", Options{Queries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Metric != IP || d.Dim != 3 || !slices.Equal(d.Base, rows[:6]) || !slices.Equal(d.Queries, rows[6:]) {
		t.Fatalf("got %+v", d)
	}
	if _, err := Open("fvecs:"+path, Options{Queries: 3}); err == nil || !strings.Contains(err.Error(), "leaves no base") {
		t.Fatalf("holding out everything: %v", err)
	}
}

func TestFvecsCorrupt(t *testing.T) {
	good := WriteFvecs([]float32{1, 2, 3, 4, 5, 6}, 3)
	// A second record claiming another dimension, with the right total length.
	otherDim := WriteFvecs([]float32{1, 2, 3, 4, 5, 6}, 3)
	binary.LittleEndian.PutUint32(otherDim[16:], 7)
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"truncated":        {good[:len(good)-3], "truncated or corrupt (record 1 is cut short)"},
		"empty":            {nil, "no vectors"},
		"negative dim":     {binary.LittleEndian.AppendUint32(nil, 0xffffffff), "dimension -1"},
		"record dimension": {otherDim, "record 1 has dimension 7"},
	} {
		if _, _, err := ParseFvecs(name, tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestTSV(t *testing.T) {
	rows, dim, err := ParseTSV("ok", strings.NewReader("1\t2\t3\t100\n\n4\t5\t6\t101\n"), true)
	if err != nil || dim != 3 || !slices.Equal(rows, []float32{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("got %v %d %v", rows, dim, err)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"short line": {"1\t2\t3\n4\t5\n", "line 2: 2 components, earlier lines have 3"},
		"not number": {"1\t2\n3\tx\n", `line 2 column 2: "x" is not a finite number`},
		"nan":        {"1\tNaN\n", "not a finite number"},
		"empty":      {"\n\n", "no vectors"},
	} {
		if _, _, err := ParseTSV(name, strings.NewReader(tc.in), false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func idx(magic, n, rows, cols uint32, pixels []byte) []byte {
	var raw bytes.Buffer
	binary.Write(&raw, binary.BigEndian, [4]uint32{magic, n, rows, cols})
	raw.Write(pixels)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw.Bytes())
	w.Close()
	return gz.Bytes()
}

func TestIDX(t *testing.T) {
	rows, dim, err := ParseIDXImages("ok", bytes.NewReader(idx(2051, 2, 2, 2, []byte{0, 1, 2, 3, 4, 5, 6, 255})))
	if err != nil || dim != 4 || !slices.Equal(rows, []float32{0, 1, 2, 3, 4, 5, 6, 255}) {
		t.Fatalf("got %v %d %v", rows, dim, err)
	}
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"truncated": {idx(2051, 3, 2, 2, []byte{1, 2, 3, 4, 5}), "truncated: header promises 3 images, data ends after 1"},
		"labels":    {idx(2049, 2, 0, 0, nil), "magic 2049, want 2051"},
		"not gzip":  {[]byte("hello world"), "not gzip data"},
		"no header": {idx(2051, 0, 0, 0, nil)[:0], "not gzip data"},
	} {
		if _, _, err := ParseIDXImages(name, bytes.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestRealDatasets(t *testing.T) {
	m, err := Open("mnist", Options{Dir: sharedDir, Queries: 100})
	if err != nil {
		t.Fatal(err)
	}
	if m.N() != 60000 || m.Dim != 784 || m.NQ() != 100 || m.Metric != L2 {
		t.Fatalf("mnist: %d×%d, %d queries", m.N(), m.Dim, m.NQ())
	}
	s, err := Open("sift5k", Options{Dir: sharedDir, Queries: 200})
	if err != nil {
		t.Fatal(err)
	}
	if s.N() != 4800 || s.Dim != 128 || s.NQ() != 200 {
		t.Fatalf("sift5k: %d×%d, %d queries", s.N(), s.Dim, s.NQ())
	}
	if _, err := Open("mnist", Options{Dir: t.TempDir(), Queries: 10}); err == nil || !strings.Contains(err.Error(), "--datasets-dir") {
		t.Fatalf("missing mnist: %v", err)
	}
}
