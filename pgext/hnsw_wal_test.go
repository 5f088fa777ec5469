package pgext_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// WAL: a streaming standby replays a build, inserts and a VACUUM and answers like the primary;
// kill -9 during inserts loses no committed row.

func waitReplayed(t *testing.T, primary, standby *pgtest.Server) {
	t.Helper()
	lsn := primary.QueryValue("postgres", "SELECT pg_current_wal_insert_lsn()::text")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if standby.QueryValue("postgres", "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn) == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("standby did not replay up to %s within 60 s", lsn)
}

func TestHNSWStreamingReplica(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const dims = 32
	vecs := hnswtest.Clustered(6000+30, dims, 20, 2)
	queries := vecs[6000:]
	loadVectors(t, conn, "docs", dims, vecs[:4000], 1)
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_l2_ops)")

	standby := s.StartStandby("standby")
	sconn := standby.Connect("postgres")
	for _, c := range []*pgx.Conn{conn, sconn} {
		mustExec(t, c, "SET enable_seqscan = off")
		mustExec(t, c, "SET borealis.ef_search = 100")
	}
	compare := func(stage string) {
		t.Helper()
		waitReplayed(t, s, standby)
		for i, q := range queries {
			p := topK(t, conn, "docs", "<->", q, 10)
			r := topK(t, sconn, "docs", "<->", q, 10)
			if !slices.Equal(p, r) {
				t.Fatalf("%s: query %d: primary %v, standby %v", stage, i, p, r)
			}
			if len(p) != 10 {
				t.Fatalf("%s: query %d: %d rows", stage, i, len(p))
			}
		}
		requireChecked(t, standby, "docs_idx")
	}
	compare("after build") // also warms the standby's cache, so the next stages replay changes into it
	// The standby derives its own graph file from its replayed pages (pg_basebackup skips the
	// directory: a copy would be worth nothing there).
	standbyGraph := onlyGraphFile(t, standby)

	// Inserts: a few at a time (the standby's cache replays the change ring) and many in one
	// transaction (the ring wraps, the cache reloads).
	for i := 4000; i < 4020; i++ {
		mustExec(t, conn, "INSERT INTO docs VALUES ($1, $2::vector)", i+1, vectorText(vecs[i]))
	}
	compare("after single inserts")
	loadVectors(t, conn, "staging", dims, vecs[4020:6000], 4021)
	mustExec(t, conn, "INSERT INTO docs SELECT * FROM staging")
	compare("after bulk insert")

	mustExec(t, conn, "DELETE FROM docs WHERE id % 3 = 0")
	mustExec(t, conn, "VACUUM docs")
	compare("after VACUUM")
	requireChecked(t, s, "docs_idx")
	for i, q := range queries {
		for _, id := range topK(t, sconn, "docs", "<->", q, 10) {
			if id%3 == 0 {
				t.Fatalf("query %d: standby returned deleted row %d", i, id)
			}
		}
	}

	// A graph file carried over from another data directory (as a restored backup of the
	// primary would bring it) is never trusted: same name, same build, but not this node's.
	primaryGraph := onlyGraphFile(t, s)
	mustExec(t, conn, "INSERT INTO docs VALUES (100000, $1::vector)", vectorText(queries[0]))
	mustExec(t, conn, "SELECT 1 FROM docs ORDER BY embedding <-> $1::vector LIMIT 1", vectorText(queries[0]))
	waitReplayed(t, s, standby)
	stopServer(t, standby)
	data, err := os.ReadFile(primaryGraph)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(primaryGraph) != filepath.Base(standbyGraph) {
		t.Fatalf("primary and standby name the graph differently: %s, %s", primaryGraph, standbyGraph)
	}
	if err := os.WriteFile(standbyGraph, data, 0o600); err != nil {
		t.Fatal(err)
	}
	planted := inode(t, standbyGraph)
	standby.Restart()
	sconn = standby.Connect("postgres")
	mustExec(t, sconn, "SET enable_seqscan = off")
	mustExec(t, sconn, "SET borealis.ef_search = 100")
	if got := topK(t, sconn, "docs", "<->", queries[0], 1); len(got) != 1 || got[0] != 100000 {
		t.Fatalf("standby after a planted graph file: %v", got)
	}
	if inode(t, onlyGraphFile(t, standby)) == planted {
		t.Fatal("the standby trusted a graph file copied from the primary")
	}
	compare("after a planted graph file")

	// After promotion the prewarm worker maps every graph once more.
	prewarms := func() int {
		log, _ := os.ReadFile(standby.LogFile)
		return strings.Count(string(log), `borealis prewarm: graph of index "docs_idx" mapped`)
	}
	before := prewarms()
	mustExec(t, sconn, "SELECT pg_promote()")
	deadline := time.Now().Add(60 * time.Second)
	for prewarms() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no prewarm of docs_idx within 60 s of promotion (%d before)", before)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := topK(t, sconn, "docs", "<->", queries[0], 1); len(got) != 1 || got[0] != 100000 {
		t.Fatalf("promoted standby: %v", got)
	}
}

func TestHNSWKill9DuringInserts(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	const dims = 24
	vecs := hnswtest.Clustered(20000, dims, 16, 3)
	loadVectors(t, conn, "docs", dims, vecs[:1000], 0)
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_cosine_ops)")

	var (
		mu        sync.Mutex
		committed []int
		next      atomic.Int64
		wg        sync.WaitGroup
	)
	next.Store(1000)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(context.Background(), s.DSN("postgres"))
			if err != nil {
				return
			}
			defer c.Close(context.Background())
			for {
				id := int(next.Add(1) - 1)
				if id >= len(vecs) {
					return
				}
				if _, err := c.Exec(context.Background(), "INSERT INTO docs VALUES ($1, $2::vector)", id, vectorText(vecs[id])); err != nil {
					return // the server died
				}
				mu.Lock()
				committed = append(committed, id)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := s.Kill9(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s.Restart()
	t.Logf("%d rows committed by inserts before kill -9", len(committed))
	if len(committed) < 50 {
		t.Fatalf("only %d inserts committed before the kill: the test proves nothing", len(committed))
	}

	requireChecked(t, s, "docs_idx")
	conn = s.Connect("postgres")
	mustExec(t, conn, "SET enable_seqscan = off")
	mustExec(t, conn, "SET borealis.ef_search = 100")
	// Findable: an iterative scan through the index reaches every committed row (the filter
	// keeps the primary key out of the plan, so only borealis_hnsw can return it) ...
	// relaxed_order: strict_order skips elements found after a closer one was returned, so only
	// relaxed_order promises to reach every element.
	mustExec(t, conn, "SET borealis.iterative_scan = relaxed_order")
	mustExec(t, conn, "SET borealis.max_scan_tuples = 100000")
	var missing []int
	ids := append(committed, 0, 500, 999)
	for _, id := range ids {
		var got int
		err := conn.QueryRow(context.Background(),
			"SELECT id FROM docs WHERE id + 0 = $1 ORDER BY embedding <=> $2::vector LIMIT 1", id, vectorText(vecs[id])).Scan(&got)
		if err != nil || got != id {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d committed rows not reachable through the index after kill -9: %v", len(missing), missing)
	}
	// ... and a plain search for a row's own vector ranks it in the top 10 (HNSW is approximate:
	// a rare element is reached late, so this is a rate). The bound comes from the measured
	// distribution of this workload at ~9,000 committed rows (i10a, stop 13, nice 19 on a
	// loaded 2-core machine): 0-3 rows missed in 7 runs with every dropped element searched by
	// Reconnect; with stop 12's back-link skip, which cost recall, 0-26 in 9 runs (with or
	// without the kill) and 123 of 10,194 in a CI run. 3 + 0.1% of the rows (12 at 9,000) is
	// four times the worst run seen without the skip, and the skip's bad runs fail it.
	mustExec(t, conn, "RESET borealis.iterative_scan")
	var missed []int
	for _, id := range ids {
		if !slices.Contains(topK(t, conn, "docs", "<=>", vecs[id], 10), id) {
			missed = append(missed, id)
		}
	}
	t.Logf("%d of %d rows in the top 10 for their own vector (missed: %v)", len(ids)-len(missed), len(ids), missed)
	if allowed := 3 + len(ids)/1000; len(missed) > allowed {
		t.Fatalf("%d of %d rows not in the top 10 for their own vector after kill -9 (at most %d allowed): %v",
			len(missed), len(ids), allowed, missed)
	}
	// The index keeps working after recovery.
	mustExec(t, conn, "INSERT INTO docs VALUES (100000, $1::vector)", vectorText(vecs[19999]))
	if got := topK(t, conn, "docs", "<=>", vecs[19999], 1); len(got) != 1 || got[0] != 100000 && got[0] != 19999 {
		t.Fatalf("insert after recovery not found: %v", got)
	}
	requireChecked(t, s, "docs_idx")
}
