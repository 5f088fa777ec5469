package ann

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/borealisdb/borealis/bench/dataset"
	"github.com/borealisdb/borealis/bench/groundtruth"
)

// Filtered queries: `WHERE cat < c ORDER BY embedding <op> $1 LIMIT k` on the metadata column
// cat, a value in 0..999 fixed per row by a hash of its id (catOf), so `cat < 100` keeps 10% of
// the rows, `cat < 10` 1% and `cat < 1` 0.1%, spread over the whole vector space (the filter
// is independent of the vectors: the hard case for a graph walk). Both access methods run them
// with their iterative scan on (AM-prefix.iterative_scan, e.g. hnsw.iterative_scan), the
// index picked by the planner with enable_seqscan off, and are scored against the exact
// filtered top k computed here.

// catBuckets is the number of values of the metadata column.
const catBuckets = 1000

// catOf is row id's metadata value: a fixed mix of the id (splitmix64), not the seed, so the
// same table always has the same filter.
func catOf(id int) int32 {
	z := uint64(id) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int32(z % catBuckets)
}

// FilteredPoint is one selectivity and ef of one index.
type FilteredPoint struct {
	Selectivity float64 `json:"selectivity"`
	Ef          int     `json:"ef"`
	Recall      float64 `json:"recall"`
	// FullLimit is the fraction of queries that returned all k rows (all the filter keeps,
	// when it keeps fewer).
	FullLimit float64 `json:"full_limit"`
	QPS       float64 `json:"qps_1"`
	P50ms     float64 `json:"p50_ms_1"`
	P99ms     float64 `json:"p99_ms_1"`
}

// filteredQueries is how many of the dataset's queries the filtered sweep uses.
const filteredQueries = 200

// filteredTruth is, per selectivity, the k-th exact distance of each query among the rows the
// filter keeps (with fewer than k such rows, the farthest one) and how many rows it keeps.
type filteredTruth map[float64]filteredKth

type filteredKth struct {
	kth  []float32
	rows int
}

func computeFilteredTruth(d *dataset.Dataset, sels []float64, k int) filteredTruth {
	dist := groundtruth.Distance(d.Metric)
	nq := min(d.NQ(), filteredQueries)
	out := filteredTruth{}
	for _, s := range sels {
		limit := catLimit(s)
		var rows []int
		for id := 0; id < d.N(); id++ {
			if catOf(id) < limit {
				rows = append(rows, id)
			}
		}
		kth := make([]float32, nq)
		ds := make([]float32, len(rows))
		for q := 0; q < nq; q++ {
			for i, id := range rows {
				ds[i] = dist(d.Query(q), d.Row(id))
			}
			sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
			if len(ds) > 0 {
				kth[q] = ds[min(k, len(ds))-1]
			}
		}
		out[s] = filteredKth{kth: kth, rows: len(rows)}
	}
	return out
}

// catLimit is c in `cat < c` for selectivity s.
func catLimit(s float64) int32 { return int32(s*catBuckets + 0.5) }

// iterativeGUC is the AM's iterative-scan setting, next to its ef GUC (hnsw.ef_search →
// hnsw.iterative_scan, borealis.ef_search → borealis.iterative_scan).
func iterativeGUC(efGUC string) string { return scanGUC(efGUC, "iterative_scan") }

// scanGUC is the AM's setting name next to its ef GUC (hnsw.ef_search, max_scan_tuples →
// hnsw.max_scan_tuples).
func scanGUC(efGUC, name string) string {
	prefix, _, ok := strings.Cut(efGUC, ".")
	if !ok {
		return name
	}
	return prefix + "." + name
}

// filteredSettings are the SETs of the filtered sweep's connection for index ix.
func filteredSettings(ix IndexSpec, cfg *Config) []string {
	sets := []string{"SET enable_seqscan = off", "SET jit = off",
		fmt.Sprintf("SET %s = %s", iterativeGUC(ix.GUC), cfg.IterativeScan)}
	if cfg.MaxScanTuples > 0 {
		sets = append(sets, fmt.Sprintf("SET %s = %d", scanGUC(ix.GUC, "max_scan_tuples"), cfg.MaxScanTuples))
	}
	return sets
}

// measureFiltered runs the filtered queries at every selectivity and ef on one connection.
func measureFiltered(ctx context.Context, dsn string, d *dataset.Dataset, truth filteredTruth, ix IndexSpec, cfg *Config,
	logf func(string, ...any)) ([]FilteredPoint, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
		return nil, err
	}
	for _, set := range filteredSettings(ix, cfg) {
		if _, err := conn.Exec(ctx, set); err != nil {
			return nil, fmt.Errorf("%s: %w", set, err)
		}
	}
	dist := groundtruth.Distance(d.Metric)
	nq := min(d.NQ(), filteredQueries)
	queries := make([]pgvector.Vector, nq)
	for i := range queries {
		queries[i] = pgvector.NewVector(d.Query(i))
	}
	var out []FilteredPoint
	for _, s := range cfg.Filtered {
		sql := fmt.Sprintf("SELECT id FROM %s WHERE cat < %d ORDER BY embedding %s $1 LIMIT %d",
			table, catLimit(s), operator(d.Metric), cfg.K)
		rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) "+sql, queries[0])
		if err != nil {
			return nil, err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		if !strings.Contains(strings.Join(lines, "\n"), indexName(ix)) {
			return nil, fmt.Errorf("the planner does not use %s for the filtered query; plan:\n%s", indexName(ix), strings.Join(lines, "\n"))
		}
		for _, ef := range cfg.FilteredEfs {
			if _, err := conn.Exec(ctx, fmt.Sprintf("SET %s = %d", ix.GUC, ef)); err != nil {
				return nil, err
			}
			// Warm-up: the first pass over the queries is untimed.
			for i := range min(nq, cfg.Warmup) {
				if _, err := queryIDs(ctx, conn, sql, queries[i]); err != nil {
					return nil, err
				}
			}
			p := FilteredPoint{Selectivity: s, Ef: ef}
			var lat []time.Duration
			recall, full := 0.0, 0
			returned := make([]float32, 0, cfg.K)
			start := time.Now()
			// Passes repeat until --min-time has gone by (recall scored on the first), as the sweep.
			for i := 0; i < nq || time.Since(start) < cfg.MinTime; i++ {
				t0 := time.Now()
				ids, err := queryIDs(ctx, conn, sql, queries[i%nq])
				if err != nil {
					return nil, err
				}
				lat = append(lat, time.Since(t0))
				if i >= nq {
					continue
				}
				returned = returned[:0]
				for _, id := range ids {
					if int(id) < 0 || int(id) >= d.N() || catOf(int(id)) >= catLimit(s) {
						return nil, fmt.Errorf("the index returned id %d, which the filter excludes or the table lacks", id)
					}
					returned = append(returned, dist(d.Query(i), d.Row(int(id))))
				}
				// With fewer than k rows kept, finding all of them is recall 1.
				want := min(cfg.K, truth[s].rows)
				if want > 0 {
					recall += Recall(cfg.K, returned, truth[s].kth[i]) * float64(cfg.K) / float64(want)
				} else {
					recall++
				}
				if len(ids) == want {
					full++
				}
			}
			p.QPS = float64(len(lat)) / time.Since(start).Seconds()
			p.Recall, p.FullLimit = recall/float64(nq), float64(full)/float64(nq)
			p.P50ms, p.P99ms = ms(Percentile(lat, 50)), ms(Percentile(lat, 99))
			logf("filtered %s: %.1f%% of rows, ef=%d, %s: recall@%d %.4f, full LIMIT %.0f%%, %.0f QPS (p50 %.2f ms)",
				ix.AM, 100*s, ef, cfg.IterativeScan, cfg.K, p.Recall, 100*p.FullLimit, p.QPS, p.P50ms)
			out = append(out, p)
		}
	}
	return out, nil
}

func queryIDs(ctx context.Context, conn *pgx.Conn, sql string, q pgvector.Vector) ([]int32, error) {
	rows, err := conn.Query(ctx, sql, q)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int32])
}
