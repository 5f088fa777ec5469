package pgext_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// Growth while scanning: with borealis.graph_spare = 6 a graph file has room for 7 more
// elements, so every few inserts one outgrows it and the file is rebuilt bigger and renamed
// into place, while scanners in other backends keep searching (their old mapping, or the new
// one). Every scan must return its 10 rows. Before the fix a search could reach an element
// being inserted through an upper layer before its layer-0 list was written, and return no
// rows (seen about once in 23,000 scans; first taken for a rebuild problem). Bounded: it stops after 400 rebuilds or 30 s.
func TestHNSWScansWhileGraphFileGrows(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true,
		Settings: map[string]string{"borealis.graph_spare": "6"}})
	conn := s.Connect("postgres")
	const base, dims = 300, 16
	vecs := hnswtest.Clustered(base+20000, dims, 10, 11)
	loadVectors(t, conn, "grow", dims, vecs[:base], 0)
	mustExec(t, conn, "CREATE INDEX grow_idx ON grow USING borealis_hnsw (embedding vector_l2_ops)")
	const scanSQL = "SELECT id FROM grow ORDER BY embedding <-> $1::vector LIMIT 10"
	mustExec(t, conn, "SET enable_seqscan = off")
	requireIndexScan(t, conn, "grow_idx", scanSQL, vectorText(vecs[0]))
	before := readIndexStats(t, conn, "grow_idx")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		next            atomic.Int64
		inserted, scans atomic.Int64
		short           atomic.Int64
		exampleMu       sync.Mutex
		example         error
	)
	next.Store(base)
	clients := newClientPool(ctx, s.DSN("postgres"))
	const rebuildEvery = 7
	for range 2 {
		clients.loop(func(c *pgx.Conn) error {
			id := int(next.Add(1) - 1)
			if id >= len(vecs) || id-base >= 400*rebuildEvery {
				cancel()
				return nil
			}
			_, err := c.Exec(ctx, "INSERT INTO grow VALUES ($1, $2::vector)", id, vectorText(vecs[id]))
			if err == nil {
				inserted.Add(1)
			}
			return err
		})
	}
	for range 3 {
		clients.loop(func(c *pgx.Conn) error {
			// Near the rows being inserted: a search then tends to pass through the new
			// element before it is published.
			q := vecs[max(base, int(next.Load())-1-int(scans.Load()%3))]
			rows, err := c.Query(ctx, scanSQL, vectorText(q))
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err != nil {
				return err
			}
			if len(ids) != 10 {
				short.Add(1)
				exampleMu.Lock()
				if example == nil {
					example = fmt.Errorf("a scan returned %d rows after %d inserts", len(ids), inserted.Load())
				}
				exampleMu.Unlock()
			}
			scans.Add(1)
			return nil
		})
	}
	if err := clients.wait(); err != nil {
		t.Fatalf("a client failed: %v", err)
	}
	t.Logf("%d inserts (about %d file rebuilds) and %d scans", inserted.Load(), inserted.Load()/rebuildEvery, scans.Load())
	if short.Load() > 0 {
		t.Fatalf("%d of %d scans returned fewer than 10 rows while the graph file grew; first: %v", short.Load(), scans.Load(), example)
	}
	if inserted.Load() < 20*rebuildEvery || scans.Load() < 200 {
		t.Fatalf("too little work to prove anything: %d inserts, %d scans", inserted.Load(), scans.Load())
	}
	after := waitIndexStats(t, conn, "grow_idx", func(st indexStats) bool { return st.scans-before.scans >= scans.Load() })
	if got := after.scans - before.scans; got < scans.Load() {
		t.Fatalf("grow_idx was scanned %d times for %d reader queries", got, scans.Load())
	}
	requireChecked(t, s, "grow_idx")
}
