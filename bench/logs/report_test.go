package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportPairsRounds: the slowdown is the median over rounds of each round's own pair
// (not of medians taken apart), the verdicts follow the figures, the plot is written beside
// the report, and the history kept by hand survives.
func TestReportPairsRounds(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "logs.md")
	if err := os.WriteFile(out, []byte("# old run\n\n## History\n\n### Run of long ago\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config{clients: 4, threads: 2, rounds: 3, seconds: 10, scale: 10, pipeline: 10, lines: 1000, out: out}
	mk := func(round int, on bool, tps float64) roundResult {
		r := roundResult{round: round, collector: on, tps: tps, nodeLines: int64(tps) * 100, linesPerSec: tps * 10, nodeCPUPerTxn: 200}
		if on {
			r.lines, r.exported, r.fromMemory, r.cpuPerLine = r.nodeLines, r.nodeLines, r.nodeLines, 3
		}
		return r
	}
	// Round slowdowns: 10%, 2%, 4% (median 4%); the off runs drift from 3000 to 1000 TPS.
	rs := []roundResult{mk(1, false, 3000), mk(1, true, 2700), mk(2, true, 1960), mk(2, false, 2000), mk(3, false, 1000), mk(3, true, 960)}
	if err := report(c, rs, ceilingResult{storedPerSec: 1, exportedPerSec: 1, cpuPerLine: 1}, time.Now(), "1 1 1", "1 1 1", "1 1 1"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"**4.0%** (rounds ranged 2.0% to 10.0%)", "Verdict on the ≤ 5% slowdown:** meets", "**19600** (off: 20000)",
		"misses the ≥ 10,000", "**15.0%** of the node's own CPU", "kernel.sched_autogroup_enabled = ", "![slowdown", "### Run of long ago"} {
		if want == "misses the ≥ 10,000" {
			if strings.Contains(s, want) {
				t.Errorf("rate verdict: %q should not be there", want)
			}
			continue
		}
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "# old run") {
		t.Error("the previous top section was kept outside the history")
	}
	if st, err := os.Stat(filepath.Join(dir, "logs.png")); err != nil || st.Size() == 0 {
		t.Fatalf("plot: %v", err)
	}
}
