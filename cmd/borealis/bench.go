package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/borealisdb/borealis/bench/ann"
	"github.com/borealisdb/borealis/bench/dataset"
)

func init() {
	commands["bench"] = command{summary: "run benchmarks: `bench ann` measures vector indexes against pgvector", run: runBench}
}

// benchSuites are the named dataset lists of `--suite`. standard is what `make bench` runs.
var benchSuites = map[string][]string{
	"standard": {"synthetic:100000:128", "mnist", "synthetic:50000:1536:cosine"},
	"tiny":     {"synthetic:2000:16"},
}

// defaultIndexes are compared when no --index is given; a missing one is skipped.
var defaultIndexes = []string{"borealis_hnsw:borealis.ef_search", "hnsw:hnsw.ef_search"}

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "ann" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stdout, "Usage: borealis bench ann [flags]   (run 'borealis bench ann -h' for the flags)")
			return nil
		}
		return usagef("want a benchmark: `borealis bench ann [flags]`")
	}
	return runBenchANN(args[1:], stdout, stderr)
}

// withRe is what --with accepts in each part: identifiers and numbers, never SQL.
var withRe = regexp.MustCompile(`^[a-z0-9_]+$`)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runBenchANN(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench ann", stderr)
	var datasets, indexes listFlag
	fs.Var(&datasets, "dataset", "dataset, repeatable: "+dataset.Specs)
	fs.Var(&indexes, "index", "AM:GUC to measure, repeatable; the first is compared with the others (default "+strings.Join(defaultIndexes, " and ")+", skipping a missing one)")
	dsn := fs.String("dsn", "", "server to measure; empty starts a throwaway local one")
	suite := fs.String("suite", "ann", "names the output files; standard or tiny also choose the datasets when no --dataset is given")
	efs := fs.String("ef", "10,20,40,80,160,320", "search ef values to sweep")
	k := fs.Int("k", 10, "neighbours per query (recall@k)")
	clients := fs.Int("clients", 2, "concurrent clients for the N-client QPS")
	queries := fs.Int("queries", 1000, "queries per dataset")
	warmup := fs.Int("warmup", 50, "untimed warm-up queries per client before each sweep")
	minTime := fs.Duration("min-time", time.Second, "least duration of each QPS measurement (the query list is repeated)")
	fresh := fs.Int("fresh-connections", 10, "new connections that each time connect + first query after a build (their memory is measured too)")
	insertClients := fs.Int("insert-clients", 4, "concurrent new connections for the N-client insert rate")
	insertTime := fs.Duration("insert-time", 10*time.Second, "duration of each insert-rate measurement (1 client, then N)")
	m := fs.Int("m", 16, "index build parameter m")
	efc := fs.Int("ef-construction", 64, "index build parameter ef_construction")
	mwm := fs.String("maintenance-work-mem", "1GB", "maintenance_work_mem for every build")
	par := fs.Int("parallel-workers", 1, "max_parallel_maintenance_workers for every build (borealis.build_threads is this + 1)")
	rounds := fs.Int("build-rounds", 0, "before the sweep, build every index this many times, interleaved (A, B, A, B ...), for per-round build-time and CPU ratios and their median")
	skip := fs.Bool("skip-missing", false, "skip, with a warning, an --index whose access method the server lacks (default: fail)")
	dsDir := fs.String("datasets-dir", benchEnvOr("BOREALIS_DATASETS", "../shared/datasets"), "directory holding mnist/ and sift5k/")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "ground-truth cache")
	out := fs.String("out", "bench/results", "directory for <date>-<suite>.{md,json,png}")
	seed := fs.Uint64("seed", 42, "seed of the synthetic datasets")
	sb := fs.String("shared-buffers", "1GB", "shared_buffers of the throwaway server")
	note := fs.String("note", "", "free text recorded with the results (e.g. what else loaded the machine)")
	filtered := fs.String("filtered", "", "selectivities of a filtered-query sweep (WHERE cat < c, iterative scan on), e.g. 0.1,0.01,0.001; empty skips it")
	filteredEfs := fs.String("filtered-ef", "40", "ef values of the filtered-query sweep")
	maxScan := fs.Int("max-scan-tuples", 0, "max_scan_tuples of every AM in the filtered sweep; 0 leaves each AM's default (20,000)")
	iterative := fs.String("iterative-scan", "relaxed_order", "iterative_scan of every AM in the filtered sweep: relaxed_order or strict_order")
	var with listFlag
	fs.Var(&with, "with", "extra reloptions of one AM's index, repeatable: AM:option=value, e.g. borealis_hnsw:quantization=binary")
	var elements listFlag
	fs.Var(&elements, "element", "what the indexes are built on: vector (the column, default), halfvec (embedding::halfvec(dim)) bq (binary_quantize(embedding)::bit(dim), candidates re-ranked with the exact distance) or sparsevec (a sparsevec column: the default, and the only choice, for sparse: datasets); AM:element for one AM; repeatable")
	output := fs.String("output", "table", "stdout format: table (summary lines) or json (the whole report)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	format, err := outputFormat(*output)
	if err != nil {
		return err
	}
	cfg := ann.Config{DSN: *dsn, Suite: *suite, Datasets: datasets, SkipMissing: *skip, M: *m, EfConstruction: *efc,
		MaintenanceWorkMem: *mwm, ParallelWorkers: *par, BuildRounds: *rounds, K: *k, Clients: *clients, Queries: *queries, Warmup: *warmup, MinTime: *minTime,
		FreshConnections: *fresh, InsertClients: *insertClients, InsertTime: *insertTime,
		Seed: *seed, DatasetsDir: *dsDir, CacheDir: *cacheDir, OutDir: *out, SharedBuffers: *sb, Note: *note}
	if len(cfg.Datasets) == 0 {
		cfg.Datasets = benchSuites[*suite]
	}
	if len(indexes) == 0 {
		indexes, cfg.SkipMissing = defaultIndexes, true
	}
	for _, s := range indexes {
		ix, err := ann.ParseIndexSpec(s)
		if err != nil {
			return usageError{err.Error()}
		}
		cfg.Indexes = append(cfg.Indexes, ix)
	}
	if cfg.Efs, err = ann.ParseEfs(*efs); err != nil {
		return usageError{err.Error()}
	}
	if cfg.Filtered, err = ann.ParseSelectivities(*filtered); err != nil {
		return usageError{err.Error()}
	}
	if cfg.FilteredEfs, err = ann.ParseEfs(*filteredEfs); err != nil {
		return usageError{"--filtered-ef: " + err.Error()}
	}
	cfg.IterativeScan, cfg.MaxScanTuples = *iterative, *maxScan
	for _, e := range elements {
		if am, el, ok := strings.Cut(e, ":"); ok {
			if cfg.Elements == nil {
				cfg.Elements = map[string]string{}
			}
			cfg.Elements[am] = el
		} else {
			cfg.Element = e
		}
	}
	for _, w := range with {
		am, opt, ok := strings.Cut(w, ":")
		name, value, ok2 := strings.Cut(opt, "=")
		if !ok || !ok2 || !withRe.MatchString(am) || !withRe.MatchString(name) || !withRe.MatchString(value) {
			return usageError{fmt.Sprintf("--with %q: want AM:option=value, e.g. borealis_hnsw:quantization=binary", w)}
		}
		if cfg.With == nil {
			cfg.With = map[string]string{}
		}
		if cfg.With[am] != "" {
			cfg.With[am] += ", "
		}
		cfg.With[am] += name + " = " + value
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return usageError{err.Error()}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := ann.Run(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	files, err := rep.Write(cfg.OutDir)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*ann.Report
			Files ann.Files `json:"files"`
		}{rep, files})
	}
	for _, l := range rep.SummaryLines() {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintf(stdout, "wrote %s, %s, %s\n", files.Markdown, files.JSON, files.PNG)
	return nil
}

func benchEnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "borealis", "bench-groundtruth")
	}
	return filepath.Join(os.TempDir(), "borealis-bench-groundtruth")
}
