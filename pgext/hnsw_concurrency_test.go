package pgext_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// Concurrency: 4 clients insert while 4 query for 15 s. Inserts run at the same time (pg_locks
// shows several holding the index's insert lock at once), no statement fails, every reader sees
// full result lists from the index (its scan counter grows by at least the readers' queries),
// and afterwards the check is clean (it includes every live element being reachable from the
// entry point), every row is found by the index, and recall holds on the final table.
func TestHNSWConcurrentInsertsAndScans(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const base, dims, k = 5000, 48, 10
	vecs := hnswtest.Clustered(40000, dims, 25, 5)
	loadVectors(t, conn, "docs", dims, vecs[:base], 0)
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_l2_ops)")
	const scanSQL = "SELECT id FROM docs ORDER BY embedding <-> $1::vector LIMIT 10"
	mustExec(t, conn, "SET enable_seqscan = off")
	requireIndexScan(t, conn, "docs_idx", scanSQL, vectorText(vecs[0]))
	before := readIndexStats(t, conn, "docs_idx")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var (
		next            atomic.Int64
		inserted, scans atomic.Int64
	)
	next.Store(base)
	clients := newClientPool(ctx, s.DSN("postgres"))
	for range 4 {
		clients.loop(func(c *pgx.Conn) error {
			id := int(next.Add(1) - 1)
			if id >= len(vecs)-100 {
				time.Sleep(10 * time.Millisecond)
				return nil
			}
			_, err := c.Exec(ctx, "INSERT INTO docs VALUES ($1, $2::vector)", id, vectorText(vecs[id]))
			if err == nil {
				inserted.Add(1)
			}
			return err
		})
		clients.loop(func(c *pgx.Conn) error {
			q := vecs[len(vecs)-1-int(scans.Load()%100)]
			rows, err := c.Query(ctx, scanSQL, vectorText(q))
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err != nil {
				return err
			}
			if len(ids) != 10 {
				t.Errorf("a scan during inserts returned %d rows", len(ids))
			}
			scans.Add(1)
			return nil
		})
	}
	// Inserts run concurrently (each holds the meta page's lock in RowExclusiveLock while it
	// inserts): sample pg_locks for two or more granted at once.
	var overlap atomic.Int64
	clients.loop(func(c *pgx.Conn) error {
		var n int64
		err := c.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'page' AND granted
			AND relation = 'docs_idx'::regclass AND page = 0 AND mode = 'RowExclusiveLock'`).Scan(&n)
		if err != nil {
			return err
		}
		if n > overlap.Load() {
			overlap.Store(n)
		}
		time.Sleep(2 * time.Millisecond)
		return nil
	})
	if err := clients.wait(); err != nil {
		t.Fatalf("a client failed: %v", err)
	}
	t.Logf("%d inserts and %d scans in 15 s; at most %d inserts at once", inserted.Load(), scans.Load(), overlap.Load())
	if overlap.Load() < 2 {
		t.Fatalf("never saw two inserts into docs_idx at once (at most %d): inserts are serialised", overlap.Load())
	}
	if inserted.Load() < 100 || scans.Load() < 100 {
		t.Fatalf("too little work to prove anything: %d inserts, %d scans", inserted.Load(), scans.Load())
	}
	// Every reader query was an index scan on docs_idx (the readers' backends flush their
	// statistics within a second, and when they exit).
	after := waitIndexStats(t, conn, "docs_idx", func(st indexStats) bool { return st.scans-before.scans >= scans.Load() })
	if got := after.scans - before.scans; got < scans.Load() {
		t.Fatalf("docs_idx was scanned %d times for %d reader queries: the readers did not use the index", got, scans.Load())
	}
	requireChecked(t, s, "docs_idx")

	// Every row is reachable: an iterative scan through the index returns each of them.
	var rows, found int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM docs").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "SET borealis.iterative_scan = relaxed_order")
	mustExec(t, conn, fmt.Sprintf("SET borealis.max_scan_tuples = %d", 4*rows))
	mustExec(t, conn, "SET work_mem = '256MB'")
	mustExec(t, conn, "SET borealis.scan_mem_multiplier = 100")
	const allSQL = "SELECT count(DISTINCT id) FROM (SELECT id FROM docs ORDER BY embedding <-> $1::vector LIMIT 1000000) s"
	requireIndexScan(t, conn, "docs_idx", allSQL, vectorText(vecs[0]))
	if err := conn.QueryRow(context.Background(), allSQL, vectorText(vecs[0])).Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != rows {
		t.Fatalf("an index scan reached %d of %d rows after concurrent inserts", found, rows)
	}
	mustExec(t, conn, "SET borealis.iterative_scan = off")

	queries := vecs[len(vecs)-50:]
	truth := make([][]int, len(queries))
	for i, q := range queries {
		truth[i] = exactTopK(t, conn, "docs", "<->", q, k)
	}
	mustExec(t, conn, "SET borealis.ef_search = 64")
	requireIndexScan(t, conn, "docs_idx", scanSQL, vectorText(queries[0]))
	got := recall(t, conn, "docs", "<->", queries, truth, k)
	t.Logf("recall@%d after concurrent inserts: %.4f", k, got)
	if got < 0.95 {
		t.Fatalf("recall@%d = %.4f after concurrent inserts, want ≥ 0.95", k, got)
	}
}
