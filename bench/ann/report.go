package ann

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is everything one run measured.
type Report struct {
	Suite    string          `json:"suite"`
	Started  time.Time       `json:"started"`
	Settings Settings        `json:"settings"`
	Machine  Machine         `json:"machine"`
	Note     string          `json:"note,omitempty"`
	Datasets []DatasetResult `json:"datasets"`
}

// Settings are the run's knobs that shape its numbers.
type Settings struct {
	M                  int               `json:"m"`
	EfConstruction     int               `json:"ef_construction"`
	MaintenanceWorkMem string            `json:"maintenance_work_mem"`
	ParallelWorkers    int               `json:"max_parallel_maintenance_workers"`
	BuildThreads       int               `json:"borealis_build_threads,omitempty"`
	BuildRounds        int               `json:"build_rounds,omitempty"`
	Efs                []int             `json:"ef"`
	K                  int               `json:"k"`
	Clients            int               `json:"clients"`
	Warmup             int               `json:"warmup_queries_per_client"`
	MinSeconds         float64           `json:"min_seconds_per_measurement"`
	Server             string            `json:"server"`
	MemoryKind         string            `json:"memory_kind"`
	FreshConnections   int               `json:"fresh_connections,omitempty"`
	InsertClients      int               `json:"insert_clients,omitempty"`
	InsertSeconds      float64           `json:"insert_seconds,omitempty"`
	Filtered           []float64         `json:"filtered_selectivities,omitempty"`
	FilteredEfs        []int             `json:"filtered_ef,omitempty"`
	IterativeScan      string            `json:"iterative_scan,omitempty"`
	MaxScanTuples      int               `json:"max_scan_tuples,omitempty"` // of the filtered sweep; 0 = each AM's default
	With               map[string]string `json:"with,omitempty"`
	Element            string            `json:"element,omitempty"`
	Elements           map[string]string `json:"elements,omitempty"`
}

// DatasetResult is one dataset's load, ground truth and indexes.
type DatasetResult struct {
	Dataset      string        `json:"dataset"`
	Metric       string        `json:"metric"`
	N            int           `json:"n"`
	Dim          int           `json:"dim"`
	Queries      int           `json:"queries"`
	LoadSeconds  float64       `json:"load_seconds"`
	TruthSeconds float64       `json:"ground_truth_seconds"`
	TruthCached  bool          `json:"ground_truth_cached"`
	Indexes      []IndexResult `json:"indexes"`
	Skipped      []string      `json:"skipped,omitempty"`
	Comparisons  []Comparison  `json:"comparisons,omitempty"`
	// BuildRounds are the interleaved builds before the sweep (--build-rounds), BuildMedians
	// their per-pair ratios' medians.
	BuildRounds  []BuildRound   `json:"build_rounds,omitempty"`
	BuildMedians []BuildMedians `json:"build_medians,omitempty"`
}

// IndexResult is one index's build and sweep.
type IndexResult struct {
	Index   IndexSpec `json:"index"`
	Element string    `json:"element,omitempty"`
	Build   Build     `json:"build"`
	Fresh   *Fresh    `json:"fresh_connections,omitempty"`
	Points  []Point   `json:"points"`
	Inserts *Inserts  `json:"inserts,omitempty"`
	// Filtered is the filtered-query sweep (filtered.go), when the run asked for one.
	Filtered []FilteredPoint `json:"filtered,omitempty"`
}

// curve is the index's single-client recall/QPS curve.
func (r IndexResult) curve() []CurvePoint {
	out := make([]CurvePoint, len(r.Points))
	for i, p := range r.Points {
		out[i] = CurvePoint{p.Recall, p.QPS}
	}
	return out
}

// RecallLevels are where QPS is compared between indexes.
var RecallLevels = []float64{0.90, 0.95, 0.99}

// Comparison is candidate ÷ baseline on one dataset, in one run.
type Comparison struct {
	Candidate  string  `json:"candidate"`
	Baseline   string  `json:"baseline"`
	BuildRatio float64 `json:"build_time_ratio"`
	// BuildCPURatio is the same for the server's CPU seconds during the builds (0 unmeasured).
	BuildCPURatio float64   `json:"build_cpu_ratio,omitempty"`
	SizeRatio     float64   `json:"index_size_ratio"`
	QPS           []RatioAt `json:"qps_ratio_at_recall"`
	// FirstQueryRatio is candidate ÷ baseline of the fresh-connection first query p50;
	// MemoryPerConnectionDiff is candidate − baseline PSS per connection, in bytes; the insert
	// ratios are candidate ÷ baseline rows/s. 0 (and for the difference, absent) when
	// either index lacks the measure.
	FirstQueryRatio         float64 `json:"first_query_ratio,omitempty"`
	MemoryPerConnectionDiff *int64  `json:"pss_per_connection_diff_bytes,omitempty"`
	// MarginalDiff is candidate − baseline of Fresh.Marginal, the memory one more connection
	// adds once others map the index (the "server memory per additional connection").
	MarginalDiff *int64  `json:"marginal_pss_per_connection_diff_bytes,omitempty"`
	InsertRatio1 float64 `json:"insert_ratio_1,omitempty"`
	InsertRatioN float64 `json:"insert_ratio_n,omitempty"`
}

// RatioAt compares single-client QPS at one recall level. Ratio is 0 when either index did
// not reach the level; a bound of "at_least" means every ef beat the level, so that index's
// QPS there is at least the figure given.
type RatioAt struct {
	Recall        float64 `json:"recall"`
	Candidate     float64 `json:"candidate_qps"`
	CandidateSide string  `json:"candidate_bound"`
	Baseline      float64 `json:"baseline_qps"`
	BaselineSide  string  `json:"baseline_bound"`
	Ratio         float64 `json:"ratio"`
}

func (b Bound) String() string {
	switch b {
	case Interpolated:
		return "interpolated"
	case AtLeast:
		return "at_least"
	}
	return "unreached"
}

// compare makes the ratios of the first index to every other one.
func compare(indexes []IndexResult) []Comparison {
	var out []Comparison
	if len(indexes) < 2 {
		return nil
	}
	c := indexes[0]
	for _, b := range indexes[1:] {
		cmp := Comparison{Candidate: c.Index.AM, Baseline: b.Index.AM,
			BuildRatio: finite(c.Build.Seconds / b.Build.Seconds),
			SizeRatio:  finite(float64(c.Build.Bytes) / float64(b.Build.Bytes))}
		if c.Build.CPUSeconds > 0 && b.Build.CPUSeconds > 0 {
			cmp.BuildCPURatio = finite(c.Build.CPUSeconds / b.Build.CPUSeconds)
		}
		for _, r := range RecallLevels {
			cq, cb := QPSAtRecall(c.curve(), r)
			bq, bb := QPSAtRecall(b.curve(), r)
			at := RatioAt{Recall: r, Candidate: cq, CandidateSide: cb.String(), Baseline: bq, BaselineSide: bb.String()}
			if cb != Unreached && bb != Unreached && bq > 0 {
				at.Ratio = cq / bq
			}
			cmp.QPS = append(cmp.QPS, at)
		}
		if c.Fresh != nil && b.Fresh != nil {
			cmp.FirstQueryRatio = finite(c.Fresh.FirstP50ms / b.Fresh.FirstP50ms)
			if c.Fresh.PerConnection > 0 && b.Fresh.PerConnection > 0 {
				diff := c.Fresh.PerConnection - b.Fresh.PerConnection
				cmp.MemoryPerConnectionDiff = &diff
			}
			if c.Fresh.MarginalConnections > 0 && b.Fresh.MarginalConnections > 0 {
				diff := c.Fresh.Marginal - b.Fresh.Marginal
				cmp.MarginalDiff = &diff
			}
		}
		if c.Inserts != nil && b.Inserts != nil {
			cmp.InsertRatio1 = finite(c.Inserts.Rate1 / b.Inserts.Rate1)
			cmp.InsertRatioN = finite(c.Inserts.RateN / b.Inserts.RateN)
		}
		out = append(out, cmp)
	}
	return out
}

// SummaryLines are the one-line verdicts printed at the end of a run.
func (r *Report) SummaryLines() []string {
	var out []string
	for _, d := range r.Datasets {
		if len(d.Comparisons) == 0 {
			names := make([]string, len(d.Indexes))
			for i, ix := range d.Indexes {
				names[i] = ix.Index.AM
			}
			out = append(out, fmt.Sprintf("%s: only %s measured, no ratio", d.Dataset, strings.Join(names, ", ")))
		}
		for _, c := range d.Comparisons {
			parts := []string{fmt.Sprintf("build time %.2fx", c.BuildRatio)}
			if c.BuildCPURatio > 0 {
				parts = append(parts, fmt.Sprintf("build CPU %.2fx", c.BuildCPURatio))
			}
			for _, m := range d.BuildMedians {
				if m.Candidate == c.Candidate && m.Baseline == c.Baseline {
					parts = append(parts, fmt.Sprintf("interleaved builds median wall %.2fx, CPU %s over %d rounds", m.Wall, ratioOrDash(m.CPU), m.Rounds))
				}
			}
			parts = append(parts, fmt.Sprintf("index size %.2fx", c.SizeRatio))
			for _, q := range c.QPS {
				parts = append(parts, fmt.Sprintf("QPS@%.2f %s", q.Recall, ratioText(q)))
			}
			if c.FirstQueryRatio > 0 {
				parts = append(parts, fmt.Sprintf("first query on a fresh connection %.2fx", c.FirstQueryRatio))
			}
			if c.MemoryPerConnectionDiff != nil {
				parts = append(parts, "memory per fresh connection "+signedHuman(*c.MemoryPerConnectionDiff))
			}
			if c.MarginalDiff != nil {
				parts = append(parts, "memory per additional connection "+signedHuman(*c.MarginalDiff))
			}
			if c.InsertRatio1 > 0 {
				parts = append(parts, fmt.Sprintf("inserts %.2fx (1 client), %.2fx (N clients)", c.InsertRatio1, c.InsertRatioN))
			}
			out = append(out, fmt.Sprintf("%s: %s / %s: %s", d.Dataset, c.Candidate, c.Baseline, strings.Join(parts, ", ")))
		}
	}
	return out
}

func ratioText(q RatioAt) string {
	switch {
	case q.CandidateSide == "unreached" && q.BaselineSide == "unreached":
		return "n/a (neither reached it)"
	case q.CandidateSide == "unreached":
		return "n/a (candidate never reached it)"
	case q.Ratio == 0:
		return "n/a (baseline never reached it)"
	case q.CandidateSide == "at_least" && q.BaselineSide != "at_least":
		return fmt.Sprintf(">=%.2fx", q.Ratio)
	case q.BaselineSide == "at_least" && q.CandidateSide != "at_least":
		return fmt.Sprintf("<=%.2fx", q.Ratio)
	case q.BaselineSide == "at_least":
		return fmt.Sprintf("~%.2fx (both above the level at every ef)", q.Ratio)
	}
	return fmt.Sprintf("%.2fx", q.Ratio)
}

// Files are the paths a run wrote.
type Files struct{ JSON, Markdown, PNG string }

// Write puts the report under dir as <date>-<suite>.{json,md,png}.
func (r *Report) Write(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, err
	}
	base := filepath.Join(dir, r.Started.Format("2006-01-02")+"-"+r.Suite)
	f := Files{JSON: base + ".json", Markdown: base + ".md", PNG: base + ".png"}
	for path, write := range map[string]func(io.Writer) error{
		f.JSON: r.WriteJSONLines, f.Markdown: r.WriteMarkdown, f.PNG: r.WritePNG,
	} {
		out, err := os.Create(path)
		if err != nil {
			return Files{}, err
		}
		if err := write(out); err != nil {
			out.Close()
			return Files{}, fmt.Errorf("writing %s: %w", path, err)
		}
		if err := out.Close(); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

// WriteJSONLines writes one JSON object per line: a "run" record, then per dataset a
// "dataset" record, for each index a "build", a "fresh" (fresh connections), a "point" per ef
// and an "inserts", and "comparison" records.
func (r *Report) WriteJSONLines(w io.Writer) error {
	enc := json.NewEncoder(w)
	type run struct {
		Type     string    `json:"type"`
		Suite    string    `json:"suite"`
		Started  time.Time `json:"started"`
		Settings Settings  `json:"settings"`
		Machine  Machine   `json:"machine"`
		Note     string    `json:"note,omitempty"`
	}
	if err := enc.Encode(run{"run", r.Suite, r.Started, r.Settings, r.Machine, r.Note}); err != nil {
		return err
	}
	for _, d := range r.Datasets {
		type ds struct {
			Type string `json:"type"`
			DatasetResult
			Indexes     []IndexResult `json:"indexes,omitempty"`
			Comparisons []Comparison  `json:"comparisons,omitempty"`
		}
		if err := enc.Encode(ds{Type: "dataset", DatasetResult: d}); err != nil {
			return err
		}
		for _, ix := range d.Indexes {
			type build struct {
				Type    string `json:"type"`
				Dataset string `json:"dataset"`
				AM      string `json:"am"`
				GUC     string `json:"guc"`
				Build
			}
			if err := enc.Encode(build{"build", d.Dataset, ix.Index.AM, ix.Index.GUC, ix.Build}); err != nil {
				return err
			}
			if ix.Fresh != nil {
				type fresh struct {
					Type    string `json:"type"`
					Dataset string `json:"dataset"`
					AM      string `json:"am"`
					Fresh
				}
				if err := enc.Encode(fresh{"fresh", d.Dataset, ix.Index.AM, *ix.Fresh}); err != nil {
					return err
				}
			}
			if ix.Inserts != nil {
				type inserts struct {
					Type    string `json:"type"`
					Dataset string `json:"dataset"`
					AM      string `json:"am"`
					Inserts
				}
				if err := enc.Encode(inserts{"inserts", d.Dataset, ix.Index.AM, *ix.Inserts}); err != nil {
					return err
				}
			}
			for _, p := range ix.Points {
				type point struct {
					Type    string `json:"type"`
					Dataset string `json:"dataset"`
					AM      string `json:"am"`
					K       int    `json:"k"`
					Point
				}
				if err := enc.Encode(point{"point", d.Dataset, ix.Index.AM, r.Settings.K, p}); err != nil {
					return err
				}
			}
		}
		for _, c := range d.Comparisons {
			type comparison struct {
				Type    string `json:"type"`
				Dataset string `json:"dataset"`
				Comparison
			}
			if err := enc.Encode(comparison{"comparison", d.Dataset, c}); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteMarkdown writes the human-readable tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# ANN benchmark `%s`, %s\n\n", r.Suite, r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Produced by `borealis bench ann`; every figure below was measured in this one run.\n\n")
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "- CPU: %s, %d cores; memory %.1f GiB; Linux %s\n", m.CPU, m.Cores, m.MemoryGiB, m.Kernel)
	fmt.Fprintf(&b, "- PostgreSQL %s, pgvector %s", m.PostgreSQL, m.PGVector)
	if m.Borealis != "" {
		fmt.Fprintf(&b, ", borealis %s", m.Borealis)
	}
	fmt.Fprintf(&b, "; %s; ground truth on the simd `%s` path\n", m.GoVersion, m.SIMDPath)
	fmt.Fprintf(&b, "- Load average at start %s, at end %s", m.LoadAvg, m.LoadAvgEnd)
	if r.Note != "" {
		fmt.Fprintf(&b, "\n- Note: %s", r.Note)
	}
	s := r.Settings
	fmt.Fprintf(&b, "\n\n## Settings\n\n- Server: %s\n", s.Server)
	fmt.Fprintf(&b, "- Build: m=%d, ef_construction=%d, maintenance_work_mem=%s, max_parallel_maintenance_workers=%d, the same for every index",
		s.M, s.EfConstruction, s.MaintenanceWorkMem, s.ParallelWorkers)
	if s.BuildThreads > 0 {
		fmt.Fprintf(&b, "; borealis.build_threads=%d (the leader plus the workers pgvector may use)", s.BuildThreads)
	}
	b.WriteString("; build CPU = utime+stime of all the server's processes during CREATE INDEX (/proc/<pid>/stat, reaped children included)\n")
	if s.BuildRounds > 0 {
		fmt.Fprintf(&b, "- Interleaved builds: before the sweep, %d rounds each building every index in turn (first index, then the others) and dropping it, for per-round ratios and their median\n", s.BuildRounds)
	}
	fmt.Fprintf(&b, "- Search: k=%d, ef in %v, prepared statements over the extended protocol, enable_seqscan=off, jit=off; %d warm-up queries per client before the sweep\n",
		s.K, s.Efs, s.Warmup)
	fmt.Fprintf(&b, "- QPS with 1 client (queries back to back) and with %d clients sharing the query list, the list repeated until at least %.1f s passed; recall@%d over the first pass, ties at the k-th distance counted as found\n", s.Clients, s.MinSeconds, s.K)
	fmt.Fprintf(&b, "- Peak memory: the server's processes' summed %s (postmaster and all children, from /proc/<pid>/smaps_rollup, sampled every second during CREATE INDEX). It includes the shared_buffers pages the server's processes have touched, so an index built after another one's sweep starts from a fuller baseline: compare the peak with the before-build column\n", s.MemoryKind)
	if s.FreshConnections > 0 {
		fmt.Fprintf(&b, "- Fresh connections: after each build, %d new connections opened one after another, each running one top-%d query at the AM's default ef (enable_seqscan=off in the startup packet); first query = connect + query until its last row; memory per fresh connection = growth of the server's summed %s with all of them open, divided by %d, from a reading taken once that sum had not grown for 1.5 s (the prewarm worker maps a new graph file within a second of a build; it charges each connection for shared pages nobody had mapped before it, e.g. graph-file folios the kernel's fault-around maps, which the node held in its page cache already); then, after a %s pause, %d more connections one at a time: per additional connection = the median growth of the server's summed %s (all server processes, so a shared page counts once) across one connection's connect and first query, with the earlier ones still open, and its backend's private memory = median USS (Private_Clean + Private_Dirty)\n",
			s.FreshConnections, s.K, s.MemoryKind, s.FreshConnections, marginalSettle, marginalConnections, s.MemoryKind)
	}
	if len(s.Filtered) > 0 {
		fmt.Fprintf(&b, "- Filtered queries: `WHERE cat < c ORDER BY embedding <op> $1 LIMIT %d` on an int column cat in 0..999 fixed by a hash of each row's id (independent of the vectors), keeping %v of the rows; each AM's iterative_scan = %s (%s), ef in %v, the first %d queries (repeated until %.1f s passed), one client, recall@%d against the exact filtered top %d; full LIMIT = queries that returned %d rows\n",
			s.K, s.Filtered, s.IterativeScan, maxScanText(s.MaxScanTuples), s.FilteredEfs, filteredQueries, s.MinSeconds, s.K, s.K, s.K)
	}
	used := map[string]bool{s.Element: true}
	for am, e := range s.Elements {
		fmt.Fprintf(&b, "- %s's index is built on %s\n", am, e)
		used[e] = true
	}
	if used[ElementHalfvec] {
		fmt.Fprintf(&b, "- halfvec: the index on `embedding::halfvec(dim)` with the halfvec operator class, queried as `ORDER BY embedding::halfvec(dim) <op> $1::vector::halfvec(dim)`; recall against the exact float32 answers\n")
	}
	if used[ElementBQ] {
		fmt.Fprintf(&b, "- bq: the index on `binary_quantize(embedding)::bit(dim)` with bit_hamming_ops; each query re-ranks the index's candidates (at most ef, without iterative scan) with the exact distance: `SELECT id FROM (SELECT id, embedding ... ORDER BY binary_quantize(embedding)::bit(dim) <~> binary_quantize($1) LIMIT %d) c ORDER BY embedding <op> $1 LIMIT k`; recall against the exact float32 answers\n", bqCandidates)
	}
	for am, w := range s.With {
		fmt.Fprintf(&b, "- %s built WITH (%s)\n", am, w)
	}
	if s.InsertClients > 0 {
		fmt.Fprintf(&b, "- Inserts: after the sweep, single-row INSERTs (autocommit) of new vectors (midpoints of two base vectors) into the indexed table for %g s with 1 new connection, then %g s with %d new connections at once; the rows are deleted after the index is dropped\n",
			s.InsertSeconds, s.InsertSeconds, s.InsertClients)
	}
	for _, d := range r.Datasets {
		fmt.Fprintf(&b, "\n## %s\n\n%d × %d, %s, %d queries; load %.1f s, ground truth %.1f s%s\n", d.Dataset, d.N, d.Dim, d.Metric, d.Queries,
			d.LoadSeconds, d.TruthSeconds, map[bool]string{true: " (cached)", false: ""}[d.TruthCached])
		if len(d.Skipped) > 0 {
			fmt.Fprintf(&b, "\nSkipped (access method missing on the server): %s\n", strings.Join(d.Skipped, ", "))
		}
		writeBuildRounds(&b, d)
		b.WriteString("\n| index | build s | server CPU s | index size | server peak " + s.MemoryKind + " | before build |\n|---|---:|---:|---:|---:|---:|\n")
		for _, ix := range d.Indexes {
			fmt.Fprintf(&b, "| %s | %.1f | %s | %s | %s | %s |\n", ix.Index.AM, ix.Build.Seconds, secondsOrDash(ix.Build.CPUSeconds), human(ix.Build.Bytes),
				memText(ix.Build.PeakMemory), memText(ix.Build.MemoryBefore))
		}
		fmt.Fprintf(&b, "\n| index | ef | recall@%d | QPS 1 client | p50 ms | p99 ms | QPS %d clients | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n", s.K, s.Clients)
		for _, ix := range d.Indexes {
			for _, p := range ix.Points {
				fmt.Fprintf(&b, "| %s | %d | %.4f | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f |\n", ix.Index.AM, p.Ef, p.Recall,
					p.QPS, p.P50ms, p.P99ms, p.QPSN, p.P50Nms, p.P99Nms)
			}
		}
		if hasFreshOrInserts(d) {
			b.WriteString("\n| index | first query p50 ms | first query p99 ms | connect p50 ms | server " + s.MemoryKind + " per fresh connection | server " + s.MemoryKind + " per additional connection | its private memory | inserts/s 1 client | inserts/s N clients |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, ix := range d.Indexes {
				fq50, fq99, c50, mem, marg, priv, i1, iN := "-", "-", "-", "-", "-", "-", "-", "-"
				if f := ix.Fresh; f != nil {
					fq50, fq99, c50, mem = fmt.Sprintf("%.1f", f.FirstP50ms), fmt.Sprintf("%.1f", f.FirstP99ms), fmt.Sprintf("%.1f", f.ConnectP50ms), memText(f.PerConnection)
					if f.MarginalConnections > 0 {
						marg, priv = memText(f.Marginal), memText(f.Private)
					}
				}
				if in := ix.Inserts; in != nil {
					i1, iN = fmt.Sprintf("%.0f", in.Rate1), fmt.Sprintf("%.0f (%d clients)", in.RateN, in.Clients)
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", ix.Index.AM, fq50, fq99, c50, mem, marg, priv, i1, iN)
			}
		}
		if hasFiltered(d) {
			fmt.Fprintf(&b, "\n| index | rows kept | ef | recall@%d | full LIMIT | QPS 1 client | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n", s.K)
			for _, ix := range d.Indexes {
				for _, p := range ix.Filtered {
					fmt.Fprintf(&b, "| %s | %g%% | %d | %.4f | %.0f%% | %.0f | %.2f | %.2f |\n", ix.Index.AM, 100*p.Selectivity, p.Ef,
						p.Recall, 100*p.FullLimit, p.QPS, p.P50ms, p.P99ms)
				}
			}
		}
		if len(d.Comparisons) > 0 {
			b.WriteString("\n| ratio | build time | build CPU | index size | QPS @0.90 | QPS @0.95 | QPS @0.99 | first query | memory per fresh connection | memory per additional connection | inserts 1 client | inserts N clients |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, c := range d.Comparisons {
				fmt.Fprintf(&b, "| %s ÷ %s | %.2f | %s | %.2f |", c.Candidate, c.Baseline, c.BuildRatio, ratioOrDash(c.BuildCPURatio), c.SizeRatio)
				for _, q := range c.QPS {
					fmt.Fprintf(&b, " %s |", ratioText(q))
				}
				fmt.Fprintf(&b, " %s | %s | %s | %s | %s |\n", ratioOrDash(c.FirstQueryRatio), diffOrDash(c.MemoryPerConnectionDiff),
					diffOrDash(c.MarginalDiff), ratioOrDash(c.InsertRatio1), ratioOrDash(c.InsertRatioN))
			}
		}
	}
	b.WriteString("\n## Summary\n\n")
	for _, l := range r.SummaryLines() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hasFiltered(d DatasetResult) bool {
	for _, ix := range d.Indexes {
		if len(ix.Filtered) > 0 {
			return true
		}
	}
	return false
}

func hasFreshOrInserts(d DatasetResult) bool {
	for _, ix := range d.Indexes {
		if ix.Fresh != nil || ix.Inserts != nil {
			return true
		}
	}
	return false
}

func ratioOrDash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}

func diffOrDash(v *int64) string {
	if v == nil {
		return "-"
	}
	return signedHuman(*v)
}

// signedHuman is human with an explicit sign.
func signedHuman(b int64) string {
	if b < 0 {
		return "-" + human(-b)
	}
	return "+" + human(b)
}

func memText(b int64) string {
	if b == 0 {
		return "not measured (server not local)"
	}
	return human(b)
}

// finite replaces NaN and infinities, which JSON cannot carry, by 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// maxScanText says what max_scan_tuples the filtered sweep ran with.
func maxScanText(n int) string {
	if n == 0 {
		return "max_scan_tuples at its default, 20,000"
	}
	return fmt.Sprintf("max_scan_tuples = %d for each AM", n)
}
