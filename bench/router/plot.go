package main

// The router figures as a picture: throughput per round for every path of a run (direct, the
// router, PgBouncer, a second router, the kernel-forwarding experiment's paths), drawn with
// gonum/plot as bench/resume and bench/ann draw theirs. Every run writes its per-round data as
// JSON beside its report (router.md -> router.json) and the plot from it (router.png); `-plot
// FILE` redraws the picture of an earlier run without running anything, from FILE's JSON when it
// has one, else from the per-round tables of its committed report (every "<path> TPS" column and
// the experiment's path/TPS table), so no figure is typed in by hand.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/borealisdb/borealis/bench/internal/benchenv"
)

// Round is one path's measurement in one round, as written to the run's JSON.
type Round struct {
	Path  string  `json:"path"`
	Round int     `json:"round"`
	TPS   float64 `json:"tps"`
	// P50Ms and P99Ms are the per-transaction latency percentiles (0 when unknown: a report
	// read back from its tables does not always give them).
	P50Ms float64 `json:"p50_ms,omitempty"`
	P99Ms float64 `json:"p99_ms,omitempty"`
	// ProxyCPUPerTxnUs is the proxy's CPU per transaction (0 for direct).
	ProxyCPUPerTxnUs float64 `json:"proxy_cpu_per_txn_us,omitempty"`
	SyscallsPerTxn   float64 `json:"syscalls_per_txn,omitempty"`
}

// Run is the JSON a run writes beside its markdown report.
type Run struct {
	Title   string  `json:"title"`
	Command string  `json:"command,omitempty"`
	Note    string  `json:"note,omitempty"`
	Load    string  `json:"load,omitempty"`
	Rounds  []Round `json:"rounds"`
}

// toRounds converts a run's results.
func toRounds(rs []result) []Round {
	out := make([]Round, 0, len(rs))
	for _, r := range rs {
		out = append(out, Round{Path: r.path, Round: r.round, TPS: r.tps, P50Ms: r.p50, P99Ms: r.p99,
			ProxyCPUPerTxnUs: r.cpuPerTxn, SyscallsPerTxn: r.syscalls})
	}
	return out
}

// base is a report's path without its extension: the JSON and the plot sit beside it.
func base(report string) string {
	for _, ext := range []string{".md", ".json", ".png"} {
		if strings.HasSuffix(report, ext) {
			return strings.TrimSuffix(report, ext)
		}
	}
	return report
}

// WriteRun writes run as <base>.json and its plot as <base>.png, where base is report without
// its extension.
func WriteRun(report string, run Run) error {
	js, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base(report)+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	return PlotRun(run, base(report)+".png")
}

// ReadRun reads an earlier run from file (its .md, .json or base name): the JSON when there is
// one, else the per-round tables of the markdown report.
func ReadRun(file string) (Run, error) {
	b := base(file)
	if js, err := os.ReadFile(b + ".json"); err == nil {
		var run Run
		if err := json.Unmarshal(js, &run); err != nil {
			return Run{}, fmt.Errorf("%s.json: %w (want the JSON bench/router writes)", b, err)
		}
		if len(run.Rounds) == 0 {
			return Run{}, fmt.Errorf("%s.json has no rounds", b)
		}
		return run, nil
	}
	return parseReport(b + ".md")
}

// parseReport reads every per-round TPS figure of a markdown report: the columns "<path> TPS"
// of the tables whose first column is "round", and the experiment's table with "path" and "TPS"
// columns. A figure that appears in two tables (direct and router do) must agree.
func parseReport(md string) (Run, error) {
	f, err := os.Open(md)
	if err != nil {
		return Run{}, fmt.Errorf("no JSON and no report: %w (give a bench/router report, .md or .json)", err)
	}
	defer f.Close()
	run := Run{}
	type key struct {
		path  string
		round int
	}
	seen := map[key]int{} // index in run.Rounds
	var header []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if run.Title == "" && strings.HasPrefix(t, "# ") {
			run.Title = strings.TrimPrefix(t, "# ")
		}
		if strings.HasPrefix(t, "- Command: ") {
			run.Command = strings.Trim(strings.TrimPrefix(t, "- Command: "), "`")
		}
		if strings.HasPrefix(t, "- Load average at start ") {
			run.Load = strings.TrimPrefix(t, "- Load average at start ")
		}
		if !strings.HasPrefix(t, "|") {
			header = nil
			continue
		}
		cells := strings.Split(strings.Trim(t, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if header == nil {
			header = cells
			continue
		}
		if strings.HasPrefix(cells[0], "---") || strings.HasPrefix(cells[0], ":--") || len(header) == 0 || header[0] != "round" {
			continue
		}
		round, err := strconv.Atoi(cells[0])
		if err != nil {
			continue
		}
		add := func(path, v string) error {
			tps, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s:%d: %s TPS %q is not a number", md, line, path, v)
			}
			k := key{path, round}
			if i, ok := seen[k]; ok {
				if run.Rounds[i].TPS != tps {
					return fmt.Errorf("%s:%d: %s round %d TPS %v here, %v in an earlier table", md, line, path, round, tps, run.Rounds[i].TPS)
				}
				return nil
			}
			seen[k] = len(run.Rounds)
			run.Rounds = append(run.Rounds, Round{Path: path, Round: round, TPS: tps})
			return nil
		}
		pathCol := -1
		for i, h := range header {
			if h == "path" {
				pathCol = i
			}
		}
		for i, h := range header {
			if i >= len(cells) {
				break
			}
			var err error
			switch {
			case h == "TPS" && pathCol >= 0:
				err = add(cells[pathCol], cells[i])
			case strings.HasSuffix(h, " TPS"):
				err = add(strings.TrimSuffix(h, " TPS"), cells[i])
			}
			if err != nil {
				return Run{}, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Run{}, err
	}
	if len(run.Rounds) == 0 {
		return Run{}, fmt.Errorf("%s: no per-round TPS table (want a bench/router report)", md)
	}
	return run, nil
}

// pathColors keeps each path's colour the same in every picture.
var pathColors = map[string]color.RGBA{
	"direct":             {R: 90, G: 90, B: 90, A: 255},
	"router":             {R: 30, G: 100, B: 200, A: 255},
	"pgbouncer":          {R: 220, G: 120, B: 20, A: 255},
	"router-sched":       {R: 120, G: 170, B: 240, A: 255},
	"router-epoll":       {R: 120, G: 170, B: 240, A: 255},
	"router-passthrough": {R: 20, G: 60, B: 130, A: 255},
	"router-sockmap":     {R: 0, G: 190, B: 190, A: 255},
	"sockmap-verdict":    {R: 40, G: 160, B: 60, A: 255},
	"sockmap-scan":       {R: 140, G: 200, B: 80, A: 255},
	"sockmap-half":       {R: 170, G: 110, B: 190, A: 255},
}

// pathOrder is the order of the bars in a round; other paths follow by name.
var pathOrder = []string{"direct", "router", "pgbouncer", "router-epoll", "router-sched", "router-passthrough", "router-sockmap", "sockmap-verdict", "sockmap-scan", "sockmap-half"}

// PlotRun draws run's TPS per round, one bar per path in each round, and writes it to png.
// Each path's legend entry carries its median ratio to direct over the rounds.
func PlotRun(run Run, png string) error {
	byPath := map[string]map[int]float64{}
	maxRound := 0
	for _, r := range run.Rounds {
		if byPath[r.Path] == nil {
			byPath[r.Path] = map[int]float64{}
		}
		byPath[r.Path][r.Round] = r.TPS
		maxRound = max(maxRound, r.Round)
	}
	if len(byPath) == 0 {
		return fmt.Errorf("nothing to plot for %s: the run has no rounds", png)
	}
	var paths []string
	for _, p := range pathOrder {
		if byPath[p] != nil {
			paths = append(paths, p)
		}
	}
	var rest []string
	for p := range byPath {
		if !slices.Contains(pathOrder, p) {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	paths = append(paths, rest...)

	p := plot.New()
	p.Title.Text = "pgbench -S TPS per round"
	if run.Title != "" {
		p.Title.Text = run.Title
	}
	p.X.Label.Text = "round"
	p.Y.Label.Text = "transactions per second"
	p.Add(plotter.NewGrid())
	width := vg.Points(min(18, 220/float64(len(paths)*maxRound)))
	ymax := 0.0
	for i, path := range paths {
		vals := make(plotter.Values, maxRound)
		var ratios []float64
		for round := 1; round <= maxRound; round++ {
			v := byPath[path][round]
			vals[round-1] = v
			ymax = max(ymax, v)
			if d := byPath["direct"][round]; d > 0 && v > 0 {
				ratios = append(ratios, v/d)
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		c, ok := pathColors[path]
		if !ok {
			c = color.RGBA{R: 160, G: 160, B: 160, A: 255}
		}
		bars.Color = c
		bars.LineStyle.Width = 0
		bars.Offset = width * vg.Length(float64(i)-float64(len(paths)-1)/2)
		bars.XMin = 1
		p.Add(bars)
		label := path
		if path != "direct" && len(ratios) > 0 {
			label = fmt.Sprintf("%s (median %.2f× direct)", path, benchenv.Median(ratios))
		}
		p.Legend.Add(label, bars)
	}
	p.Legend.Top = true
	p.Y.Min = 0
	p.Y.Max = ymax * (1.15 + 0.07*float64(len(paths))) // room for the legend above the bars
	p.X.Min, p.X.Max = 0.5, float64(maxRound)+0.5
	var ticks []plot.Tick
	for round := 1; round <= maxRound; round++ {
		ticks = append(ticks, plot.Tick{Value: float64(round), Label: strconv.Itoa(round)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.BackgroundColor = color.White
	return p.Save(8*vg.Inch, 4.5*vg.Inch, png)
}
