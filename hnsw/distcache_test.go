package hnsw

import (
	"math"
	"testing"
)

func buildCached(t *testing.T, data [][]float32, metric Metric, opts Options, cache bool) *Index {
	t.Helper()
	x, err := New(len(data[0]), metric, opts)
	if err != nil {
		t.Fatal(err)
	}
	x.noDistCache = !cache
	for i, v := range data {
		if err := x.Add(uint32(i), v); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// checkDistCache fails if a slot whose tag matches its list entry holds anything but the
// exact distance, and returns the share of layer-0 entries the cache covers.
func checkDistCache(t *testing.T, x *Index) float64 {
	t.Helper()
	entries, covered := 0, 0
	for n := range x.IDLimit() {
		if !x.Contains(n) {
			continue
		}
		for i, id := range x.Neighbors(n, 0) {
			entries++
			d, ok := x.cachedDist(n, i, id)
			if !ok {
				continue
			}
			covered++
			if want := x.distance(x.vec(n), x.vec(id)); math.Float32bits(d) != math.Float32bits(want) {
				t.Fatalf("node %d slot %d (neighbour %d): cached %v, exact %v", n, i, id, d, want)
			}
		}
	}
	return float64(covered) / float64(entries)
}

// The cache replaces recomputed distances by the same values, so a deterministic build
// gives the same graph with and without it, bit for bit.
func TestDistCacheBuildsTheSameGraph(t *testing.T) {
	for _, metric := range []Metric{Cosine, L2, InnerProduct} {
		t.Run(metric.String(), func(t *testing.T) {
			data := clustered(2500, 64, 12, 5) // 64 dims ≥ 8·m0 at M 4: cached
			opts := Options{M: 4, EfConstruction: 32, Seed: 7, Threads: 1}
			a := buildCached(t, data, metric, opts, true)
			b := buildCached(t, data, metric, opts, false)
			if a.dcache0 == nil || b.dcache0 != nil {
				t.Fatalf("cache present: %v with, %v without", a.dcache0 != nil, b.dcache0 != nil)
			}
			graphsEqual(t, a, b)
			if cov := checkDistCache(t, a); cov < 0.99 {
				t.Fatalf("the cache covers %.3f of layer-0 entries after a build, want ≥ 0.99", cov)
			}
		})
	}
}

// A writer that does not fill the cache (SetNeighbors, as a cache applying another
// backend's page does) leaves slots whose tags no longer match; link must recompute those
// and never use a stale distance.
func TestDistCacheSurvivesWritersThatSkipIt(t *testing.T) {
	data := clustered(2000, 64, 10, 9)
	opts := Options{M: 4, EfConstruction: 32, Seed: 3, Threads: 1}
	half := len(data) / 2
	var graphs [2]*Index
	for k, cache := range []bool{true, false} {
		x := buildCached(t, data[:half], Cosine, opts, cache)
		// Rotate every list of the first 200 nodes by one: same ids, other slots.
		for n := range uint32(200) {
			ns := x.Neighbors(n, 0)
			if len(ns) < 2 {
				continue
			}
			if err := x.SetNeighbors(n, 0, append(ns[1:], ns[0])); err != nil {
				t.Fatal(err)
			}
		}
		for i := half; i < len(data); i++ {
			if err := x.Add(uint32(i), data[i]); err != nil {
				t.Fatal(err)
			}
		}
		graphs[k] = x
	}
	graphsEqual(t, graphs[0], graphs[1])
	checkDistCache(t, graphs[0])
}

func TestDistCacheOnlyAtHighDims(t *testing.T) {
	for _, c := range []struct {
		dims, m int
		want    bool
	}{{128, 16, false}, {255, 16, false}, {256, 16, true}, {1536, 16, true}, {1536, 100, false}} {
		x, err := New(c.dims, L2, Options{M: c.m})
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Reserve(10); err != nil {
			t.Fatal(err)
		}
		if got := x.dcache0 != nil; got != c.want {
			t.Errorf("dims %d M %d: cache %v, want %v", c.dims, c.m, got, c.want)
		}
	}
}

// A build writes straight into a mapped graph: KeepDistanceCache gives it the cache for the
// build, with the same graph as without, and DropDistanceCache ends it.
func TestDistCacheOnAMappedBuild(t *testing.T) {
	data := clustered(1500, 64, 8, 13)
	opts := Options{M: 4, EfConstruction: 32, Seed: 5, Threads: 1}
	var graphs [2]*Index
	for k, keep := range []bool{true, false} {
		mem := alignedBytes(MappedSize(64, Cosine, opts, len(data)))
		x, err := Attach(mem, 64, Cosine, opts, len(data), true)
		if err != nil {
			t.Fatal(err)
		}
		if keep {
			if got, want := x.DistanceCacheBytes(), int64(len(data)*x.m0*8); got != want {
				t.Fatalf("DistanceCacheBytes %d, want %d", got, want)
			}
			x.KeepDistanceCache()
			if x.DistanceCacheBytes() != 0 || x.dcache0 == nil {
				t.Fatal("KeepDistanceCache made no cache")
			}
		} else if x.dcache0 != nil {
			t.Fatal("a mapped graph has a cache it was not given")
		}
		for i, v := range data {
			if err := x.Add(uint32(i), v); err != nil {
				t.Fatal(err)
			}
		}
		graphs[k] = x
	}
	graphsEqual(t, graphs[0], graphs[1])
	if cov := checkDistCache(t, graphs[0]); cov < 0.99 {
		t.Fatalf("the cache covers %.3f of layer-0 entries, want ≥ 0.99", cov)
	}
	graphs[0].DropDistanceCache()
	if graphs[0].dcache0 != nil {
		t.Fatal("DropDistanceCache kept the cache")
	}
	if err := graphs[0].Delete(0); err != nil { // inserts and repairs go on without it
		t.Fatal(err)
	}
}
