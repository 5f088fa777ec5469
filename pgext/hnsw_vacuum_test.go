package pgext_test

import (
	"testing"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// VACUUM: delete 30% of the rows, VACUUM; the check is clean, deleted rows never come back,
// and recall on the remaining rows holds.
func TestHNSWVacuumKeepsGraphNavigable(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const n, dims, k = 10000, 64, 10
	vecs := clustered(n+40, dims, 30, 4)
	queries := vecs[n:]
	loadVectors(t, conn, "docs", dims, vecs[:n], 1)
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_l2_ops)")
	mustExec(t, conn, "DELETE FROM docs WHERE id % 10 < 3")
	mustExec(t, conn, "VACUUM docs")
	requireChecked(t, s, "docs_idx")
	if got := s.QueryValue("postgres", "SELECT count(*) FROM docs"); got != "7000" {
		t.Fatalf("%s rows left, want 7000", got)
	}

	truth := make([][]int, len(queries))
	for i, q := range queries {
		truth[i] = exactTopK(t, conn, "docs", "<->", q, k)
	}
	mustExec(t, conn, "SET enable_seqscan = off")
	mustExec(t, conn, "SET borealis.ef_search = 64")
	for i, q := range queries {
		for _, id := range topK(t, conn, "docs", "<->", q, k) {
			if id%10 < 3 {
				t.Fatalf("query %d returned deleted row %d", i, id)
			}
		}
	}
	got := recall(t, conn, "docs", "<->", queries, truth, k)
	t.Logf("recall@%d after deleting 30%% and VACUUM: %.4f", k, got)
	if got < 0.95 {
		t.Fatalf("recall@%d after VACUUM = %.4f, want ≥ 0.95", k, got)
	}

	// New rows reuse the heap's freed TIDs: they must be found, and the tombstones holding the
	// old TIDs must never be returned in their place.
	loadVectors(t, conn, "staging", dims, queries, 100001)
	mustExec(t, conn, "INSERT INTO docs SELECT * FROM staging")
	for i, q := range queries {
		if ids := topK(t, conn, "docs", "<->", q, 1); len(ids) != 1 || ids[0] != 100001+i {
			t.Fatalf("query %d: want the row just inserted with its vector (%d), got %v", i, 100001+i, ids)
		}
	}
	requireChecked(t, s, "docs_idx")
}
