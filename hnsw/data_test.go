package hnsw

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// datasetsDir finds the shared real-data folder: $BOREALIS_DATASETS when set, else the
// nearest shared/datasets beside the repository or one of its parents (CI clones the
// repository next to shared/; a worktree may sit a level deeper). Missing data fails the
// test instead of skipping it: CI has the data, and a recall test that quietly does not run
// proves nothing.
func datasetsDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("BOREALIS_DATASETS"); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("BOREALIS_DATASETS: %v", err)
		}
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := filepath.Dir(wd); ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "datasets")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Fatalf("no shared/datasets folder beside the repository (looked in every parent of %s); "+
		"clone the datasets there or set BOREALIS_DATASETS to their folder", wd)
	return ""
}

// clustered returns n vectors of dims components drawn around `clusters`
// random centres, the shape of real embedding sets (uniform noise would make
// every neighbour equally far and recall meaningless).
func clustered(n, dims, clusters int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, seed^0xabcdef))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = make([]float32, dims)
		for j := range centres[i] {
			centres[i][j] = float32(r.NormFloat64())
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.IntN(clusters)]
		v := make([]float32, dims)
		for j := range v {
			v[j] = c[j] + 0.35*float32(r.NormFloat64())
		}
		out[i] = v
	}
	return out
}

// bruteForce returns the ids of the k nearest live vectors to q under metric.
func bruteForce(x *Index, data [][]float32, live func(int) bool, q []float32, k int) []uint32 {
	type pair struct {
		d  float64
		id uint32
	}
	ps := make([]pair, 0, len(data))
	for i, v := range data {
		if live != nil && !live(i) {
			continue
		}
		ps = append(ps, pair{exactDistance(x.metric, q, v), uint32(i)})
	}
	sort.Slice(ps, func(a, b int) bool { return ps[a].d < ps[b].d || ps[a].d == ps[b].d && ps[a].id < ps[b].id })
	out := make([]uint32, 0, k)
	for i := 0; i < k && i < len(ps); i++ {
		out = append(out, ps[i].id)
	}
	return out
}

// exactDistance is the pgvector distance in float64, independent of the package code.
func exactDistance(m Metric, a, b []float32) float64 {
	var dot, na, nb, l2 float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
		l2 += (x - y) * (x - y)
	}
	switch m {
	case L2:
		return sqrt(l2)
	case Cosine:
		return 1 - dot/(sqrt(na)*sqrt(nb))
	default:
		return -dot
	}
}

func sqrt(v float64) float64 {
	if v <= 0 {
		return 0
	}
	z := v
	for range 60 {
		z = (z + v/z) / 2
	}
	return z
}

// recallAt measures mean recall@k of x over queries against brute force.
func recallAt(t testing.TB, x *Index, data, queries [][]float32, live func(int) bool, k, ef int) float64 {
	t.Helper()
	hit, total := 0, 0
	for _, q := range queries {
		truth := bruteForce(x, data, live, q, k)
		got, err := x.SearchInto(nil, q, k, ef)
		if err != nil {
			t.Fatal(err)
		}
		hit += found(truth, got)
		total += len(truth)
	}
	return float64(hit) / float64(total)
}

// found counts the results whose ids are in truth: the hits of a recall measurement.
func found(truth []uint32, got []Result) int {
	n := 0
	for _, r := range got {
		if slices.Contains(truth, r.ID) {
			n++
		}
	}
	return n
}

func build(t testing.TB, data [][]float32, metric Metric, opts Options) *Index {
	t.Helper()
	x, err := New(len(data[0]), metric, opts)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uint32, len(data))
	for i := range ids {
		ids[i] = uint32(i)
	}
	if err := x.AddBatch(ids, data); err != nil {
		t.Fatal(err)
	}
	return x
}

// loadSIFT5k reads the base set and the 3 queries of sift5k, or fails.
func loadSIFT5k(t testing.TB) (base, queries [][]float32) {
	t.Helper()
	dir := filepath.Join(datasetsDir(t), "sift5k")
	read := func(name string, cols int) [][]float32 {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("sift5k not available: %v", err)
		}
		defer f.Close()
		var out [][]float32
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fs := strings.Split(strings.TrimSpace(sc.Text()), "\t")
			if len(fs) < cols {
				continue
			}
			v := make([]float32, cols)
			for i := range cols {
				p, err := strconv.ParseFloat(fs[i], 32)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				v[i] = float32(p)
			}
			out = append(out, v)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return read("sift-dataset-5k.tsv", 128), read("sift-query-3.tsv", 128)
}

// loadMNIST reads up to limit images of an IDX gz file, or fails.
func loadMNIST(t testing.TB, name string, limit int) [][]float32 {
	t.Helper()
	f, err := os.Open(filepath.Join(datasetsDir(t), "mnist", name))
	if err != nil {
		t.Fatalf("mnist not available: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [4]uint32
	if err := binary.Read(z, binary.BigEndian, &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 2051 {
		t.Fatalf("%s: magic %d", name, hdr[0])
	}
	n, dims := int(hdr[1]), int(hdr[2]*hdr[3])
	n = min(n, limit)
	buf := make([]byte, dims)
	out := make([][]float32, n)
	for i := range out {
		if _, err := io.ReadFull(z, buf); err != nil {
			t.Fatal(err)
		}
		v := make([]float32, dims)
		for j, b := range buf {
			v[j] = float32(b)
		}
		out[i] = v
	}
	return out
}
