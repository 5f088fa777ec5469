package hnsw

import (
	"slices"
	"testing"
)

// drain runs an iterator to the end (or limit results) and returns what it yielded.
func drain(t *testing.T, x *Index, q []float32, opts SearchOptions, limit int) []Result {
	t.Helper()
	it, err := x.NewIterator(q, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []Result
	for len(out) < limit {
		r, ok := it.Next()
		if !ok {
			break
		}
		out = append(out, r)
	}
	return out
}

// relaxed_order never drops a node it found; strict_order never goes backwards
// and drops exactly the nodes found late (pgvector's two iterative scans).
func TestIteratorRelaxedOrderDropsNothing(t *testing.T) {
	for _, quant := range []bool{false, true} {
		all := clustered(2040, 16, 12, 21)
		data, queries := all[:2000], all[2000:]
		x := build(t, data, L2, Options{M: 6, EfConstruction: 32, Seed: 2, QuantizedSearch: quant})
		x.ConnectAll(nil) // every element reachable: draining must see all of them
		if unreachable(x) != 0 {
			t.Fatal("setup: graph not connected")
		}
		lateTotal := 0
		for _, q := range queries {
			strict := drain(t, x, q, SearchOptions{Ef: 8}, 1<<30)
			relaxed := drain(t, x, q, SearchOptions{Ef: 8, RelaxedOrder: true}, 1<<30)
			for i := 1; i < len(strict); i++ {
				if strict[i].Distance < strict[i-1].Distance {
					t.Fatalf("quant=%v strict: %v after %v", quant, strict[i], strict[i-1])
				}
			}
			seen := map[uint32]bool{}
			late := 0
			maxSoFar := float32(-1)
			for _, r := range relaxed {
				if seen[r.ID] {
					t.Fatalf("quant=%v relaxed returned %d twice", quant, r.ID)
				}
				seen[r.ID] = true
				if want := float32(exactDistance(L2, q, data[r.ID])); abs32(r.Distance-want) > 1e-3*max(1, want) {
					t.Fatalf("quant=%v relaxed: id %d distance %v, exact %v", quant, r.ID, r.Distance, want)
				}
				if r.Distance < maxSoFar {
					late++
				}
				maxSoFar = max(maxSoFar, r.Distance)
			}
			if len(relaxed) != len(data) {
				t.Fatalf("quant=%v relaxed drained %d of %d reachable elements", quant, len(relaxed), len(data))
			}
			// Strict is relaxed minus the late finds.
			if len(strict)+late != len(relaxed) {
				t.Fatalf("quant=%v strict returned %d, relaxed %d with %d late", quant, len(strict), len(relaxed), late)
			}
			for _, r := range strict {
				if !seen[r.ID] {
					t.Fatalf("quant=%v strict returned %d, relaxed never did", quant, r.ID)
				}
			}
			lateTotal += late
		}
		if lateTotal == 0 {
			t.Fatalf("quant=%v: no query found a node late; the case proves nothing", quant)
		}
		t.Logf("quant=%v: %d late finds over %d queries returned by relaxed, skipped by strict", quant, lateTotal, len(queries))
	}
}

// Within one round, relaxed order is still nearest first: the first ef results
// are exactly the ordinary search's.
func TestIteratorRelaxedFirstRoundIsTheSearch(t *testing.T) {
	all := clustered(3020, 32, 16, 22)
	data, queries := all[:3000], all[3000:]
	for _, quant := range []bool{false, true} {
		x := build(t, data, Cosine, Options{M: 12, Seed: 4, Threads: 1, QuantizedSearch: quant})
		for _, q := range queries {
			want := x.Search(q, 40, 40)
			got := drain(t, x, q, SearchOptions{Ef: 40, RelaxedOrder: true}, 40)
			if !slices.Equal(want, got) {
				t.Fatalf("quant=%v: first round %v, search %v", quant, got, want)
			}
		}
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}
