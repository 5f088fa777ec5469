package ann

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/bench/dataset"
)

// opclass and operator are pgvector's names for a metric; borealis_hnsw uses the same.
func opclass(m dataset.Metric) string {
	switch m {
	case dataset.Cosine:
		return "vector_cosine_ops"
	case dataset.IP:
		return "vector_ip_ops"
	}
	return "vector_l2_ops"
}

func operator(m dataset.Metric) string {
	switch m {
	case dataset.Cosine:
		return "<=>"
	case dataset.IP:
		return "<#>"
	}
	return "<->"
}

// Build is what building one index cost.
type Build struct {
	Seconds float64 `json:"build_seconds"`
	Bytes   int64   `json:"index_bytes"`
	// PeakMemory is the server's summed PSS (MemoryKind) at its highest during CREATE INDEX;
	// MemoryBefore is the same sum just before it. 0 when the server is not on this machine.
	PeakMemory   int64 `json:"peak_memory_bytes"`
	MemoryBefore int64 `json:"memory_before_bytes"`
	// CPUSeconds is the CPU all the server's processes used during CREATE INDEX (a parallel
	// build's workers included), BackendCPUSeconds the building backend's own (buildcpu.go).
	// 0 when the server is not on this machine.
	CPUSeconds        float64 `json:"server_cpu_seconds,omitempty"`
	BackendCPUSeconds float64 `json:"backend_cpu_seconds,omitempty"`
}

// buildThreads is borealis.build_threads for every borealis build: the leader plus the
// parallel workers pgvector may use, so both AMs build with as many processes or threads.
func buildThreads(cfg *Config) int { return cfg.ParallelWorkers + 1 }

func indexName(ix IndexSpec) string { return table + "_" + ix.AM + "_idx" }

// buildIndex builds ix on the table with the run's shared build settings, showing the
// server's own progress view, and measures time, size and peak server memory.
func buildIndex(ctx context.Context, conn *pgx.Conn, t *target, cfg *Config, ix IndexSpec, m dataset.Metric, dim, rows int, logf func(string, ...any)) (Build, error) {
	for _, set := range []string{
		"SET maintenance_work_mem = '" + cfg.MaintenanceWorkMem + "'",
		"SET max_parallel_maintenance_workers = " + strconv.Itoa(cfg.ParallelWorkers),
	} {
		if _, err := conn.Exec(ctx, set); err != nil {
			return Build{}, fmt.Errorf("%s: %w", set, err)
		}
	}
	if strings.HasPrefix(ix.AM, "borealis") {
		if _, err := conn.Exec(ctx, "SET borealis.build_threads = "+strconv.Itoa(buildThreads(cfg))); err != nil {
			return Build{}, fmt.Errorf("SET borealis.build_threads: %w", err)
		}
	}
	with := ""
	if w := cfg.With[ix.AM]; w != "" {
		with = ", " + w
	}
	sql := fmt.Sprintf("CREATE INDEX %s ON %s USING %s %s WITH (m = %d, ef_construction = %d%s)",
		indexName(ix), table, ix.AM, indexTarget(cfg.ElementOf(ix.AM), m, dim), cfg.M, cfg.EfConstruction, with)
	logf("build %s: %s", ix.AM, sql)
	var b Build
	if t.postmaster != 0 {
		b.MemoryBefore = ServerMemory(t.postmaster)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); watchBuild(watchCtx, t.dsn, ix.AM, rows, logf) }()
	// Each sample reads smaps_rollup of every server process, which walks the page tables of
	// the index being built: every 100 ms that cost the bench about as much CPU as a build of
	// 1M rows got on a loaded 2-core machine. Once a second is enough for a build's peak.
	mem := sampleMemory(t.postmaster, time.Second)
	cpu := startCPU(ctx, conn, t.postmaster)
	start := time.Now()
	_, err := conn.Exec(ctx, sql)
	b.Seconds = time.Since(start).Seconds()
	b.CPUSeconds, b.BackendCPUSeconds = cpu.stop()
	// The peak is over the whole build, its starting point included: a sample can read less
	// than MemoryBefore when another backend of the run has exited meanwhile.
	b.PeakMemory = max(mem.Peak(), b.MemoryBefore)
	stopWatch()
	<-watched
	if err != nil {
		return Build{}, fmt.Errorf("building %s: %w", ix.AM, err)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_relation_size($1::regclass)", indexName(ix)).Scan(&b.Bytes); err != nil {
		return Build{}, err
	}
	logf("build %s: %.1f s (server CPU %.1f s, building backend %.1f s), %s on disk, server peak %s %s", ix.AM, b.Seconds,
		b.CPUSeconds, b.BackendCPUSeconds, human(b.Bytes), MemoryKind, human(b.PeakMemory))
	return b, nil
}

// watchBuild prints pg_stat_progress_create_index for the build every two seconds, when it
// changed, from its own connection. An AM that counts tuples without a total (pgvector's hnsw)
// is shown against the table's rows.
func watchBuild(ctx context.Context, dsn, am string, rows int, logf func(string, ...any)) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		var phase string
		var tdone, ttotal, bdone, btotal int64
		err := conn.QueryRow(ctx, `SELECT phase, coalesce(tuples_done, 0), coalesce(tuples_total, 0),
				coalesce(blocks_done, 0), coalesce(blocks_total, 0)
			FROM pg_stat_progress_create_index WHERE relid = $1::regclass`, table).Scan(&phase, &tdone, &ttotal, &bdone, &btotal)
		if err != nil {
			continue
		}
		line := phase
		switch {
		case ttotal > 0:
			line += fmt.Sprintf(": %d/%d tuples (%d%%)", tdone, ttotal, 100*tdone/ttotal)
		case tdone > 0:
			line += fmt.Sprintf(": %d/%d tuples (%d%% of the table)", tdone, rows, 100*tdone/int64(max(rows, 1)))
		case btotal > 0:
			line += fmt.Sprintf(": %d/%d blocks (%d%%)", bdone, btotal, 100*bdone/btotal)
		}
		if line != last {
			logf("build %s: %s", am, line)
			last = line
		}
	}
}

// human formats bytes in binary units.
func human(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
