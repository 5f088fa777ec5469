//go:build measure

package pgext_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// A measurement, not a test (go test -tags measure -run TestMeasureFirstQueryAfterRestart
// ./pgext/): the first query after a clean server restart, borealis_hnsw (borealis.prewarm
// on, the default) against pgvector's hnsw, same data, same server. Each round stops the
// server, starts it, and as soon as it accepts connections times connect + one top-10 query
// on a new connection for each index, the order alternating between rounds. MEASURE_N,
// MEASURE_DIMS and MEASURE_ROUNDS pick the table and the rounds.
func TestMeasureFirstQueryAfterRestart(t *testing.T) {
	n, dims, rounds := envInt("MEASURE_N", 100000), envInt("MEASURE_DIMS", 128), envInt("MEASURE_ROUNDS", 5)
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true, Settings: map[string]string{
		"shared_buffers": "'512MB'", "maintenance_work_mem": "'2GB'"}})
	conn := s.Connect("postgres")
	vecs := hnswtest.Clustered(n+rounds*2+2, dims, 64, 21)
	loadVectors(t, conn, "tb", dims, vecs[:n], 0)
	mustExec(t, conn, "CREATE TABLE tp AS SELECT * FROM tb")
	mustExec(t, conn, "SET max_parallel_maintenance_workers = 1")
	mustExec(t, conn, "CREATE INDEX ON tb USING borealis_hnsw (embedding vector_cosine_ops)")
	mustExec(t, conn, "CREATE INDEX ON tp USING hnsw (embedding vector_cosine_ops)")
	mustExec(t, conn, "VACUUM ANALYZE tb")
	mustExec(t, conn, "VACUUM ANALYZE tp")
	conn.Close(context.Background())

	first := func(table string, q []float32) time.Duration {
		start := time.Now()
		cfg, err := pgx.ParseConfig(s.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["enable_seqscan"] = "off"
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if ids := topK(t, c, table, "<=>", q, 10); len(ids) != 10 {
			t.Fatalf("%s: %v", table, ids)
		}
		return time.Since(start)
	}
	var tb, tp []time.Duration
	for r := range rounds {
		stopServer(t, s)
		s.Restart()
		qb, qp := vecs[n+2*r], vecs[n+2*r+1]
		if r%2 == 0 {
			tb = append(tb, first("tb", qb))
			tp = append(tp, first("tp", qp))
		} else {
			tp = append(tp, first("tp", qp))
			tb = append(tb, first("tb", qb))
		}
		t.Logf("round %d: first query after restart, borealis_hnsw %v, hnsw %v", r, tb[r].Round(100*time.Microsecond), tp[r].Round(100*time.Microsecond))
	}
	med := func(d []time.Duration) time.Duration {
		s := append([]time.Duration(nil), d...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		return s[len(s)/2]
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d x %d cosine, %d restarts: median first query borealis_hnsw %v, hnsw %v (%.2fx); load %s",
		n, dims, rounds, med(tb).Round(100*time.Microsecond), med(tp).Round(100*time.Microsecond),
		float64(med(tb))/float64(med(tp)), load)
}
