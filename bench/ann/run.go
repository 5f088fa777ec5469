package ann

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/borealisdb/borealis/bench/dataset"
	"github.com/borealisdb/borealis/bench/groundtruth"
)

// Run measures every dataset × index of cfg and returns the report; progress lines go to
// progress. Nothing is written to disk except the ground-truth cache: call Report.Write.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, spec := range cfg.Datasets {
		if err := dataset.Check(spec, dataset.Options{Dir: cfg.DatasetsDir}); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		el := time.Since(started).Round(time.Second)
		fmt.Fprintf(progress, "[%02d:%02d] %s\n", int(el.Minutes()), int(el.Seconds())%60, fmt.Sprintf(format, args...))
	}

	var t *target
	var err error
	server := "the --dsn server"
	if cfg.DSN == "" {
		t, err = startThrowaway(ctx, &cfg, logf)
		server = "throwaway local server started by the run (shared_buffers=" + cfg.SharedBuffers + ", fsync on)"
	} else {
		t, err = connectTarget(ctx, cfg.DSN)
	}
	if err != nil {
		return nil, err
	}
	defer t.stop()

	connCfg, err := pgx.ParseConfig(t.dsn)
	if err != nil {
		return nil, err
	}
	connCfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if !strings.HasSuffix(n.Message, ", skipping") { // DROP ... IF EXISTS chatter
			logf("server %s: %s", n.Severity, n.Message)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.Background())
	if err := prepareExtensions(ctx, conn, &cfg); err != nil {
		return nil, err
	}
	if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
		return nil, err
	}
	indexes, skipped, err := checkAccessMethods(ctx, conn, &cfg, logf)
	if err != nil {
		return nil, err
	}
	if t.postmaster == 0 {
		logf("warning: the server is not a process on this machine: peak memory is not measured")
	}

	rep := &Report{Suite: cfg.Suite, Started: started, Note: cfg.Note, Machine: describeMachine(ctx, conn),
		Settings: Settings{M: cfg.M, EfConstruction: cfg.EfConstruction, MaintenanceWorkMem: cfg.MaintenanceWorkMem,
			ParallelWorkers: cfg.ParallelWorkers, BuildThreads: buildThreads(&cfg), BuildRounds: cfg.BuildRounds, Efs: cfg.Efs, K: cfg.K, Clients: cfg.Clients, Warmup: cfg.Warmup, MinSeconds: cfg.MinTime.Seconds(),
			Server: server, MemoryKind: MemoryKind,
			FreshConnections: cfg.FreshConnections, InsertClients: cfg.InsertClients, InsertSeconds: cfg.InsertTime.Seconds(),
			With: cfg.With, Element: cfg.Element, Elements: cfg.Elements}}
	if len(cfg.Filtered) > 0 {
		rep.Settings.Filtered, rep.Settings.FilteredEfs, rep.Settings.IterativeScan = cfg.Filtered, cfg.FilteredEfs, cfg.IterativeScan
		rep.Settings.MaxScanTuples = cfg.MaxScanTuples
	}
	for _, spec := range cfg.Datasets {
		res, err := runDataset(ctx, conn, t, &cfg, spec, indexes, logf)
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", spec, err)
		}
		res.Skipped = skipped
		rep.Datasets = append(rep.Datasets, *res)
	}
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		return nil, err
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	return rep, nil
}

func runDataset(ctx context.Context, conn *pgx.Conn, t *target, cfg *Config, spec string, indexes []IndexSpec, logf func(string, ...any)) (*DatasetResult, error) {
	logf("dataset %s: reading", spec)
	d, err := dataset.Open(spec, dataset.Options{Dir: cfg.DatasetsDir, Queries: cfg.Queries, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	if cfg.K > d.N() {
		return nil, fmt.Errorf("--k %d is larger than the base set (%d vectors)", cfg.K, d.N())
	}
	res := &DatasetResult{Dataset: d.Name, Metric: string(d.Metric), N: d.N(), Dim: d.Dim, Queries: d.NQ()}
	logf("dataset %s: %d × %d, %s, %d queries", d.Name, d.N(), d.Dim, d.Metric, d.NQ())

	start := time.Now()
	truthProgress := throttle(2 * time.Second)
	truth, cached, err := groundtruth.Load(cfg.CacheDir, d, cfg.K,
		func(done, total int) {
			if truthProgress(done == total) {
				logf("ground truth: %d/%d queries (%d%%)", done, total, 100*done/total)
			}
		},
		func(msg string) { logf("warning: %s", msg) })
	if err != nil {
		return nil, err
	}
	res.TruthSeconds, res.TruthCached = time.Since(start).Seconds(), cached
	logf("ground truth: %s in %.1f s", map[bool]string{true: "from cache", false: "computed"}[cached], res.TruthSeconds)

	var ftruth filteredTruth
	if len(cfg.Filtered) > 0 {
		start = time.Now()
		ftruth = computeFilteredTruth(d, cfg.Filtered, cfg.K)
		logf("filtered ground truth: %d selectivities in %.1f s", len(cfg.Filtered), time.Since(start).Seconds())
	}

	start = time.Now()
	if err := loadTable(ctx, conn, d, logf); err != nil {
		return nil, err
	}
	res.LoadSeconds = time.Since(start).Seconds()
	logf("load: %d rows in %.1f s", d.N(), res.LoadSeconds)

	if cfg.BuildRounds > 0 {
		if res.BuildRounds, err = buildRounds(ctx, conn, t, cfg, indexes, d, logf); err != nil {
			return nil, err
		}
		res.BuildMedians = medianPairs(pairRounds(res.BuildRounds))
		for _, m := range res.BuildMedians {
			logf("builds %s ÷ %s over %d rounds: median wall %.2fx, median CPU %.2fx", m.Candidate, m.Baseline, m.Rounds, m.Wall, m.CPU)
		}
	}

	for _, ix := range indexes {
		r, err := runIndex(ctx, conn, t, cfg, d, truth, ftruth, ix, logf)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", ix.AM, err)
		}
		res.Indexes = append(res.Indexes, *r)
	}
	res.Comparisons = compare(res.Indexes)
	return res, nil
}

// runIndex builds one index, sweeps it, and drops it so the next index is the only one the
// planner can pick.
func runIndex(ctx context.Context, conn *pgx.Conn, t *target, cfg *Config, d *dataset.Dataset, truth *groundtruth.Truth,
	ftruth filteredTruth, ix IndexSpec, logf func(string, ...any)) (*IndexResult, error) {
	if _, err := conn.Exec(ctx, "DROP INDEX IF EXISTS "+indexName(ix)); err != nil {
		return nil, err
	}
	b, err := buildIndex(ctx, conn, t, cfg, ix, d.Metric, d.Dim, d.N(), logf)
	if err != nil {
		return nil, err
	}
	res := &IndexResult{Index: ix, Build: b, Element: cfg.ElementOf(ix.AM)}
	// Fresh connections first, while no other client backend holds the index.
	waitForIdle(ctx, conn, 10*time.Second)
	if res.Fresh, err = measureFresh(ctx, t, d, cfg.ElementOf(ix.AM), cfg.K, cfg.FreshConnections); err != nil {
		return nil, err
	}
	logf("fresh %s: %d new connections, connect+first query p50 %.1f ms, p99 %.1f ms (connect alone p50 %.1f ms), server %s +%s per fresh connection, +%s per additional one (private %s)",
		ix.AM, res.Fresh.Connections, res.Fresh.FirstP50ms, res.Fresh.FirstP99ms, res.Fresh.ConnectP50ms, MemoryKind, memText(res.Fresh.PerConnection),
		memText(res.Fresh.Marginal), memText(res.Fresh.Private))
	waitForIdle(ctx, conn, 10*time.Second)
	sw, err := newSweeper(ctx, t.dsn, d, truth, cfg, cfg.ElementOf(ix.AM))
	if err != nil {
		return nil, err
	}
	defer sw.close()
	if err := sw.checkPlan(ctx, ix); err != nil {
		return nil, err
	}
	if err := sw.setEf(ctx, ix.GUC, cfg.Efs[len(cfg.Efs)-1]); err != nil {
		return nil, err
	}
	logf("sweep %s: warm-up, %d queries per client", ix.AM, cfg.Warmup)
	if err := sw.warmUp(ctx, cfg.Warmup); err != nil {
		return nil, err
	}
	// A SET of an unknown dotted name only makes a placeholder; once the AM's module is
	// loaded (by the warm-up) a real GUC shows in pg_settings, a misspelt one does not.
	var defined bool
	if err := conn.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_settings WHERE name = $1", ix.GUC).Scan(&defined); err != nil {
		return nil, err
	}
	if !defined {
		return nil, fmt.Errorf("%s is not a parameter of any loaded module, so it cannot steer %s; give the AM's search GUC, e.g. hnsw:hnsw.ef_search", ix.GUC, ix.AM)
	}
	for _, ef := range cfg.Efs {
		if err := sw.setEf(ctx, ix.GUC, ef); err != nil {
			return nil, err
		}
		p, err := sw.measure(ctx, ef, cfg.MinTime)
		if err != nil {
			return nil, fmt.Errorf("ef %d: %w", ef, err)
		}
		logf("sweep %s ef=%d: recall@%d %.4f, %.0f QPS (p50 %.2f ms, p99 %.2f ms), %d clients %.0f QPS",
			ix.AM, ef, cfg.K, p.Recall, p.QPS, p.P50ms, p.P99ms, p.Clients, p.QPSN)
		res.Points = append(res.Points, p)
	}
	sw.close()
	if len(cfg.Filtered) > 0 {
		if res.Filtered, err = measureFiltered(ctx, t.dsn, d, ftruth, ix, cfg, logf); err != nil {
			return nil, fmt.Errorf("filtered queries: %w", err)
		}
	}
	waitForIdle(ctx, conn, 10*time.Second)
	logf("inserts %s: 1 client, then %d, %.0f s each", ix.AM, cfg.InsertClients, cfg.InsertTime.Seconds())
	if res.Inserts, err = measureInserts(ctx, t, d, cfg.InsertClients, cfg.InsertTime); err != nil {
		return nil, err
	}
	logf("inserts %s: %.0f rows/s with 1 client, %.0f rows/s with %d", ix.AM, res.Inserts.Rate1, res.Inserts.RateN, res.Inserts.Clients)
	if _, err := conn.Exec(ctx, "DROP INDEX "+indexName(ix)); err != nil {
		return nil, err
	}
	if err := removeInserted(ctx, conn, d); err != nil {
		return nil, err
	}
	// The next build's "memory before" must not count the sweep's backends still exiting.
	waitForIdle(ctx, conn, 10*time.Second)
	return res, nil
}

// waitForIdle waits until conn's backend is the only client backend of the server, or until
// timeout.
func waitForIdle(ctx context.Context, conn *pgx.Conn, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").Scan(&n); err != nil || n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// throttle returns a gate that opens at most once per interval, and always when forced (for
// the last step of a long task).
func throttle(interval time.Duration) func(force bool) bool {
	var last time.Time
	return func(force bool) bool {
		if force || time.Since(last) >= interval {
			last = time.Now()
			return true
		}
		return false
	}
}
