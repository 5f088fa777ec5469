package ann

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/bench/dataset"
)

// Build time on a shared machine: wall seconds move with everyone else's load, CPU seconds
// much less. A build therefore also records the CPU the server spent on it (every process of
// the server, so a parallel build's workers count), and a run can interleave builds of the
// indexes (A, B, A, B, ...) and compare each pair, so both builds of a pair met about the
// same load.

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux
// architecture Go runs PostgreSQL on here.
const clockTicks = 100

// processCPU is pid's own CPU seconds (utime+stime, all its threads) and those of its reaped
// children (cutime+cstime), from /proc/<pid>/stat.
func processCPU(pid int) (self, children float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatCPU(data)
}

// parseStatCPU reads utime, stime, cutime and cstime (fields 14-17) of a /proc/<pid>/stat line.
func parseStatCPU(data []byte) (self, children float64, err error) {
	close := bytes.LastIndexByte(data, ')')
	if close < 0 {
		return 0, 0, fmt.Errorf("/proc stat: unexpected format")
	}
	// Fields after comm start at field 3 (state): utime is field 14, i.e. index 11 here.
	f := strings.Fields(string(data[close+1:]))
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("/proc stat: unexpected format")
	}
	var t [4]float64
	for i := range t {
		v, err := strconv.ParseInt(f[11+i], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc stat: %w", err)
		}
		t[i] = float64(v) / clockTicks
	}
	return t[0] + t[1], t[2] + t[3], nil
}

// ServerCPU is the CPU seconds the server rooted at postmaster has used so far: each live
// process's own time, plus the postmaster's reaped children (backends and parallel workers
// that have exited count there once the postmaster has waited for them).
func ServerCPU(postmaster int) float64 {
	var total float64
	for _, pid := range serverProcesses(postmaster) {
		self, children, err := processCPU(pid)
		if err != nil {
			continue // exited meanwhile: its time moves to the postmaster's children
		}
		total += self
		if pid == postmaster {
			total += children
		}
	}
	return total
}

// cpuMeter measures one build's CPU: the server's and the building backend's.
type cpuMeter struct {
	postmaster, backend int
	server0, backend0   float64
}

func startCPU(ctx context.Context, conn *pgx.Conn, postmaster int) *cpuMeter {
	m := &cpuMeter{postmaster: postmaster}
	if postmaster == 0 {
		return m
	}
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&m.backend); err == nil {
		m.backend0, _, _ = processCPU(m.backend)
	}
	m.server0 = ServerCPU(postmaster)
	return m
}

// stop returns the server's and the backend's CPU seconds since start (0, 0 when the server
// is not local).
func (m *cpuMeter) stop() (server, backend float64) {
	if m.postmaster == 0 {
		return 0, 0
	}
	server = ServerCPU(m.postmaster) - m.server0
	if m.backend != 0 {
		if b, _, err := processCPU(m.backend); err == nil {
			backend = b - m.backend0
		}
	}
	return server, backend
}

// BuildRound is one build of the interleaved rounds.
type BuildRound struct {
	Round int    `json:"round"`
	AM    string `json:"am"`
	Build
}

// BuildPair is candidate ÷ baseline for the builds of one round.
type BuildPair struct {
	Round     int     `json:"round"`
	Candidate string  `json:"candidate"`
	Baseline  string  `json:"baseline"`
	WallRatio float64 `json:"wall_ratio"`
	CPURatio  float64 `json:"cpu_ratio,omitempty"`
}

// buildRounds builds every index rounds times, in the order given within each round, dropping
// each right after it is measured (the sweep builds its own afterwards). A CHECKPOINT before
// each build keeps one build's dirty pages and WAL from being flushed on the next one's time.
func buildRounds(ctx context.Context, conn *pgx.Conn, t *target, cfg *Config, indexes []IndexSpec, d *dataset.Dataset,
	logf func(string, ...any)) ([]BuildRound, error) {
	var out []BuildRound
	for r := 1; r <= cfg.BuildRounds; r++ {
		for _, ix := range indexes {
			if _, err := conn.Exec(ctx, "DROP INDEX IF EXISTS "+indexName(ix)); err != nil {
				return nil, err
			}
			if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
				logf("warning: CHECKPOINT before a build: %v", err)
			}
			logf("build round %d/%d: %s", r, cfg.BuildRounds, ix.AM)
			b, err := buildIndex(ctx, conn, t, cfg, ix, d.Metric, d.Dim, d.N(), logf)
			if err != nil {
				return nil, fmt.Errorf("build round %d: %w", r, err)
			}
			out = append(out, BuildRound{Round: r, AM: ix.AM, Build: b})
			if _, err := conn.Exec(ctx, "DROP INDEX "+indexName(ix)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// pairRounds makes, per round, the ratio of the first AM's build to every other AM's.
func pairRounds(rounds []BuildRound) []BuildPair {
	byRound := map[int][]BuildRound{}
	var order []int
	for _, r := range rounds {
		if _, ok := byRound[r.Round]; !ok {
			order = append(order, r.Round)
		}
		byRound[r.Round] = append(byRound[r.Round], r)
	}
	var out []BuildPair
	for _, n := range order {
		rs := byRound[n]
		c := rs[0]
		for _, b := range rs[1:] {
			p := BuildPair{Round: n, Candidate: c.AM, Baseline: b.AM, WallRatio: finite(c.Seconds / b.Seconds)}
			if c.CPUSeconds > 0 && b.CPUSeconds > 0 {
				p.CPURatio = finite(c.CPUSeconds / b.CPUSeconds)
			}
			out = append(out, p)
		}
	}
	return out
}

// BuildMedians are the medians over the rounds of candidate ÷ baseline.
type BuildMedians struct {
	Candidate string  `json:"candidate"`
	Baseline  string  `json:"baseline"`
	Rounds    int     `json:"rounds"`
	Wall      float64 `json:"wall_ratio_median"`
	CPU       float64 `json:"cpu_ratio_median,omitempty"`
}

func medianPairs(pairs []BuildPair) []BuildMedians {
	type key struct{ c, b string }
	wall, cpu := map[key][]float64{}, map[key][]float64{}
	var keys []key
	for _, p := range pairs {
		k := key{p.Candidate, p.Baseline}
		if _, ok := wall[k]; !ok {
			keys = append(keys, k)
		}
		wall[k] = append(wall[k], p.WallRatio)
		if p.CPURatio > 0 {
			cpu[k] = append(cpu[k], p.CPURatio)
		}
	}
	var out []BuildMedians
	for _, k := range keys {
		out = append(out, BuildMedians{Candidate: k.c, Baseline: k.b, Rounds: len(wall[k]), Wall: medianFloat(wall[k]), CPU: medianFloat(cpu[k])})
	}
	return out
}

// medianFloat of vs (0 for none); the mean of the middle two for an even count.
func medianFloat(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// writeBuildRounds adds the interleaved builds' tables to a dataset's markdown.
func writeBuildRounds(b *strings.Builder, d DatasetResult) {
	if len(d.BuildRounds) == 0 {
		return
	}
	b.WriteString("\nInterleaved builds (each dropped after it was measured; CHECKPOINT before each; CPU = all the server's processes, so a parallel build's workers count):\n\n")
	b.WriteString("| round | index | build s | server CPU s | building backend CPU s | CPU ÷ wall |\n|---:|---|---:|---:|---:|---:|\n")
	for _, r := range d.BuildRounds {
		fmt.Fprintf(b, "| %d | %s | %.1f | %s | %s | %s |\n", r.Round, r.AM, r.Seconds, secondsOrDash(r.CPUSeconds),
			secondsOrDash(r.BackendCPUSeconds), ratioOrDash(finite(r.CPUSeconds/r.Seconds)))
	}
	b.WriteString("\n| round | ratio | build wall time | build CPU time |\n|---:|---|---:|---:|\n")
	for _, p := range pairRounds(d.BuildRounds) {
		fmt.Fprintf(b, "| %d | %s ÷ %s | %.2fx | %s |\n", p.Round, p.Candidate, p.Baseline, p.WallRatio, ratioOrDash(p.CPURatio))
	}
	for _, m := range d.BuildMedians {
		fmt.Fprintf(b, "| median of %d | %s ÷ %s | %.2fx | %s |\n", m.Rounds, m.Candidate, m.Baseline, m.Wall, ratioOrDash(m.CPU))
	}
}

func secondsOrDash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}
