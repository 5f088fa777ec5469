package hnsw

import (
	"slices"
	"testing"
)

// drain runs an iterator to the end (or limit results) and returns what it yielded.
func drain(t testing.TB, x *Index, q []float32, opts SearchOptions, limit int) []Result {
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

// An interrupt stops Next between rounds, and the iterator resumes afterwards
// with nothing lost.
func TestIteratorInterruptStopsBetweenRoundsAndResumes(t *testing.T) {
	all := clustered(2020, 16, 12, 24)
	data, queries := all[:2000], all[2000:]
	x := build(t, data, L2, Options{M: 6, EfConstruction: 32, Seed: 3})
	for _, relaxed := range []bool{false, true} {
		q := queries[0]
		want := drain(t, x, q, SearchOptions{Ef: 8, RelaxedOrder: relaxed}, 1<<30)
		polls, stops := 0, 0
		it, err := x.NewIterator(q, SearchOptions{Ef: 8, RelaxedOrder: relaxed, Interrupt: func() bool {
			polls++
			return polls%3 == 0 // every third poll asks to stop
		}})
		if err != nil {
			t.Fatal(err)
		}
		var got []Result
		for {
			r, ok := it.Next()
			if ok {
				if it.Interrupted() {
					t.Fatal("Interrupted after a result")
				}
				got = append(got, r)
				continue
			}
			if !it.Interrupted() {
				break
			}
			stops++
		}
		it.Close()
		// Strict order skips late finds, so one Next can need several rounds: that is where
		// the interrupt is polled. (Relaxed order returns something from every round.)
		if !relaxed && (stops == 0 || polls < 3) {
			t.Fatalf("strict: %d polls, %d stops: the interrupt was never honoured", polls, stops)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("relaxed=%v: interrupted iteration returned %d results, uninterrupted %d, or a different order", relaxed, len(got), len(want))
		}
	}
	// A pending interrupt still lets each call make progress: one round per call.
	it, _ := x.NewIterator(queries[1], SearchOptions{Ef: 8, Interrupt: func() bool { return true }})
	defer it.Close()
	n := 0
	for calls := 0; calls < 100000; calls++ {
		if _, ok := it.Next(); ok {
			n++
		} else if !it.Interrupted() {
			break
		}
	}
	if n < 1000 {
		t.Fatalf("with an interrupt always pending the iterator returned only %d results", n)
	}
}

// MaxVisited (pgvector's max_scan_tuples) ends the graph walk: the iterator
// stops visiting elements once past the budget, returns what it had found
// (nearest first, each once), and ends well short of the whole graph.
func TestIteratorMaxVisitedStopsTheWalk(t *testing.T) {
	all := clustered(4020, 16, 12, 25)
	data, queries := all[:4000], all[4000:]
	for _, quant := range []bool{false, true} {
		x := build(t, data, L2, Options{M: 8, EfConstruction: 32, Seed: 5, QuantizedSearch: quant})
		x.ConnectAll(nil)
		for _, relaxed := range []bool{false, true} {
			q := queries[0]
			full := drain(t, x, q, SearchOptions{Ef: 10, RelaxedOrder: relaxed}, 1<<30)
			prev := 0
			for _, budget := range []int{50, 300, 1500} {
				it, err := x.NewIterator(q, SearchOptions{Ef: 10, RelaxedOrder: relaxed, MaxVisited: budget})
				if err != nil {
					t.Fatal(err)
				}
				var got []Result
				visitedAtStop := -1
				for {
					r, ok := it.Next()
					if !ok {
						break
					}
					if visitedAtStop < 0 && it.Visited() >= budget {
						visitedAtStop = it.Visited()
					}
					got = append(got, r)
				}
				if visitedAtStop >= 0 && it.Visited() != visitedAtStop {
					t.Fatalf("quant=%v relaxed=%v budget %d: walked on after the budget (%d visited at the stop, %d at the end)",
						quant, relaxed, budget, visitedAtStop, it.Visited())
				}
				// One round can overshoot by at most ef expansions of 2m neighbours.
				if it.Visited() > budget+10*16+1 {
					t.Fatalf("quant=%v relaxed=%v budget %d: visited %d", quant, relaxed, budget, it.Visited())
				}
				it.Close()
				if len(got) >= len(full) {
					t.Fatalf("quant=%v relaxed=%v budget %d: %d results, as many as an unbounded scan (%d)", quant, relaxed, budget, len(got), len(full))
				}
				if len(got) < prev {
					t.Fatalf("quant=%v relaxed=%v: a larger budget (%d) returned fewer results (%d < %d)", quant, relaxed, budget, len(got), prev)
				}
				prev = len(got)
				seen := map[uint32]bool{}
				for i, r := range got {
					if seen[r.ID] {
						t.Fatalf("quant=%v relaxed=%v budget %d: %d returned twice", quant, relaxed, budget, r.ID)
					}
					seen[r.ID] = true
					if !relaxed && i > 0 && r.Distance < got[i-1].Distance {
						t.Fatalf("quant=%v strict budget %d: %v after %v", quant, budget, r, got[i-1])
					}
				}
			}
		}
	}
}

// MaxMemory ends the walk the same way, once the kept candidates fill it.
func TestIteratorMaxMemoryStopsTheWalk(t *testing.T) {
	all := clustered(4010, 16, 12, 26)
	data, q := all[:4000], all[4000]
	x := build(t, data, L2, Options{M: 8, EfConstruction: 32, Seed: 6})
	x.ConnectAll(nil)
	full := drain(t, x, q, SearchOptions{Ef: 10, RelaxedOrder: true}, 1<<30)
	capped := drain(t, x, q, SearchOptions{Ef: 10, RelaxedOrder: true, MaxMemory: 2048}, 1<<30)
	if len(capped) >= len(full) || len(capped) < 10 {
		t.Fatalf("memory-capped scan returned %d of %d", len(capped), len(full))
	}
}
