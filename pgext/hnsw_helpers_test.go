package pgext_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// Helpers shared by the borealis_hnsw integration tests: clustered synthetic data loaded with
// COPY, exact answers computed by the server itself (a sequential scan), and recall@k through
// SQL.

// vectorText is v in pgvector's text form.
func vectorText(v []float32) string { return pgvector.NewVector(v).String() }

// loadVectors creates table (id int primary key, embedding vector(dims)) holding vecs with ids
// starting at firstID.
func loadVectors(t testing.TB, conn *pgx.Conn, table string, dims int, vecs [][]float32, firstID int) {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (id int PRIMARY KEY, embedding vector(%d))", table, dims)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, v := range vecs {
		fmt.Fprintf(&b, "%d\t%s\n", firstID+i, vectorText(v))
	}
	if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(b.String()), "COPY "+table+" (id, embedding) FROM STDIN"); err != nil {
		t.Fatalf("COPY into %s: %v", table, err)
	}
}

// topK runs `SELECT id FROM table ORDER BY embedding <op> q LIMIT k`.
func topK(t testing.TB, conn *pgx.Conn, table, op string, q []float32, k int) []int {
	t.Helper()
	return queryIDs(t, conn, fmt.Sprintf("SELECT id FROM %s ORDER BY embedding %s $1::vector LIMIT %d", table, op, k), q)
}

func queryIDs(t testing.TB, conn *pgx.Conn, sql string, q []float32) []int {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, vectorText(q))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// exactTopK is topK by sequential scan, whatever the session's planner settings: the ground
// truth. Its statement text differs from topK's on purpose: pgx prepares and caches each
// statement, and after five runs PostgreSQL may keep a generic plan that a later SET does not
// invalidate, so topK would go on running this sequential scan and every recall would be 1.
func exactTopK(t testing.TB, conn *pgx.Conn, table, op string, q []float32, k int) []int {
	t.Helper()
	mustExec(t, conn, "BEGIN")
	mustExec(t, conn, "SET LOCAL enable_indexscan = off")
	mustExec(t, conn, "SET LOCAL enable_seqscan = on")
	defer mustExec(t, conn, "COMMIT")
	return queryIDs(t, conn, fmt.Sprintf("SELECT id FROM %s ORDER BY embedding %s $1::vector LIMIT %d -- exact", table, op, k), q)
}

func mustExec(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// hnswScans is the number of scans of table's borealis_hnsw indexes so far, this backend's
// included.
func hnswScans(t testing.TB, conn *pgx.Conn, table string) int64 {
	t.Helper()
	mustExec(t, conn, "SELECT pg_stat_force_next_flush()")
	var n int64
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(s.idx_scan), 0)::bigint
		FROM pg_stat_user_indexes s JOIN pg_class c ON c.oid = s.indexrelid JOIN pg_am a ON a.oid = c.relam
		WHERE s.relid = $1::regclass AND a.amname = 'borealis_hnsw'`, table).Scan(&n); err != nil {
		t.Fatalf("index statistics of %s: %v", table, err)
	}
	return n
}

// recall is the mean fraction of each exact top k found by the index. It fails unless every
// query was a scan of a borealis_hnsw index: a sequential scan would score 1 whatever the
// index does.
func recall(t testing.TB, conn *pgx.Conn, table, op string, queries [][]float32, truth [][]int, k int) float64 {
	t.Helper()
	scans := hnswScans(t, conn, table)
	defer func() {
		if got := hnswScans(t, conn, table) - scans; got != int64(len(queries)) {
			t.Fatalf("recall ran %d queries on %s but its borealis_hnsw indexes were scanned %d times", len(queries), table, got)
		}
	}()
	found, total := 0, 0
	for i, q := range queries {
		got := map[int]bool{}
		for _, id := range topK(t, conn, table, op, q, k) {
			got[id] = true
		}
		for _, id := range truth[i] {
			if got[id] {
				found++
			}
		}
		total += len(truth[i])
	}
	if total == 0 {
		t.Fatal("no ground truth")
	}
	return float64(found) / float64(total)
}

// requireChecked fails the test when borealis_hnsw_check reports any problem for index.
func requireChecked(t testing.TB, s *pgtest.Server, index string) {
	t.Helper()
	conn := s.Connect("postgres")
	rows, err := conn.Query(context.Background(), "SELECT * FROM borealis_hnsw_check($1)", index)
	if err != nil {
		t.Fatal(err)
	}
	problems, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("borealis_hnsw_check(%s) on %s: %d problems:\n%s", index, s.DSN("postgres"), len(problems), strings.Join(problems, "\n"))
	}
}

func norm(v []float32) float64 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	return math.Sqrt(s)
}

// indexStats are an index's cumulative counters from pg_stat_user_indexes.
type indexStats struct {
	scans int64 // idx_scan: scans started on the index
	read  int64 // idx_tup_read: entries the index returned
	fetch int64 // idx_tup_fetch: live heap rows those entries led to
}

// readIndexStats flushes this backend's pending statistics and reads index's counters. Other
// backends flush on their own schedule (at most a second late, and at exit): use waitIndexStats
// for their work.
func readIndexStats(t testing.TB, conn *pgx.Conn, index string) indexStats {
	t.Helper()
	ctx := context.Background()
	mustExec(t, conn, "SELECT pg_stat_force_next_flush()")
	mustExec(t, conn, "SELECT pg_stat_clear_snapshot()")
	var st indexStats
	if err := conn.QueryRow(ctx, `SELECT idx_scan, idx_tup_read, idx_tup_fetch FROM pg_stat_user_indexes
		WHERE indexrelid = $1::regclass`, index).Scan(&st.scans, &st.read, &st.fetch); err != nil {
		t.Fatalf("statistics of %s: %v", index, err)
	}
	return st
}

// waitIndexStats polls index's counters until ok accepts them, for up to 30 s.
func waitIndexStats(t testing.TB, conn *pgx.Conn, index string, ok func(indexStats) bool) indexStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := readIndexStats(t, conn, index)
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requireIndexScan fails unless the plan of query (with args) is an index scan on index.
func requireIndexScan(t testing.TB, conn *pgx.Conn, index, query string, args ...any) {
	t.Helper()
	rows, err := conn.Query(context.Background(), "EXPLAIN (COSTS OFF) "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "Index Scan using "+index+" ") {
		t.Fatalf("%s does not use %s:\n%s", query, index, plan)
	}
}
