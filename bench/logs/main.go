// Command logs measures log collection: pgbench -S against a node with log_statement = all
// (one log line per statement), in rounds with the control plane's log collector off and on
// (alternating which goes first), so the report gives both the lines per second the collector
// stores and how much it slows the node. A second figure is the collector's ceiling: the time
// to store a prepared jsonlog file of many lines. Writes bench/results/logs.md.
//
//	go run ./bench/logs [-clients 4] [-rounds 3] [-seconds 15] [-scale 10] [-lines 300000]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/borealisdb/borealis/bench/internal/benchenv"
	"github.com/borealisdb/borealis/controlplane/logs"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

func main() {
	clients := flag.Int("clients", 4, "pgbench clients (-c)")
	threads := flag.Int("threads", 2, "pgbench threads (-j)")
	rounds := flag.Int("rounds", 3, "rounds; each runs pgbench with the collector off and on")
	seconds := flag.Int("seconds", 15, "seconds per pgbench run (-T)")
	scale := flag.Int("scale", 10, "pgbench scale (-s)")
	lines := flag.Int("lines", 300000, "lines in the prepared file of the ceiling measurement")
	out := flag.String("out", "bench/results/logs.md", "markdown report")
	note := flag.String("note", "", "a line about the conditions, added to the report")
	flag.Parse()
	if err := run(*clients, *threads, *rounds, *seconds, *scale, *lines, *out, *note); err != nil {
		fmt.Fprintln(os.Stderr, "bench/logs:", err)
		os.Exit(1)
	}
}

type roundResult struct {
	round         int
	collector     bool
	tps           float64
	lines         int64   // lines stored during the run (collector on)
	linesPerSec   float64 // lines / run seconds
	catchUp       float64 // seconds after pgbench ended until every line was stored
	cpuPerLine    float64 // collector CPU µs per stored line
	serverWritten int64   // bytes of jsonlog the node wrote during the run
}

// logBytes is the size of every jsonlog file of the node.
func logBytes(dir string) int64 {
	files, _ := filepath.Glob(filepath.Join(dir, "log", "*.json"))
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

func stored(s *logs.Service) int64 {
	var n int64
	for _, v := range s.Snapshot().Ingested {
		n += v
	}
	return n
}

// caughtUp waits until the node's jsonlog files and the stored count have both stopped
// growing over one 400 ms interval.
func caughtUp(s *logs.Service, dir string, limit time.Duration) error {
	start := time.Now()
	prevStored, prevBytes := int64(-1), int64(-1)
	for {
		n, b := stored(s), logBytes(dir)
		if n == prevStored && b == prevBytes {
			return nil
		}
		prevStored, prevBytes = n, b
		if time.Since(start) > limit {
			return fmt.Errorf("the collector did not catch up within %s", limit)
		}
		time.Sleep(400 * time.Millisecond)
	}
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

func pgbench(port, clients, threads, seconds int) (float64, error) {
	cmd := exec.Command("pgbench", "-S", "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(seconds), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "postgres")
	o, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %v\n%s", err, o)
	}
	m := tpsRE.FindSubmatch(o)
	if m == nil {
		return 0, fmt.Errorf("no tps in pgbench output:\n%s", o)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func run(clients, threads, rounds, seconds, scale, nLines int, out, note string) error {
	root, err := os.MkdirTemp("", "borealis-bench-logs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if err := pgproc.PrepareDir(root, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	node, err := pgproc.New(pgproc.Config{DataDir: filepath.Join(root, "bench-1"), DieWithParent: true,
		Settings: map[string]string{"shared_buffers": "256MB", "max_connections": "50", "logging_collector": "on",
			"log_destination": "'stderr,jsonlog'", "log_directory": "'log'", "log_filename": "'postgresql-%Y-%m-%d_%H%M%S.log'"}})
	if err != nil {
		return err
	}
	if err := node.Init(ctx); err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return err
	}
	defer node.Stop(context.Background())
	fmt.Fprintf(os.Stderr, "initialising pgbench scale %d on port %d\n", scale, node.Port)
	if o, err := exec.Command("pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "-h", "127.0.0.1", "-p", strconv.Itoa(node.Port), "-U", "postgres", "postgres").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, o)
	}
	if o, err := exec.Command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(node.Port), "-U", "postgres", "-d", "postgres", "-c",
		"ALTER SYSTEM SET log_statement = 'all'", "-c", "SELECT pg_reload_conf()").CombinedOutput(); err != nil {
		return fmt.Errorf("psql: %v\n%s", err, o)
	}
	// The control plane's files live apart from the node's (the store refuses a directory the
	// nodes' user owns).
	cpDir, err := os.MkdirTemp("", "borealis-bench-logs-cp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cpDir)
	st, err := store.Open(filepath.Join(cpDir, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CreateCluster(store.Cluster{Name: "bench", LogExports: []string{logs.TypePostgreSQL},
		Members: []store.Member{{ID: "bench-1", Writer: true, DataDir: node.DataDir}}}); err != nil {
		return err
	}
	home := filepath.Join(cpDir, "home")
	load0 := benchenv.LoadAvg()
	started := time.Now().UTC()
	var results []roundResult
	for round := 1; round <= rounds; round++ {
		order := []bool{false, true}
		if round%2 == 0 {
			order = []bool{true, false}
		}
		for _, on := range order {
			res := roundResult{round: round, collector: on}
			var svc *logs.Service
			if on {
				if svc, err = logs.New(logs.Options{Home: home, Store: st}); err != nil {
					return err
				}
				svc.Start()
				if err := caughtUp(svc, node.DataDir, 5*time.Minute); err != nil { // what earlier rounds wrote
					return err
				}
			}
			var base int64
			if svc != nil {
				base = stored(svc)
			}
			bytes0, cpu0 := logBytes(node.DataDir), benchenv.CPUTime()
			tps, err := pgbench(node.Port, clients, threads, seconds)
			if err != nil {
				return err
			}
			res.tps, res.serverWritten = tps, logBytes(node.DataDir)-bytes0
			if svc != nil {
				ended := time.Now()
				if err := caughtUp(svc, node.DataDir, 5*time.Minute); err != nil {
					return err
				}
				// caughtUp needs 0.4 s without growth to decide; that is not lag.
				res.catchUp = max(0, time.Since(ended).Seconds()-0.4)
				res.lines = stored(svc) - base
				res.linesPerSec = float64(res.lines) / float64(seconds)
				res.cpuPerLine = float64((benchenv.CPUTime() - cpu0).Microseconds()) / float64(max(res.lines, 1))
				svc.Close()
			}
			fmt.Fprintf(os.Stderr, "round %d collector %-5v %8.0f tps  %8.0f lines/s stored  catch-up %.1f s  %.1f µs CPU/line\n",
				round, on, res.tps, res.linesPerSec, res.catchUp, res.cpuPerLine)
			results = append(results, res)
		}
	}
	ceiling, ceilCPU, err := ceiling(cpDir, nLines)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ceiling: %.0f lines/s, %.1f µs CPU/line\n", ceiling, ceilCPU)
	return report(out, note, results, clients, threads, seconds, scale, nLines, ceiling, ceilCPU, started, load0, benchenv.LoadAvg())
}

// ceiling stores a prepared jsonlog file of n lines (the shape pgbench's statements log) and
// returns lines per second and CPU µs per line.
func ceiling(root string, n int) (float64, float64, error) {
	dir := filepath.Join(root, "ceiling")
	dataDir := filepath.Join(dir, "node")
	if err := os.MkdirAll(filepath.Join(dataDir, "log"), 0o700); err != nil {
		return 0, 0, err
	}
	f, err := os.Create(filepath.Join(dataDir, "log", "postgresql-1.json"))
	if err != nil {
		return 0, 0, err
	}
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		line, _ := json.Marshal(map[string]any{"timestamp": now.Format("2006-01-02 15:04:05.000 MST"), "user": "postgres", "dbname": "postgres",
			"pid": 1000 + i%8, "remote_host": "127.0.0.1", "remote_port": 40000 + i%8, "session_id": "6564a1b2.3e8", "line_num": i,
			"ps": "SELECT", "session_start": "2026-01-01 00:00:00 UTC", "vxid": "3/" + strconv.Itoa(i), "txid": 0, "error_severity": "LOG",
			"message":          fmt.Sprintf("statement: SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i*7919%1000000),
			"application_name": "pgbench", "backend_type": "client backend", "query_id": 0})
		f.Write(append(line, '\n'))
	}
	f.Close()
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	if err := st.CreateCluster(store.Cluster{Name: "ceiling", LogExports: []string{logs.TypePostgreSQL},
		Members: []store.Member{{ID: "ceiling-1", DataDir: dataDir}}}); err != nil {
		return 0, 0, err
	}
	svc, err := logs.New(logs.Options{Home: filepath.Join(dir, "cp"), Store: st, Poll: 10 * time.Millisecond, MaxGroupBytes: 4 << 30})
	if err != nil {
		return 0, 0, err
	}
	cpu0, start := benchenv.CPUTime(), time.Now()
	svc.Start()
	defer svc.Close()
	for stored(svc) < int64(n) {
		if time.Since(start) > 10*time.Minute {
			return 0, 0, fmt.Errorf("ceiling: %d of %d lines after 10 minutes", stored(svc), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start).Seconds()
	return float64(n) / el, float64((benchenv.CPUTime() - cpu0).Microseconds()) / float64(n), nil
}

func report(out, note string, rs []roundResult, clients, threads, seconds, scale, nLines int, ceil, ceilCPU float64, started time.Time, load0, load1 string) error {
	var b strings.Builder
	pg, _ := exec.Command("pgbench", "--version").Output()
	fmt.Fprintf(&b, "# Log collection: pgbench -S with log_statement = all, collector off vs on, %s\n\n", started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Produced by `go run ./bench/logs`; every figure below was measured in this one run.\n\n")
	fmt.Fprintf(&b, "## Machine\n\n- CPU: %s, %d cores; %s/%s, %s\n- %s\n- Load average at start %s, at end %s\n",
		benchenv.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), strings.TrimSpace(string(pg)), load0, load1)
	fmt.Fprintf(&b, "- pgbench, PostgreSQL and the collector (in the benchmark process) share these cores\n")
	if note != "" {
		fmt.Fprintf(&b, "- Note: %s\n", note)
	}
	fmt.Fprintf(&b, "\n## Settings\n\n- `pgbench -S -n -c %d -j %d -T %d`, scale %d; one jsonlog line per statement (`log_statement = all`, `logging_collector`, `log_destination = 'stderr,jsonlog'`)\n", clients, threads, seconds, scale)
	fmt.Fprintf(&b, "- Collector: `controlplane/logs` as the control plane runs it (poll 200 ms, the postgresql group, fsync per batch), started before and stopped after each \"on\" run once it had stored every line\n")
	fmt.Fprintf(&b, "- Rounds alternate which run goes first\n\n")
	fmt.Fprintf(&b, "## Results\n\n| round | collector | TPS | lines stored/s | catch-up after the run (s) | collector CPU µs/line | jsonlog MB written |\n|---:|---|---:|---:|---:|---:|---:|\n")
	var off, on, ratios, lps []float64
	byRound := map[int][2]float64{}
	for _, r := range rs {
		state := "off"
		if r.collector {
			state = "on"
			on = append(on, r.tps)
			lps = append(lps, r.linesPerSec)
			fmt.Fprintf(&b, "| %d | on | %.0f | %.0f | %.1f | %.1f | %.1f |\n", r.round, r.tps, r.linesPerSec, r.catchUp, r.cpuPerLine, float64(r.serverWritten)/1e6)
		} else {
			off = append(off, r.tps)
			fmt.Fprintf(&b, "| %d | %s | %.0f | - | - | - | %.1f |\n", r.round, state, r.tps, float64(r.serverWritten)/1e6)
		}
		v := byRound[r.round]
		if r.collector {
			v[1] = r.tps
		} else {
			v[0] = r.tps
		}
		byRound[r.round] = v
	}
	for _, v := range byRound {
		if v[0] > 0 && v[1] > 0 {
			ratios = append(ratios, v[1]/v[0])
		}
	}
	slow := (1 - benchenv.Median(ratios)) * 100
	verdictSlow, verdictRate := "meets", "meets"
	if slow > 5 {
		verdictSlow = "misses"
	}
	if benchenv.Median(lps) < 10000 {
		verdictRate = "misses"
	}
	fmt.Fprintf(&b, "\n**Lines stored per second** (collector on, median over rounds): **%.0f** (%s the ≥ 10,000 lines/s target; the rate is what the node produced: catch-up after each run shows whether the collector kept up).  \n", benchenv.Median(lps), verdictRate)
	fmt.Fprintf(&b, "**Node slowed by** (1 − median over rounds of TPS on / TPS off): **%.1f%%** (%s the ≤ 5%% target); median TPS off %.0f, on %.0f.  \n", slow, verdictSlow, benchenv.Median(off), benchenv.Median(on))
	fmt.Fprintf(&b, "**Collector ceiling:** a prepared jsonlog file of %d pgbench-shaped lines stored at **%.0f lines/s** (%.1f µs CPU per line), with nothing else running in the benchmark.\n", nLines, ceil, ceilCPU)
	fmt.Fprintf(&b, "\nOn a machine whose cores are shared, the TPS ratio carries the noise of the other work as well as the collector's cost; the CPU per line is the collector's own cost.\n")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
