package hnsw

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestDeleteKeepsRecallOnTheRest(t *testing.T) {
	all := clustered(10100, 64, 32, 5)
	data, queries := all[:10000], all[10000:]
	opts := Options{M: 12, EfConstruction: 64, Seed: 3}
	x := build(t, data, L2, opts)

	r := rand.New(rand.NewPCG(1, 2))
	deleted := make([]bool, len(data))
	for _, i := range r.Perm(len(data))[:len(data)*3/10] {
		deleted[i] = true
		if err := x.Delete(uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := x.Live(), len(data)-len(data)*3/10; got != want {
		t.Fatalf("Live() = %d, want %d", got, want)
	}
	const k, ef = 10, 32
	afterDelete := recallAt(t, x, data, queries, func(i int) bool { return !deleted[i] }, k, ef)

	var rest [][]float32
	for i, v := range data {
		if !deleted[i] {
			rest = append(rest, v)
		}
	}
	fresh := recallAt(t, build(t, rest, L2, opts), rest, queries, nil, k, ef)
	t.Logf("recall@%d ef=%d: after deleting 30%%: %.4f, fresh build of the rest: %.4f", k, ef, afterDelete, fresh)
	if afterDelete < fresh-0.02 {
		t.Fatalf("recall after deletes %.4f is more than 0.02 below a fresh build's %.4f", afterDelete, fresh)
	}
	// No deleted node may come back.
	for _, q := range queries {
		for _, res := range x.Search(q, k, ef) {
			if deleted[res.ID] {
				t.Fatalf("deleted node %d returned", res.ID)
			}
		}
	}
}

func TestDeleteEdgeCases(t *testing.T) {
	data := clustered(200, 8, 4, 1)
	x := build(t, data, Cosine, Options{M: 4, Seed: 1})
	if err := x.Delete(5000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting an unknown id: %v, want ErrNotFound", err)
	}
	changed, err := x.DeleteTracked(7)
	if err != nil || len(changed) == 0 {
		t.Fatalf("DeleteTracked(7) = %v, %v; want some repaired neighbours", changed, err)
	}
	for _, n := range changed {
		for l := 0; l <= x.Level(n); l++ {
			for _, e := range x.Neighbors(n, l) {
				if e == 7 {
					t.Fatalf("repaired node %d still links to deleted 7 at layer %d", n, l)
				}
			}
		}
	}
	if changed, err := x.DeleteTracked(7); err != nil || changed != nil {
		t.Fatalf("second delete = %v, %v; want a no-op", changed, err)
	}
	if err := x.Add(7, data[7]); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("re-adding a deleted id: %v, want ErrDuplicateID", err)
	}
	// Delete everything, including every entry point in turn: searches then
	// return nothing, without error.
	for id := range uint32(len(data)) {
		if err := x.Delete(id); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := x.SearchInto(nil, data[0], 5, 20); err != nil || len(res) != 0 {
		t.Fatalf("search on an all-deleted graph = %v, %v", res, err)
	}
}

func TestDeletedEntryPointIsReplaced(t *testing.T) {
	data := clustered(500, 8, 4, 2)
	x := build(t, data, L2, Options{M: 4, Seed: 5})
	ep, _, _ := x.EntryPoint()
	if err := x.Delete(ep); err != nil {
		t.Fatal(err)
	}
	nep, lvl, ok := x.EntryPoint()
	if !ok || nep == ep || x.IsDeleted(nep) || x.Level(nep) != lvl {
		t.Fatalf("entry point after deleting %d: %d level %d ok=%v", ep, nep, lvl, ok)
	}
	if got := x.Search(data[1], 1, 40); len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("search for an indexed vector after entry deletion = %v", got)
	}
}
