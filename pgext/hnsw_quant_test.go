package pgext_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// The quantization reloption through SQL at a dimension where it matters: every setting gives
// exact pgvector distances in order, recall@10 holds (binary with a wider beam, since sign bits
// rank coarsely), borealis_engine_info names the setting in force, and the graph file's size
// follows the codes (int8 adds a byte a component, binary a bit).
func TestHNSWQuantizationSettings(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true,
		Settings: map[string]string{"maintenance_work_mem": "'256MB'"}})
	conn := s.Connect("postgres")
	const n, dims, k = 3000, 768, 10
	vecs := hnswtest.Clustered(n+20, dims, 20, 51)
	loadVectors(t, conn, "docs", dims, vecs[:n], 1)
	queries := vecs[n:]
	truth := make([][]int, len(queries))
	for i, q := range queries {
		truth[i] = exactTopK(t, conn, "docs", "<=>", q, k)
	}
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_cosine_ops)")
	mustExec(t, conn, "SET enable_seqscan = off")
	graph := func() (setting, inUse string, bytes int64) {
		if err := conn.QueryRow(context.Background(), `SELECT g->>'quantization_setting', g->>'quantization', (g->>'bytes')::bigint
			FROM jsonb_array_elements(borealis_engine_info()->'graphs') g WHERE g->>'index' = 'docs_idx'`).Scan(&setting, &inUse, &bytes); err != nil {
			t.Fatalf("borealis_engine_info graphs: %v", err)
		}
		return
	}
	sizes := map[string]int64{}
	for _, c := range []struct {
		setting, want string
		ef            int
		minRecall     float64
	}{
		{"auto", "int8", 64, 0.95}, // 768 dimensions: auto is int8
		{"none", "none", 64, 0.95},
		{"int8", "int8", 64, 0.95},
		{"binary", "binary", 200, 0.9},
	} {
		if c.setting == "auto" {
			mustExec(t, conn, "ALTER INDEX docs_idx RESET (quantization)")
		} else {
			mustExec(t, conn, "ALTER INDEX docs_idx SET (quantization = "+c.setting+")")
		}
		mustExec(t, conn, "SET borealis.ef_search = "+strconv.Itoa(c.ef))
		r := recall(t, conn, "docs", "<=>", queries, truth, k)
		setting, inUse, bytes := graph()
		t.Logf("quantization %s (in use %s): recall@10 %.3f at ef_search %d, graph %d bytes", setting, inUse, r, c.ef, bytes)
		if setting != c.setting || inUse != c.want {
			t.Fatalf("quantization = %s: engine info says setting %q in use %q, want %q", c.setting, setting, inUse, c.want)
		}
		if r < c.minRecall {
			t.Fatalf("quantization = %s: recall@10 %.3f < %.2f", c.setting, r, c.minRecall)
		}
		for _, q := range queries[:3] {
			requireOrderedByRealDistance(t, conn, "<=>", q, 40)
		}
		sizes[inUse] = bytes
	}
	if !(sizes["binary"] < sizes["int8"] && sizes["none"] < sizes["int8"] && sizes["binary"] > sizes["none"]) {
		t.Fatalf("graph sizes do not follow the codes: %v", sizes)
	}
	requireChecked(t, s, "docs_idx")

	// halfvec walks int8 codes of its binary16 rows: recall against the float32 answers,
	// and the ORDER BY values in the exact order (rescored from the rows).
	mustExec(t, conn, "DROP INDEX docs_idx")
	mustExec(t, conn, "CREATE INDEX docs_half ON docs USING borealis_hnsw ((embedding::halfvec(768)) halfvec_cosine_ops) WITH (quantization = int8)")
	mustExec(t, conn, "SET borealis.ef_search = 64")
	const halfQuery = "SELECT id FROM docs ORDER BY embedding::halfvec(768) <=> $1::vector::halfvec(768) LIMIT 10"
	requireIndexScan(t, conn, "docs_half", halfQuery, vectorText(queries[0]))
	found := 0
	for i, q := range queries {
		got := map[int]bool{}
		for _, id := range queryIDs(t, conn, halfQuery, q) {
			got[id] = true
		}
		for _, id := range truth[i] {
			if got[id] {
				found++
			}
		}
	}
	var inUse string
	if err := conn.QueryRow(context.Background(), `SELECT g->>'quantization' FROM jsonb_array_elements(borealis_engine_info()->'graphs') g
		WHERE g->>'index' = 'docs_half'`).Scan(&inUse); err != nil || inUse != "int8" {
		t.Fatalf("docs_half: engine info says quantization %q (%v), want int8", inUse, err)
	}
	r := float64(found) / float64(k*len(queries))
	t.Logf("halfvec int8: recall@10 %.3f at ef_search 64", r)
	if r < 0.95 {
		t.Fatalf("halfvec int8: recall@10 %.3f < 0.95", r)
	}
	for _, q := range queries[:3] {
		rows, err := conn.Query(context.Background(), "SELECT (embedding::halfvec(768) <=> $1::vector::halfvec(768))::float8 FROM docs ORDER BY embedding::halfvec(768) <=> $1::vector::halfvec(768) LIMIT 40", vectorText(q))
		if err != nil {
			t.Fatal(err)
		}
		dists, err := pgx.CollectRows(rows, pgx.RowTo[float64])
		if err != nil || len(dists) != 40 {
			t.Fatalf("halfvec int8 scan: %d rows, %v", len(dists), err)
		}
		for i := 1; i < len(dists); i++ {
			if dists[i] < dists[i-1] {
				t.Fatalf("halfvec int8 scan: row %d's distance %g below row %d's %g", i, dists[i], i-1, dists[i-1])
			}
		}
	}
	requireChecked(t, s, "docs_half")
}
