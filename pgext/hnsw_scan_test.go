package pgext_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// Iterative scans with pgvector 0.8's semantics, through SQL: a selective WHERE still gets its
// full LIMIT, strict_order hands rows in exact distance order, relaxed_order may not but finds at
// least as many, and max_scan_tuples (elements visited) really stops a scan.
func TestHNSWIterativeScanFilteredLimit(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const n, dims = 10000, 32
	vecs := hnswtest.Clustered(n+20, dims, 20, 31)
	loadVectors(t, conn, "docs", dims, vecs[:n], 0)
	mustExec(t, conn, "ALTER TABLE docs ADD COLUMN cat int")
	// cat = id % 100: 10% of rows have cat < 10, 1% have cat = 7.
	mustExec(t, conn, "UPDATE docs SET cat = id % 100")
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_l2_ops)")
	mustExec(t, conn, "VACUUM ANALYZE docs")
	mustExec(t, conn, "SET enable_seqscan = off")
	queries := vecs[n:]

	filtered := func(where string, limit int) string {
		return fmt.Sprintf("SELECT id FROM docs WHERE %s ORDER BY embedding <-> $1::vector LIMIT %d", where, limit)
	}
	exact := func(where string, q []float32, limit int) []int {
		mustExec(t, conn, "BEGIN")
		mustExec(t, conn, "SET LOCAL enable_indexscan = off")
		mustExec(t, conn, "SET LOCAL enable_seqscan = on")
		defer mustExec(t, conn, "COMMIT")
		return queryIDs(t, conn, filtered(where, limit)+" -- exact", q)
	}
	distances := func(where string, q []float32, limit int) []float64 {
		rows, err := conn.Query(context.Background(),
			fmt.Sprintf("SELECT embedding <-> $1::vector FROM docs WHERE %s ORDER BY embedding <-> $1::vector LIMIT %d", where, limit),
			vectorText(q))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := pgx.CollectRows(rows, pgx.RowTo[float64])
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	for _, where := range []string{"cat < 10", "cat = 7"} {
		requireIndexScan(t, conn, "docs_idx", filtered(where, 10), vectorText(queries[0]))
		truth := make([][]int, len(queries))
		for i, q := range queries {
			truth[i] = exact(where, q, 10)
		}
		// Without iterative scan, ef_search (40) rows reach the filter: a 1% filter leaves
		// almost none of the LIMIT.
		mustExec(t, conn, "SET borealis.iterative_scan = off")
		short := 0
		for _, q := range queries {
			if len(queryIDs(t, conn, filtered(where, 10), q)) < 10 {
				short++
			}
		}
		if where == "cat = 7" && short == 0 {
			t.Fatalf("%s: every query got its LIMIT without iterative scan; the case proves nothing", where)
		}
		for _, mode := range []string{"strict_order", "relaxed_order"} {
			mustExec(t, conn, "SET borealis.iterative_scan = "+mode)
			found, total := 0, 0
			for i, q := range queries {
				got := queryIDs(t, conn, filtered(where, 10), q)
				if len(got) != 10 {
					t.Fatalf("%s %s query %d: %d rows, want the full LIMIT 10", mode, where, i, len(got))
				}
				for _, id := range truth[i] {
					if slices.Contains(got, id) {
						found++
					}
				}
				total += len(truth[i])
				if mode == "strict_order" {
					ds := distances(where, q, 10)
					for j := 1; j < len(ds); j++ {
						if ds[j] < ds[j-1] {
							t.Fatalf("strict_order %s query %d: distance %v after %v", where, i, ds[j], ds[j-1])
						}
					}
				}
			}
			r := float64(found) / float64(total)
			t.Logf("%s, %s: %d of %d queries short without iterative scan; recall@10 %.3f", where, mode, short, len(queries), r)
			if r < 0.9 {
				t.Fatalf("%s %s: recall@10 %.3f < 0.9", where, mode, r)
			}
		}
	}

	// max_scan_tuples counts elements visited, as pgvector's: with a filter no row passes, a
	// small budget stops the scan long before the table's end, and a larger one goes further.
	mustExec(t, conn, "SET borealis.iterative_scan = relaxed_order")
	handed := func(maxTuples int) int {
		mustExec(t, conn, fmt.Sprintf("SET borealis.max_scan_tuples = %d", maxTuples))
		var c int
		if err := conn.QueryRow(context.Background(),
			"SELECT count(*) FROM (SELECT id FROM docs ORDER BY embedding <-> $1::vector LIMIT 100000) s",
			vectorText(queries[0])).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	small, large, all := handed(200), handed(3000), handed(1000000)
	t.Logf("rows an iterative scan returned: max_scan_tuples 200 → %d, 3000 → %d, 1000000 → %d", small, large, all)
	if small >= large || large >= all || small < 40 {
		t.Fatalf("max_scan_tuples does not stop the scan: 200 → %d rows, 3000 → %d, 1000000 → %d", small, large, all)
	}
	if all < n*99/100 {
		t.Fatalf("relaxed_order with no budget returned %d of %d rows", all, n)
	}
	mustExec(t, conn, "RESET borealis.max_scan_tuples")
}

// An interrupt that is not a cancel (here pg_log_backend_memory_contexts, which sets
// InterruptPending and is handled by CHECK_FOR_INTERRUPTS without an error) stops the Go
// search early; the rows Go had already produced must still be returned. A scan spammed with
// such interrupts returns exactly the rows of an undisturbed one.
func TestHNSWScanKeepsRowsAcrossInterrupts(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const n, dims = 20000, 16
	vecs := hnswtest.Clustered(n+1, dims, 20, 32)
	loadVectors(t, conn, "docs", dims, vecs[:n], 0)
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_l2_ops)")
	mustExec(t, conn, "SET enable_seqscan = off")
	mustExec(t, conn, "SET borealis.iterative_scan = relaxed_order")
	mustExec(t, conn, "SET borealis.max_scan_tuples = 1000000")
	q := vecs[n]
	query := "SELECT id FROM docs ORDER BY embedding <-> $1::vector LIMIT 20000"
	requireIndexScan(t, conn, "docs_idx", query, vectorText(q))
	want := queryIDs(t, conn, query, q)
	if len(want) < n*99/100 {
		t.Fatalf("undisturbed scan returned %d of %d rows", len(want), n)
	}
	pid := backendPID(t, conn)

	spammer := s.Connect("postgres")
	var stop atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := spammer.Exec(context.Background(), "SELECT pg_log_backend_memory_contexts($1)", pid); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	runs := 0
	for runs < 5 || (sent.Load() < 200 && time.Now().Before(deadline)) {
		got := queryIDs(t, conn, query, q)
		runs++
		if !slices.Equal(got, want) {
			stop.Store(true)
			wg.Wait()
			missing := 0
			for _, id := range want {
				if !slices.Contains(got, id) {
					missing++
				}
			}
			t.Fatalf("run %d under interrupts: %d rows (want %d), %d of the undisturbed rows missing", runs, len(got), len(want), missing)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d scans of %d rows each, identical under %d memory-context interrupts", runs, len(want), sent.Load())
	if sent.Load() < 20 {
		t.Fatalf("only %d interrupts were sent: the case proves nothing", sent.Load())
	}
}
