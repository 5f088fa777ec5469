// Command logs measures log collection and export: pgbench against a node with
// log_statement = all (one jsonlog line per statement), in rounds with the control plane's log
// collector off and on (a pair per round, alternating which goes first). With the collector
// on, the lines are stored in the postgresql group and exported over OTLP/HTTP to a receiver
// in a separate process (it counts the records in the protobuf wire format, and its CPU is
// not counted as the collector's). The report gives the lines per second the node wrote,
// stored and exported, the collector's CPU per line and as a share of the node's, and how
// much it slowed the node: the median over rounds of 1 − TPS on / TPS off within each
// round's pair. A second figure is the collector's ceiling: storing and exporting a prepared
// jsonlog file. Writes bench/results/logs.md and a plot beside it (logs.png).
//
//	go run ./bench/logs [-clients 4] [-rounds 6] [-seconds 10] [-scale 10] [-pipeline 10] [-lines 300000] [-original]
//
// -pipeline N runs a script of N selects in one pipeline (pgbench -M prepared) per
// transaction (0: the built-in select-only script), so the node writes more lines per second
// than a client round trip per statement allows on a small machine. Run it at normal priority
// under `flock /tmp/borealis-bench.lock` on a shared machine.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/borealisdb/borealis/bench/internal/benchenv"
	"github.com/borealisdb/borealis/controlplane/logs"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

type config struct {
	clients, threads, rounds, seconds, scale, pipeline, lines int
	out, note, profile                                        string
	original                                                  bool
}

func main() {
	var c config
	flag.IntVar(&c.clients, "clients", 4, "pgbench clients (-c)")
	flag.IntVar(&c.threads, "threads", 2, "pgbench threads (-j)")
	flag.IntVar(&c.rounds, "rounds", 6, "rounds; each runs pgbench with the collector off and on (off first in odd rounds)")
	flag.IntVar(&c.seconds, "seconds", 10, "seconds per pgbench run (-T)")
	flag.IntVar(&c.scale, "scale", 10, "pgbench scale (-s)")
	flag.IntVar(&c.pipeline, "pipeline", 10, "selects per pipelined transaction (0: pgbench's built-in select-only script)")
	flag.IntVar(&c.lines, "lines", 300000, "lines in the prepared file of the ceiling measurement")
	flag.StringVar(&c.out, "out", "bench/results/logs.md", "markdown report")
	flag.StringVar(&c.note, "note", "", "a line about the conditions, added to the report")
	flag.BoolVar(&c.original, "original", false, "export each line's jsonlog text too (log.record.original, serve --otlp-logs-original)")
	flag.StringVar(&c.profile, "cpuprofile", "", "write the benchmark process's CPU profile (collector and exporter) of each \"on\" run to this path + .roundN")
	receiver := flag.Bool("otlp-receiver", false, "internal: serve as the OTLP/HTTP receiver (prints its address)")
	flag.Parse()
	if *receiver {
		serveReceiver()
		return
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/logs:", err)
		os.Exit(1)
	}
}

type roundResult struct {
	round         int
	collector     bool
	tps           float64
	nodeLines     int64   // lines the node wrote during the run
	lines         int64   // lines stored during the run and its catch-up (collector on)
	exported      int64   // lines the receiver got during the run and its catch-up
	linesPerSec   float64 // node lines / run seconds
	catchUp       float64 // seconds after pgbench ended until every line was stored and exported
	cpuPerLine    float64 // collector (and exporter) CPU µs per stored line
	nodeCPUPerTxn float64 // the node's CPU µs per transaction
	fromMemory    int64   // lines the exporter sent from the stream's memory (not read back)
}

// serveReceiver is the OTLP/HTTP receiver process: it walks each request's protobuf wire
// format (LogsData: resource_logs=1 → scope_logs=2 → log_records=2) and counts records
// without decoding them, so it takes little of the CPU the node and collector share; GET
// /count answers the total. (The tests decode the official messages field by field.)
func serveReceiver() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	var n atomic.Int64
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			fmt.Fprint(w, n.Load())
			return
		}
		body, _ := io.ReadAll(r.Body)
		var count int64
		err := eachField(body, 1, func(rl []byte) error {
			return eachField(rl, 2, func(sl []byte) error {
				return eachField(sl, 2, func([]byte) error { count++; return nil })
			})
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n.Add(count)
	}))
}

// eachField calls fn with each length-delimited field numbered num of a protobuf message.
func eachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if typ != protowire.BytesType {
			l = protowire.ConsumeFieldValue(n, typ, b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			b = b[l:]
			continue
		}
		v, l := protowire.ConsumeBytes(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if n == num {
			if err := fn(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// startReceiver starts this program as the receiver and returns its address.
func startReceiver() (string, func(), error) {
	cmd := exec.Command(os.Args[0], "-otlp-receiver")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("OTLP receiver: %w", err)
	}
	return strings.TrimSpace(addr), stop, nil
}

func received(addr string) int64 {
	resp, err := http.Get("http://" + addr + "/count")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n
}

// lineCounter counts the lines of the node's jsonlog files, reading each byte once (the
// benchmark's own reading must not be counted as the collector's CPU).
type lineCounter struct {
	cpu   time.Duration // spent counting
	dir   string
	off   map[string]int64
	lines int64
	buf   []byte
}

func newLineCounter(dir string) *lineCounter {
	return &lineCounter{dir: dir, off: map[string]int64{}, buf: make([]byte, 1<<20)}
}

// count returns the lines written so far. The CPU it spends (its own thread's: reading the
// node's files is the benchmark's work, not the collector's) is added to lc.cpu.
func (lc *lineCounter) count() int64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadCPU()
	defer func() { lc.cpu += threadCPU() - t0 }()
	files, _ := filepath.Glob(filepath.Join(lc.dir, "log", "*.json"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		for {
			n, _ := fh.ReadAt(lc.buf, lc.off[f])
			if n == 0 {
				break
			}
			lc.lines += int64(bytes.Count(lc.buf[:n], []byte("\n")))
			lc.off[f] += int64(n)
		}
		fh.Close()
	}
	return lc.lines
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func stored(s *logs.Service) int64 {
	var n int64
	for _, v := range s.Snapshot().Ingested {
		n += v
	}
	return n
}

// caughtUp waits until the collector stored every line the node wrote (the node writes
// nothing else meanwhile) and the receiver has every stored line: prior lines were stored by
// earlier collector instances, whose records the receiver counted too.
func caughtUp(s *logs.Service, lc *lineCounter, prior int64, addr string, limit time.Duration) error {
	start := time.Now()
	for {
		want := lc.count()
		n := prior + stored(s)
		r := received(addr)
		if n >= want && r >= n {
			return nil
		}
		if time.Since(start) > limit {
			return fmt.Errorf("the collector did not catch up within %s: %d of %d lines stored, %d exported", limit, n, want, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

func pgbench(c config, port int, script string) (float64, error) {
	args := []string{"-n", "-c", strconv.Itoa(c.clients), "-j", strconv.Itoa(c.threads),
		"-T", strconv.Itoa(c.seconds), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres"}
	if script == "" {
		args = append(args, "-S")
	} else {
		args = append(args, "-M", "prepared", "-f", script)
	}
	o, err := exec.Command("pgbench", append(args, "postgres")...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %v\n%s", err, o)
	}
	m := tpsRE.FindSubmatch(o)
	if m == nil {
		return 0, fmt.Errorf("no tps in pgbench output:\n%s", o)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func run(c config) error {
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
	fmt.Fprintf(os.Stderr, "initialising pgbench scale %d on port %d\n", c.scale, node.Port)
	if o, err := exec.Command("pgbench", "-i", "-q", "-s", strconv.Itoa(c.scale), "-h", "127.0.0.1", "-p", strconv.Itoa(node.Port), "-U", "postgres", "postgres").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, o)
	}
	if o, err := exec.Command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(node.Port), "-U", "postgres", "-d", "postgres", "-c",
		"ALTER SYSTEM SET log_statement = 'all'", "-c", "SELECT pg_reload_conf()").CombinedOutput(); err != nil {
		return fmt.Errorf("psql: %v\n%s", err, o)
	}
	script := ""
	if c.pipeline > 0 {
		script = filepath.Join(root, "pipeline.sql")
		var b strings.Builder
		b.WriteString("\\set aid random(1, 100000 * :scale)\n\\startpipeline\n")
		for i := 0; i < c.pipeline; i++ {
			b.WriteString("SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n")
		}
		b.WriteString("\\endpipeline\n")
		if err := os.WriteFile(script, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	recvAddr, stopReceiver, err := startReceiver()
	if err != nil {
		return err
	}
	defer stopReceiver()
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
	lc := newLineCounter(node.DataDir)
	var prior int64 // lines stored by the collectors of earlier rounds
	var results []roundResult
	for round := 1; round <= c.rounds; round++ {
		order := []bool{false, true}
		if round%2 == 0 {
			order = []bool{true, false}
		}
		for _, on := range order {
			res := roundResult{round: round, collector: on}
			var svc *logs.Service
			var base, rbase, mbase int64
			if on {
				if svc, err = logs.New(logs.Options{Home: home, Store: st, Export: logs.ExportOptions{Endpoint: "http://" + recvAddr + "/v1/logs", Original: c.original}}); err != nil {
					return err
				}
				svc.Start()
				// What earlier rounds wrote is collected before this one starts.
				if err := caughtUp(svc, lc, prior, recvAddr, 10*time.Minute); err != nil {
					return err
				}
				base, rbase = stored(svc), received(recvAddr)
				if ex, ok := svc.ExportStats(); ok {
					mbase = ex.FromMemory // the catch-up above is not this run's
				}
			}
			var prof *os.File
			if on && c.profile != "" {
				if prof, err = os.Create(fmt.Sprintf("%s.round%d", c.profile, round)); err != nil {
					return err
				}
				pprof.StartCPUProfile(prof)
			}
			line0 := lc.count()
			cpu0, own0, node0 := benchenv.CPUTime(), lc.cpu, benchenv.ServerCPU(node.PID())
			tps, err := pgbench(c, node.Port, script)
			if err != nil {
				return err
			}
			ended := time.Now()
			time.Sleep(300 * time.Millisecond) // backends are reaped a moment after pgbench disconnects
			res.tps = tps
			res.nodeCPUPerTxn = float64((benchenv.ServerCPU(node.PID()) - node0).Microseconds()) / (tps * float64(c.seconds))
			if svc != nil {
				if err := caughtUp(svc, lc, prior, recvAddr, 10*time.Minute); err != nil {
					return err
				}
				res.catchUp = max(0, time.Since(ended).Seconds()-0.3)
				res.lines, res.exported = stored(svc)-base, received(recvAddr)-rbase
				res.cpuPerLine = float64((benchenv.CPUTime() - cpu0 - (lc.cpu - own0)).Microseconds()) / float64(max(res.lines, 1))
				if ex, ok := svc.ExportStats(); ok {
					res.fromMemory = ex.FromMemory - mbase
				}
				svc.Close()
				prior += stored(svc)
				if prof != nil {
					pprof.StopCPUProfile()
					prof.Close()
				}
			}
			res.nodeLines = lc.count() - line0
			res.linesPerSec = float64(res.nodeLines) / float64(c.seconds)
			fmt.Fprintf(os.Stderr, "round %d collector %-5v %8.0f tps  %8.0f lines/s written  %d stored %d exported  catch-up %.1f s  %.2f µs CPU/line\n",
				round, on, res.tps, res.linesPerSec, res.lines, res.exported, res.catchUp, res.cpuPerLine)
			results = append(results, res)
		}
	}
	load1 := benchenv.LoadAvg()
	ceil, err := ceiling(cpDir, c.lines, recvAddr, c.original)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ceiling: stored %.0f lines/s, exported %.0f lines/s, %.2f µs CPU/line\n", ceil.storedPerSec, ceil.exportedPerSec, ceil.cpuPerLine)
	return report(c, results, ceil, started, load0, load1, benchenv.LoadAvg())
}

type ceilingResult struct {
	storedPerSec, exportedPerSec, cpuPerLine float64
}

// ceiling stores and exports a prepared jsonlog file of n lines (the shape pgbench's
// statements log), timing the collector alone: lines per second stored and exported, and CPU
// µs per line.
func ceiling(root string, n int, recvAddr string, original bool) (ceilingResult, error) {
	var res ceilingResult
	dir := filepath.Join(root, "ceiling")
	dataDir := filepath.Join(dir, "node")
	if err := os.MkdirAll(filepath.Join(dataDir, "log"), 0o700); err != nil {
		return res, err
	}
	f, err := os.Create(filepath.Join(dataDir, "log", "postgresql-1.json"))
	if err != nil {
		return res, err
	}
	w := bufio.NewWriter(f)
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		line, _ := json.Marshal(map[string]any{"timestamp": now.Add(time.Duration(i) * 50 * time.Microsecond).Format("2006-01-02 15:04:05.000 MST"), "user": "postgres", "dbname": "postgres",
			"pid": 1000 + i%8, "remote_host": "127.0.0.1", "remote_port": 40000 + i%8, "session_id": "6564a1b2.3e8", "line_num": i,
			"ps": "SELECT", "session_start": "2026-01-01 00:00:00 UTC", "vxid": "3/" + strconv.Itoa(i), "txid": 0, "error_severity": "LOG",
			"message":          "execute P0_1: SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
			"detail":           fmt.Sprintf("parameters: $1 = '%d'", i*7919%1000000),
			"application_name": "pgbench", "backend_type": "client backend", "query_id": 0})
		w.Write(append(line, '\n'))
	}
	w.Flush()
	f.Close()
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		return res, err
	}
	defer st.Close()
	if err := st.CreateCluster(store.Cluster{Name: "ceiling", LogExports: []string{logs.TypePostgreSQL},
		Members: []store.Member{{ID: "ceiling-1", DataDir: dataDir}}}); err != nil {
		return res, err
	}
	svc, err := logs.New(logs.Options{Home: filepath.Join(dir, "cp"), Store: st, Poll: 10 * time.Millisecond, MaxGroupBytes: 4 << 30,
		Export: logs.ExportOptions{Endpoint: "http://" + recvAddr + "/v1/logs", Interval: 10 * time.Millisecond, Original: original}})
	if err != nil {
		return res, err
	}
	r0 := received(recvAddr)
	cpu0, start := benchenv.CPUTime(), time.Now()
	svc.Start()
	defer svc.Close()
	var storedAt time.Duration
	for i := 0; ; i++ {
		if storedAt == 0 && stored(svc) >= int64(n) {
			storedAt = time.Since(start)
		}
		// The receiver is asked every 50 ms: each question costs this process CPU too.
		if storedAt > 0 && i%10 == 0 && received(recvAddr)-r0 >= int64(n) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return res, fmt.Errorf("ceiling: %d of %d lines stored, %d exported after 10 minutes", stored(svc), n, received(recvAddr)-r0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	res.storedPerSec = float64(n) / storedAt.Seconds()
	res.exportedPerSec = float64(n) / el.Seconds()
	res.cpuPerLine = float64((benchenv.CPUTime() - cpu0).Microseconds()) / float64(n)
	return res, nil
}

// autogroup is the kernel's sched_autogroup_enabled setting: with it on (1, the default)
// nice ranks processes only within a session, so other sessions' niced work still takes its
// share of the cores from a benchmark.
func autogroup() string {
	b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func report(c config, rs []roundResult, ceil ceilingResult, started time.Time, load0, load1, load2 string) error {
	var b strings.Builder
	pg, _ := exec.Command("pgbench", "--version").Output()
	workload := "`pgbench -S` (built-in select-only script: one statement per transaction)"
	if c.pipeline > 0 {
		workload = fmt.Sprintf("`pgbench -M prepared -f` a script of %d selects of `pgbench_accounts` in one pipeline per transaction", c.pipeline)
	}
	body := "the message as body; severity, times, SQLSTATE, pid, database, user, backend type as attributes; cluster, instance and log group as resource attributes"
	if c.original {
		body += "; plus the jsonlog line (log.record.original, `--otlp-logs-original`)"
	}
	fmt.Fprintf(&b, "# Log collection and export: pgbench with log_statement = all, collector off vs on, %s\n\n", started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Produced by `%s`; every figure below was measured in this one run.\n\n", strings.Join(append([]string{"go run ./bench/logs"}, os.Args[1:]...), " "))
	fmt.Fprintf(&b, "## Machine\n\n- CPU: %s, %d cores; %s/%s, %s\n- %s\n- Load average (1, 5, 15 min) at start %s, after the rounds %s, at end %s\n",
		benchenv.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), strings.TrimSpace(string(pg)), load0, load1, load2)
	fmt.Fprintf(&b, "- kernel.sched_autogroup_enabled = %s (0: the other sessions' work, run at nice 19, yields to this benchmark, which runs at normal priority)\n", autogroup())
	fmt.Fprintf(&b, "- pgbench, PostgreSQL, the collector (in the benchmark process) and the OTLP receiver (a separate process) share these cores\n")
	if c.note != "" {
		fmt.Fprintf(&b, "- Note: %s\n", c.note)
	}
	fmt.Fprintf(&b, "\n## Settings\n\n- Workload: %s, `-c %d -j %d -T %d`, scale %d; one jsonlog line per statement (`log_statement = all`, `logging_collector`, `log_destination = 'stderr,jsonlog'`, as the control plane runs nodes)\n", workload, c.clients, c.threads, c.seconds, c.scale)
	fmt.Fprintf(&b, "- Collector: `controlplane/logs` as `borealis serve` runs it (poll 200 ms, the postgresql group, a write per batch and an fsync per stream at most every 500 ms, export of synced records in batches of up to 2048 to the receiver over OTLP/HTTP from the stream's memory), started before and stopped after each \"on\" run once every line was stored and exported\n")
	fmt.Fprintf(&b, "- OTLP body: %s\n", body)
	fmt.Fprintf(&b, "- Baseline: the \"off\" runs have `log_statement = all` too, and the node writes the same jsonlog (and stderr) files; only the collector is absent. Writing the log is PostgreSQL's cost; the slowdown measured is the collector's\n")
	fmt.Fprintf(&b, "- Collector CPU: the benchmark process's CPU (user + system) from the start of the run to the end of its catch-up, less what its own counting of the node's lines spent (measured on its thread); the OTLP receiver is a separate process and not counted (its cost is in the TPS)\n")
	fmt.Fprintf(&b, "- Rounds are pairs, off-on then on-off alternately; each round's slowdown is 1 − TPS on / TPS off of its own pair, and the verdict takes the median over rounds\n\n")
	fmt.Fprintf(&b, "## Results\n\n| round | collector | TPS | node lines/s | stored | exported (from memory) | catch-up after the run (s) | collector CPU µs/line | node CPU µs/txn | collector CPU / node CPU | slowdown |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var off, on, slows, lps, lpsOff, cpu, share []float64
	byRound := map[int][2]float64{}
	for _, r := range rs {
		v := byRound[r.round]
		if r.collector {
			v[1] = r.tps
		} else {
			v[0] = r.tps
		}
		byRound[r.round] = v
	}
	slowOf := func(round int) float64 {
		v := byRound[round]
		if v[0] <= 0 || v[1] <= 0 {
			return 0
		}
		return (1 - v[1]/v[0]) * 100
	}
	var rounds []int
	for _, r := range rs {
		if r.collector {
			on = append(on, r.tps)
			lps = append(lps, r.linesPerSec)
			cpu = append(cpu, r.cpuPerLine)
			// The collector's CPU for one transaction's lines, against the node's CPU for it.
			sh := 100 * r.cpuPerLine * float64(r.nodeLines) / (r.tps * float64(c.seconds)) / r.nodeCPUPerTxn
			share = append(share, sh)
			slows = append(slows, slowOf(r.round))
			rounds = append(rounds, r.round)
			fmt.Fprintf(&b, "| %d | on | %.0f | %.0f | %d | %d (%d) | %.1f | %.2f | %.0f | %.1f%% | %.1f%% |\n", r.round, r.tps, r.linesPerSec, r.lines, r.exported, r.fromMemory, r.catchUp, r.cpuPerLine, r.nodeCPUPerTxn, sh, slowOf(r.round))
		} else {
			off = append(off, r.tps)
			lpsOff = append(lpsOff, r.linesPerSec)
			fmt.Fprintf(&b, "| %d | off | %.0f | %.0f | - | - | - | - | %.0f | - | |\n", r.round, r.tps, r.linesPerSec, r.nodeCPUPerTxn)
		}
	}
	spread := func(v []float64) (float64, float64) {
		lo, hi := 0.0, 0.0
		for i, x := range v {
			if i == 0 || x < lo {
				lo = x
			}
			if i == 0 || x > hi {
				hi = x
			}
		}
		return lo, hi
	}
	slow := benchenv.Median(slows)
	verdictSlow, verdictRate := "meets", "meets"
	if slow > 5 {
		verdictSlow = "misses"
	}
	if benchenv.Median(lps) < 10000 {
		verdictRate = "misses"
	}
	minOff, maxOff := spread(off)
	minSlow, maxSlow := spread(slows)
	fmt.Fprintf(&b, "\n**Lines per second** the node wrote with the collector on (median over rounds): **%.0f** (off: %.0f), every one stored and exported (%s the ≥ 10,000 lines/s target; the catch-up column shows whether the collector kept up).  \n", benchenv.Median(lps), benchenv.Median(lpsOff), verdictRate)
	fmt.Fprintf(&b, "**Node slowed by** (median over rounds of 1 − TPS on / TPS off of the round's pair): **%.1f%%** (rounds ranged %.1f%% to %.1f%%); median TPS off %.0f, on %.0f; the \"off\" runs alone ranged %.0f–%.0f TPS.  \n", slow, minSlow, maxSlow, benchenv.Median(off), benchenv.Median(on), minOff, maxOff)
	fmt.Fprintf(&b, "**Verdict on the ≤ 5%% slowdown:** %s.  \n", verdictSlow)
	fmt.Fprintf(&b, "**Collector CPU** (collection and export, median over rounds): **%.2f µs per line**, **%.1f%%** of the node's own CPU for the same statements (what the node would lose if every one of the collector's cycles came out of the node's; on these 2 cores pgbench, the receiver and idle gaps share the rest, so the TPS loss is smaller).  \n", benchenv.Median(cpu), benchenv.Median(share))
	fmt.Fprintf(&b, "**Collector ceiling:** a prepared jsonlog file of %d pgbench-shaped lines stored at **%.0f lines/s** and exported at **%.0f lines/s** (%.2f µs CPU per line), with no node running.\n", c.lines, ceil.storedPerSec, ceil.exportedPerSec, ceil.cpuPerLine)
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		return err
	}
	png := strings.TrimSuffix(c.out, ".md") + ".png"
	if err := plotRounds(png, rounds, slows, share, started); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\n![slowdown and collector CPU share per round](%s)\n", filepath.Base(png))
	// Earlier runs, kept by hand under "## History", stay in the file.
	if old, err := os.ReadFile(c.out); err == nil {
		if i := bytes.Index(old, []byte("\n## History")); i >= 0 {
			b.Write(old[i:])
		}
	}
	return os.WriteFile(c.out, []byte(b.String()), 0o644)
}

// plotRounds draws each round's slowdown and the collector's CPU share, with the 5% target.
func plotRounds(path string, rounds []int, slows, share []float64, started time.Time) error {
	p := plot.New()
	p.Title.Text = "Log collector on vs off, pgbench with log_statement = all (" + started.Format("2006-01-02 15:04 UTC") + ")"
	p.X.Label.Text = "round"
	p.Y.Label.Text = "%"
	p.Add(plotter.NewGrid())
	xy := func(v []float64) plotter.XYs {
		out := make(plotter.XYs, len(v))
		for i := range v {
			out[i] = plotter.XY{X: float64(rounds[i]), Y: v[i]}
		}
		return out
	}
	l1, p1, err := plotter.NewLinePoints(xy(slows))
	if err != nil {
		return err
	}
	l1.Color, p1.Color = color.RGBA{R: 200, A: 255}, color.RGBA{R: 200, A: 255}
	l2, p2, err := plotter.NewLinePoints(xy(share))
	if err != nil {
		return err
	}
	l2.Color, p2.Color = color.RGBA{B: 200, A: 255}, color.RGBA{B: 200, A: 255}
	target, err := plotter.NewLine(plotter.XYs{{X: float64(rounds[0]), Y: 5}, {X: float64(rounds[len(rounds)-1]), Y: 5}})
	if err != nil {
		return err
	}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l1, p1, l2, p2, target)
	p.Legend.Add("node slowdown: 1 − TPS on / TPS off", l1, p1)
	p.Legend.Add("collector CPU / node CPU", l2, p2)
	p.Legend.Add("target: slowdown ≤ 5%", target)
	p.Legend.Top = true
	p.BackgroundColor = color.White
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}
