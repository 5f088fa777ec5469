package ann

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/borealisdb/borealis/bench/dataset"
	"github.com/borealisdb/borealis/bench/groundtruth"
)

// Point is one ef setting of one index.
type Point struct {
	Ef     int     `json:"ef"`
	Recall float64 `json:"recall"`
	// One client, queries back to back.
	QPS   float64 `json:"qps_1"`
	P50ms float64 `json:"p50_ms_1"`
	P99ms float64 `json:"p99_ms_1"`
	// Clients concurrent clients sharing the query list.
	Clients int     `json:"clients"`
	QPSN    float64 `json:"qps_n"`
	P50Nms  float64 `json:"p50_ms_n"`
	P99Nms  float64 `json:"p99_ms_n"`
}

const stmtName = "bench_knn"

// sweeper holds the benchmark's client connections, each with the k-NN query prepared.
type sweeper struct {
	conns   []*pgx.Conn
	d       *dataset.Dataset
	truth   *groundtruth.Truth
	queries []any
	k       int
	element string
}

func newSweeper(ctx context.Context, dsn string, d *dataset.Dataset, truth *groundtruth.Truth, cfg *Config, element string) (*sweeper, error) {
	s := &sweeper{d: d, truth: truth, k: cfg.K, element: element}
	for i := 0; i < d.NQ(); i++ {
		s.queries = append(s.queries, queryValue(d, i))
	}
	sql := knnSQL(element, d.Metric, d.Dim, cfg.K)
	for i := 0; i < cfg.Clients; i++ {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		s.conns = append(s.conns, conn)
		if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
			s.close()
			return nil, err
		}
		// An ANN benchmark measures the index: the planner may not fall back to a sequential
		// scan on small tables, and JIT compilation would only add noise.
		for _, set := range []string{"SET enable_seqscan = off", "SET jit = off"} {
			if _, err := conn.Exec(ctx, set); err != nil {
				s.close()
				return nil, err
			}
		}
		if _, err := conn.Prepare(ctx, stmtName, sql); err != nil {
			s.close()
			return nil, fmt.Errorf("preparing %s: %w", sql, err)
		}
	}
	return s, nil
}

func (s *sweeper) close() {
	for _, c := range s.conns {
		c.Close(context.Background())
	}
	s.conns = nil
}

// checkPlan makes sure the query is answered by the index under test.
func (s *sweeper) checkPlan(ctx context.Context, ix IndexSpec) error {
	rows, err := s.conns[0].Query(ctx, "EXPLAIN "+knnSQL(s.element, s.d.Metric, s.d.Dim, s.k), s.queries[0])
	if err != nil {
		return err
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !strings.Contains(strings.Join(plan, "\n"), indexName(ix)) {
		return fmt.Errorf("the planner does not use %s for the k-NN query; plan:\n%s", indexName(ix), strings.Join(plan, "\n"))
	}
	return nil
}

func (s *sweeper) setEf(ctx context.Context, guc string, ef int) error {
	for _, c := range s.conns {
		if _, err := c.Exec(ctx, fmt.Sprintf("SET %s = %d", guc, ef)); err != nil {
			return fmt.Errorf("SET %s = %d: %w (is %s the search GUC of this access method?)", guc, ef, err, guc)
		}
	}
	return nil
}

// search runs query i on conn and returns the ids found.
func (s *sweeper) search(ctx context.Context, conn *pgx.Conn, i int, ids []int32) ([]int32, error) {
	rows, err := conn.Query(ctx, stmtName, s.queries[i])
	if err != nil {
		return nil, err
	}
	ids = ids[:0]
	for rows.Next() {
		var id int32
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	return ids, rows.Err()
}

// warmUp runs n queries on every connection, untimed, so the sweep starts with the index in
// shared buffers and the plans cached.
func (s *sweeper) warmUp(ctx context.Context, n int) error {
	var ids []int32
	var err error
	for _, c := range s.conns {
		for i := 0; i < n; i++ {
			if ids, err = s.search(ctx, c, i%len(s.queries), ids); err != nil {
				return err
			}
		}
	}
	return nil
}

// measure runs the query list with one client, scoring recall on the first pass and
// repeating passes until minTime has gone by (so fast settings are timed over more than a
// blink), then the same shared among all clients (QPS and latency under concurrency).
func (s *sweeper) measure(ctx context.Context, ef int, minTime time.Duration) (Point, error) {
	p := Point{Ef: ef, Clients: len(s.conns)}
	dist := groundtruth.RowDistance(s.d)
	var lat []time.Duration
	var ids []int32
	var err error
	recall := 0.0
	returned := make([]float32, 0, s.k)
	nq := len(s.queries)
	start := time.Now()
	for i := 0; i < nq || time.Since(start) < minTime; i++ {
		t0 := time.Now()
		if ids, err = s.search(ctx, s.conns[0], i%nq, ids); err != nil {
			return p, err
		}
		lat = append(lat, time.Since(t0))
		if i >= nq {
			continue
		}
		returned = returned[:0]
		for _, id := range ids {
			if int(id) < 0 || int(id) >= s.d.N() {
				return p, fmt.Errorf("the index returned id %d, not in the table", id)
			}
			returned = append(returned, dist(i, int(id)))
		}
		recall += Recall(s.k, returned, s.truth.KthDistance(i))
	}
	p.QPS = float64(len(lat)) / time.Since(start).Seconds()
	p.Recall = recall / float64(nq)
	p.P50ms, p.P99ms = ms(Percentile(lat, 50)), ms(Percentile(lat, 99))

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(s.conns))
	lats := make([][]time.Duration, len(s.conns))
	start = time.Now()
	for c := range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ids []int32
			for {
				i := int(next.Add(1) - 1)
				if i >= nq && time.Since(start) >= minTime {
					return
				}
				t0 := time.Now()
				var err error
				if ids, err = s.search(ctx, s.conns[c], i%nq, ids); err != nil {
					errs[c] = err
					return
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return p, err
		}
	}
	lat = lat[:0]
	for _, l := range lats {
		lat = append(lat, l...)
	}
	p.QPSN = float64(len(lat)) / elapsed.Seconds()
	p.P50Nms, p.P99Nms = ms(Percentile(lat, 50)), ms(Percentile(lat, 99))
	return p, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
