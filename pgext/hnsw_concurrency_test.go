package pgext_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// Concurrency: 4 clients insert while 4 query for 15 s. No statement fails, every reader sees
// full result lists from the index (its scan counter grows by at least the readers' queries),
// and afterwards the check is clean and recall through the index holds on the final table.
func TestHNSWConcurrentInsertsAndScans(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const base, dims, k = 5000, 48, 10
	vecs := clustered(40000, dims, 25, 5)
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
		wg              sync.WaitGroup
		errMu           sync.Mutex
		firstErr        error
	)
	next.Store(base)
	report := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	worker := func(body func(c *pgx.Conn) error) {
		defer wg.Done()
		c, err := pgx.Connect(context.Background(), s.DSN("postgres"))
		if err != nil {
			report(err)
			return
		}
		defer c.Close(context.Background())
		// Readers must not fall back to a sequential scan: that would pass whatever the index did.
		if _, err := c.Exec(ctx, "SET enable_seqscan = off"); err != nil {
			report(err)
			return
		}
		for ctx.Err() == nil {
			if err := body(c); err != nil && ctx.Err() == nil {
				report(err)
				return
			}
		}
	}
	for range 4 {
		wg.Add(2)
		go worker(func(c *pgx.Conn) error {
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
		go worker(func(c *pgx.Conn) error {
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
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("a client failed: %v", firstErr)
	}
	t.Logf("%d inserts and %d scans in 15 s", inserted.Load(), scans.Load())
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
