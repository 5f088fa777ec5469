package pgext_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// From 768 dimensions the engine traverses the graph with int8 copies of the vectors and
// rescores with float32 (engine/index.go, quantizedMinDims). Through SQL that path must keep
// recall, and the ORDER BY values it hands PostgreSQL must be the float32 distances, not int8
// estimates: the real distances of the rows, computed by pgvector in the select list, come out
// in non-decreasing order. The engine computes cosine on unit-length copies, as pgvector's own
// hnsw does, so two rows within float32 rounding (~1e-7) of each other may swap; an int8
// estimate is off by ~1e-3.
func TestHNSWHighDimQuantizedThroughSQL(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true,
		Settings: map[string]string{"maintenance_work_mem": "'256MB'"}})
	conn := s.Connect("postgres")
	const n, dims, k = 3000, 1024, 10
	vecs := hnswtest.Clustered(n+30, dims, 20, 7)
	loadVectors(t, conn, "docs", dims, vecs[:n], 1)
	queries := vecs[n:]

	for _, c := range []struct{ opclass, op string }{
		{"vector_l2_ops", "<->"}, {"vector_cosine_ops", "<=>"},
	} {
		t.Run(c.opclass, func(t *testing.T) {
			truth := make([][]int, len(queries))
			for i, q := range queries {
				truth[i] = exactTopK(t, conn, "docs", c.op, q, k)
			}
			index := "docs_" + c.opclass
			mustExec(t, conn, fmt.Sprintf("CREATE INDEX %s ON docs USING borealis_hnsw (embedding %s)", index, c.opclass))
			mustExec(t, conn, "SET borealis.ef_search = 64")
			mustExec(t, conn, "SET enable_seqscan = off")
			defer mustExec(t, conn, "RESET enable_seqscan")

			if got := recall(t, conn, "docs", c.op, queries, truth, k); got < 0.95 {
				t.Errorf("%s at %d dims: recall@%d = %.4f, want ≥ 0.95", c.opclass, dims, k, got)
			}
			for _, q := range queries[:5] {
				requireOrderedByRealDistance(t, conn, c.op, q, 40)
			}
			requireChecked(t, s, index)
			mustExec(t, conn, "DROP INDEX "+index)
		})
	}
}

func requireOrderedByRealDistance(t *testing.T, conn *pgx.Conn, op string, q []float32, limit int) {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		fmt.Sprintf("SELECT (embedding %s $1::vector)::float8 FROM docs ORDER BY embedding %s $1::vector LIMIT %d", op, op, limit),
		vectorText(q))
	if err != nil {
		t.Fatal(err)
	}
	dists, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		t.Fatal(err)
	}
	if len(dists) != limit {
		t.Fatalf("index scan returned %d rows, want %d", len(dists), limit)
	}
	const rounding = 1e-6
	for i := 1; i < len(dists); i++ {
		if dists[i] < dists[i-1]-rounding*max(1, dists[i-1]) {
			t.Fatalf("row %d's real distance %g is below row %d's %g: the index's ORDER BY values are not exact", i, dists[i], i-1, dists[i-1])
		}
	}
}
