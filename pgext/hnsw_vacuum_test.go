package pgext_test

import (
	"testing"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// VACUUM: delete 30% of the rows, VACUUM; the check is clean, the index never returns a deleted
// element (every entry it returns is a live row, by its own statistics), and recall on the
// remaining rows holds.
func TestHNSWVacuumKeepsGraphNavigable(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const n, dims, k = 10000, 64, 10
	vecs := hnswtest.Clustered(n+40, dims, 30, 4)
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
	requireIndexScan(t, conn, "docs_idx", "SELECT id FROM docs ORDER BY embedding <-> $1::vector LIMIT 10", vectorText(queries[0]))
	before := readIndexStats(t, conn, "docs_idx")
	for i, q := range queries {
		for _, id := range topK(t, conn, "docs", "<->", q, k) {
			if id%10 < 3 {
				t.Fatalf("query %d returned deleted row %d", i, id)
			}
		}
	}
	// Heap visibility alone would hide deleted rows whatever the index returned: look at the
	// index itself. Every entry it returned (idx_tup_read) led to a live row (idx_tup_fetch),
	// so VACUUM's tombstones are never handed out.
	after := readIndexStats(t, conn, "docs_idx")
	read, fetched := after.read-before.read, after.fetch-before.fetch
	t.Logf("%d queries: the index returned %d entries, %d live rows", len(queries), read, fetched)
	if after.scans-before.scans != int64(len(queries)) || read < int64(k*len(queries)) {
		t.Fatalf("%d queries made %d scans of docs_idx returning %d entries", len(queries), after.scans-before.scans, read)
	}
	if read != fetched {
		t.Fatalf("docs_idx returned %d entries but only %d were live rows: it hands out deleted elements", read, fetched)
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
