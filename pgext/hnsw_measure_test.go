//go:build measure

package pgext_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// A measurement, not a test (go test -tags measure -run TestMeasureSharedGraph ./pgext/):
// first query on fresh connections and memory per connection, borealis_hnsw against pgvector's
// hnsw on the same data in the same server, with the shared graph present (the normal case),
// and with it removed before each connection (what every new backend paid before it existed).
// MEASURE_N and MEASURE_DIMS pick the table.

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func pssKB(t *testing.T, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func TestMeasureSharedGraph(t *testing.T) {
	n, dims := envInt("MEASURE_N", 100000), envInt("MEASURE_DIMS", 128)
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true, Settings: map[string]string{
		"shared_buffers": "'512MB'", "maintenance_work_mem": "'2GB'", "max_connections": "50"}})
	conn := s.Connect("postgres")
	vecs := hnswtest.Clustered(n+50, dims, 64, 21)
	loadVectors(t, conn, "tb", dims, vecs[:n], 0)
	mustExec(t, conn, "CREATE TABLE tp AS SELECT * FROM tb")
	mustExec(t, conn, "SET max_parallel_maintenance_workers = 1")
	start := time.Now()
	mustExec(t, conn, "CREATE INDEX ON tb USING borealis_hnsw (embedding vector_cosine_ops)")
	tb := time.Since(start)
	start = time.Now()
	mustExec(t, conn, "CREATE INDEX ON tp USING hnsw (embedding vector_cosine_ops)")
	tp := time.Since(start)
	mustExec(t, conn, "VACUUM ANALYZE tb")
	mustExec(t, conn, "VACUUM ANALYZE tp")
	t.Logf("%d x %d cosine: build borealis_hnsw %v, hnsw %v", n, dims, tb.Round(time.Millisecond), tp.Round(time.Millisecond))

	// serverPSS sums the PSS of the postmaster's children (kB).
	serverPSS := func() int {
		total := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(f) > 1 && f[1] == strconv.Itoa(s.PID()) {
				total += pssKB(t, pid)
			}
		}
		return total
	}
	run := func(table string, q []float32, removeGraph bool) (time.Duration, *pgx.Conn) {
		if removeGraph {
			for _, f := range graphFiles(t, s) {
				os.Remove(f)
			}
		}
		c, err := pgx.Connect(context.Background(), s.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(context.Background(), "SET enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if ids := topK(t, c, table, "<=>", q, 10); len(ids) != 10 {
			t.Fatalf("%s: %v", table, ids)
		}
		return time.Since(start), c
	}
	// Warm both once (the page cache, shared buffers, the graph file), and keep those
	// connections: the measure is what one more connection costs a server already serving the
	// index (a graph file already mapped by a backend is not charged again).
	_, c0 := run("tb", vecs[n], false)
	defer c0.Close(context.Background())
	_, c1 := run("tp", vecs[n], false)
	defer c1.Close(context.Background())
	const conns = 10
	for _, c := range []struct {
		name, table string
		remove      bool
	}{{"borealis_hnsw, shared graph", "tb", false}, {"pgvector hnsw", "tp", false}, {"borealis_hnsw, graph rebuilt per connection", "tb", true}} {
		var total, worst time.Duration
		time.Sleep(time.Second)
		base := serverPSS()
		var open []*pgx.Conn
		for i := 0; i < conns; i++ {
			d, cn := run(c.table, vecs[n+1+i], c.remove)
			open = append(open, cn)
			total += d
			worst = max(worst, d)
		}
		grown := serverPSS() - base
		for _, cn := range open {
			cn.Close(context.Background())
		}
		t.Logf("%-45s first query on a fresh connection: mean %v, worst %v; server PSS +%d kB per connection",
			c.name, (total / conns).Round(100*time.Microsecond), worst.Round(100*time.Microsecond), grown/conns)
	}
	for _, f := range graphFiles(t, s) {
		st, _ := os.Stat(f)
		t.Logf("graph file %s: %d MB", f, st.Size()>>20)
	}
}
