package groundtruth

import (
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/borealisdb/borealis/bench/dataset"
)

// naive is the obvious full sort, to check the heap selection against.
func naive(d *dataset.Dataset, q, k int) []int32 {
	dist := Distance(d.Metric)
	ids := make([]int32, d.N())
	for i := range ids {
		ids[i] = int32(i)
	}
	sort.SliceStable(ids, func(a, b int) bool {
		return dist(d.Query(q), d.Row(int(ids[a]))) < dist(d.Query(q), d.Row(int(ids[b])))
	})
	return ids[:k]
}

func TestComputeMatchesFullSort(t *testing.T) {
	for _, m := range []dataset.Metric{dataset.L2, dataset.Cosine, dataset.IP} {
		d := dataset.Synthetic(800, 12, 15, m, 3)
		tr, err := Compute(d, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		for q := 0; q < d.NQ(); q++ {
			if got, want := tr.Neighbours(q), naive(d, q, 10); !slices.Equal(got, want) {
				t.Fatalf("%s query %d: got %v, want %v", m, q, got, want)
			}
			if !sort.SliceIsSorted(tr.Dists[q*10:(q+1)*10], func(a, b int) bool { return tr.Dists[q*10+a] < tr.Dists[q*10+b] }) {
				t.Fatalf("%s query %d: distances not ascending", m, q)
			}
		}
	}
	if _, err := Compute(dataset.Synthetic(5, 4, 1, dataset.L2, 1), 6, nil); err == nil || !strings.Contains(err.Error(), "k=6") {
		t.Fatalf("k beyond base: %v", err)
	}
}

func TestCacheHitMissAndCorruption(t *testing.T) {
	dir := t.TempDir()
	d := dataset.Synthetic(600, 8, 20, dataset.L2, 5)
	first, cached, err := Load(dir, d, 5, nil, nil)
	if err != nil || cached {
		t.Fatalf("first load: cached=%v err=%v", cached, err)
	}
	second, cached, err := Load(dir, d, 5, nil, nil)
	if err != nil || !cached || !slices.Equal(first.IDs, second.IDs) || !slices.Equal(first.Dists, second.Dists) {
		t.Fatalf("second load: cached=%v err=%v", cached, err)
	}
	// Different k, metric or data each get their own entry.
	other := dataset.Synthetic(600, 8, 20, dataset.Cosine, 5)
	if CachePath(dir, d, 5) == CachePath(dir, d, 6) || CachePath(dir, d, 5) == CachePath(dir, other, 5) {
		t.Fatal("cache keys collide")
	}
	changed := dataset.Synthetic(600, 8, 20, dataset.L2, 6)
	changed.Name = d.Name
	if CachePath(dir, d, 5) == CachePath(dir, changed, 5) {
		t.Fatal("same name, different vectors: cache key must differ")
	}
	// Flip a byte: the checksum catches it, the truth is recomputed and rewritten.
	path := CachePath(dir, d, 5)
	raw, _ := os.ReadFile(path)
	raw[20] ^= 0xff
	os.WriteFile(path, raw, 0o644)
	var warned string
	third, cached, err := Load(dir, d, 5, nil, func(s string) { warned = s })
	if err != nil || cached || !strings.Contains(warned, "checksum mismatch") || !slices.Equal(third.IDs, first.IDs) {
		t.Fatalf("corrupt cache: cached=%v err=%v warned=%q", cached, err, warned)
	}
	// Truncated.
	os.WriteFile(path, raw[:30], 0o644)
	if _, cached, _ := Load(dir, d, 5, nil, func(s string) { warned = s }); cached || !strings.Contains(warned, "truncated") {
		t.Fatalf("truncated cache: cached=%v warned=%q", cached, warned)
	}
	if _, cached, _ := Load(dir, d, 5, nil, nil); !cached {
		t.Fatal("rewritten cache not used")
	}
}

func TestSparseTruthMatchesBruteForce(t *testing.T) {
	for _, m := range []dataset.Metric{dataset.IP, dataset.L2, dataset.Cosine} {
		d := dataset.SparseSynthetic(800, 3000, 20, m, 3)
		tr, err := Compute(d, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		dist := RowDistance(d)
		for q := 0; q < d.NQ(); q++ {
			all := make([]float32, d.N())
			for id := range all {
				all[id] = dist(q, id)
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			if got, want := tr.KthDistance(q), all[9]; math.Abs(float64(got-want)) > 1e-5*math.Max(1, math.Abs(float64(want))) {
				t.Fatalf("%s query %d: 10th distance %v, brute force %v", m, q, got, want)
			}
			for j, id := range tr.Neighbours(q) {
				if dist(q, int(id)) > all[9]+1e-5*float32(math.Max(1, math.Abs(float64(all[9])))) || j > 0 && tr.Dists[q*10+j] < tr.Dists[q*10+j-1] {
					t.Fatalf("%s query %d: neighbour %d (id %d) is not among the 10 nearest", m, q, j, id)
				}
			}
		}
	}
}
