package pgext_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// Recall through SQL: 20,000 × 128 clustered vectors, each operator class built once,
// recall@10 at borealis.ef_search = 64 against the server's own exact answers.
func TestHNSWRecallThroughSQL(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true,
		Settings: map[string]string{"maintenance_work_mem": "'256MB'"}})
	conn := s.Connect("postgres")
	const n, dims, k = 20000, 128, 10
	vecs := hnswtest.Clustered(n+50, dims, 40, 1)
	loadVectors(t, conn, "docs", dims, vecs[:n], 1)
	queries := vecs[n:]

	for _, c := range []struct{ opclass, op string }{
		{"vector_l2_ops", "<->"}, {"vector_cosine_ops", "<=>"}, {"vector_ip_ops", "<#>"},
	} {
		t.Run(c.opclass, func(t *testing.T) {
			truth := make([][]int, len(queries))
			for i, q := range queries {
				truth[i] = exactTopK(t, conn, "docs", c.op, q, k)
			}
			index := "docs_" + c.opclass
			start := time.Now()
			mustExec(t, conn, fmt.Sprintf("CREATE INDEX %s ON docs USING borealis_hnsw (embedding %s) WITH (m = 16, ef_construction = 64)", index, c.opclass))
			t.Logf("%s: build of %d × %d took %v", c.opclass, n, dims, time.Since(start))
			mustExec(t, conn, "SET borealis.ef_search = 64")
			mustExec(t, conn, "SET enable_seqscan = off")
			got := recall(t, conn, "docs", c.op, queries, truth, k)
			t.Logf("%s: recall@%d at ef_search 64 = %.4f", c.opclass, k, got)
			if got < 0.95 {
				t.Errorf("%s: recall@%d = %.4f, want ≥ 0.95", c.opclass, k, got)
			}
			requireChecked(t, s, index)
			mustExec(t, conn, "DROP INDEX "+index)
			mustExec(t, conn, "RESET enable_seqscan")
		})
	}
}
