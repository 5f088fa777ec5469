//go:build measure

package pgext_test

import (
	"context"
	"os"
	"slices"
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
//
// Whichever index is queried first after a restart pays ~100 ms more (the first connection to
// a just-started server), so the rounds are even (an odd MEASURE_ROUNDS is raised by one) and
// each index goes first in exactly half of them; the verdict is the ratio of the medians over
// all rounds, and the medians by position (first / second) are reported beside it.
func TestMeasureFirstQueryAfterRestart(t *testing.T) {
	n, dims, rounds := envInt("MEASURE_N", 100000), envInt("MEASURE_DIMS", 128), balancedRounds(envInt("MEASURE_ROUNDS", 6))
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
	// byPos[i][p]: index i's times (0 borealis_hnsw, 1 hnsw) when it went p-th (0 first).
	var tb, tp []time.Duration
	var byPos [2][2][]time.Duration
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
		byPos[0][r%2] = append(byPos[0][r%2], tb[r])
		byPos[1][1-r%2] = append(byPos[1][1-r%2], tp[r])
		t.Logf("round %d: first query after restart, borealis_hnsw %v, hnsw %v (%s first)", r,
			tb[r].Round(100*time.Microsecond), tp[r].Round(100*time.Microsecond), [2]string{"borealis_hnsw", "hnsw"}[r%2])
	}
	ms := func(d []time.Duration) time.Duration { return median(d).Round(100 * time.Microsecond) }
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d x %d cosine, %d restarts (each index first in %d): median first query borealis_hnsw %v, hnsw %v (%.2fx, target <= 2x); "+
		"by position, borealis_hnsw first %v / second %v, hnsw first %v / second %v; load %s",
		n, dims, rounds, rounds/2, ms(tb), ms(tp), float64(median(tb))/float64(median(tp)),
		ms(byPos[0][0]), ms(byPos[0][1]), ms(byPos[1][0]), ms(byPos[1][1]), load)
}

// balancedRounds is rounds made even (raised by one when odd, at least 2), so that with the
// order alternating each index is queried first equally often.
func balancedRounds(rounds int) int {
	return max(2, rounds+rounds%2)
}

// median of d (the mean of the two middle values for an even count); d is not changed.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
