// Command scanprof splits the server CPU of one ORDER BY ... LIMIT query into where it goes,
// so that two index access methods answering the same query can be compared part by part:
// the work both share (parsing the query vector, the executor, heap fetches, the projection
// that recomputes the ORDER BY expression for each row, the protocol), the index scan
// itself, and, for borealis_hnsw, the Go runtime's own threads in the backend.
//
// It runs each statement -n times on one connection (prepared, the query vector as $1 in
// pgvector's text form, enable_seqscan off, both AMs' ef_search set), reads the backend's CPU
// time from /proc/<pid>/stat around the loop, and records the backend (every thread) with
// `perf record -g` at -freq Hz while it runs. Samples are classed by thread and call chain:
//
//	go runtime threads   any thread of the backend but its main one (sysmon, idle Ms)
//	engine search        the main thread inside the Go engine's search code
//	cgo/runtime          the main thread inside borealis but only in Go runtime code
//	index scan (pgvector) the main thread under pgvector's hnsw{begin,re,get,end}scan
//	shared               everything else on the main thread
//
// It must run as root (or with perf rights) on the server's machine: it reads the backend's
// /proc entry and attaches perf to it. The tables are the caller's; the query vectors come
// from the same seeded generator bench ann uses, so with --dataset synthetic:N:D[:metric] and
// the same --seed they are that run's queries. Usage, e.g.:
//
//	go run ./bench/scanprof --dsn 'host=/tmp/s port=5432 user=postgres' \
//	  --dataset synthetic:10000:1536:cosine --ef 10 --n 1500 \
//	  'SELECT id FROM t ORDER BY embedding::halfvec(1536) <=> $1::vector::halfvec(1536) LIMIT 10'
//
// --setup halfvec first (re)creates the tables those statements read, from the dataset's base
// rows: t with a borealis_hnsw and tpv with a pgvector hnsw index on embedding::halfvec(dim)
// (the dataset's metric's halfvec class, m 16, ef_construction 64, as bench ann builds them);
// --setup vector does the same with the index on the vector column itself.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/borealisdb/borealis/bench/dataset"
)

func main() {
	dsn := flag.String("dsn", "", "server to measure (libpq connection string)")
	spec := flag.String("dataset", "synthetic:10000:1536:cosine", "dataset whose queries are sent: "+dataset.Specs)
	seed := flag.Uint64("seed", 42, "seed of synthetic datasets (bench ann's default)")
	nq := flag.Int("queries", 200, "query vectors to cycle through")
	efs := flag.String("ef", "10", "comma-separated ef_search values")
	n := flag.Int("n", 1000, "timed queries per statement and ef")
	warm := flag.Int("warmup", 50, "untimed queries before each measurement")
	freq := flag.Int("freq", 2000, "perf sampling frequency (Hz); 0 skips perf")
	keep := flag.String("keep", "", "keep perf data files with this prefix (default: removed)")
	think := flag.Duration("think", 0, "client pause between timed queries (an idle client's gap; 0: back to back)")
	setup := flag.String("setup", "", "halfvec or vector: first (re)create tables t (borealis_hnsw) and tpv (pgvector hnsw) from the dataset, indexed on embedding::halfvec(dim) or on the vector column; empty: use the caller's tables")
	flag.Parse()
	if *setup != "" && *setup != "halfvec" && *setup != "vector" {
		fmt.Fprintln(os.Stderr, "--setup: want halfvec or vector")
		os.Exit(2)
	}
	if *dsn == "" || (flag.NArg() == 0 && *setup == "") {
		fmt.Fprintln(os.Stderr, "usage: scanprof --dsn DSN [flags] 'SELECT ... $1 ...' ...")
		os.Exit(2)
	}
	ds, err := dataset.Open(*spec, dataset.Options{Queries: *nq, Seed: *seed})
	if err != nil {
		fail(err)
	}
	qs := make([]string, ds.NQ())
	for i := range qs {
		qs[i] = vectorText(ds.Query(i))
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		fail(err)
	}
	defer conn.Close(ctx)
	if *setup != "" {
		if err := setupTables(ctx, conn, ds, *setup); err != nil {
			fail(err)
		}
	}
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		fail(err)
	}
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off"); err != nil {
		fail(err)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("# scanprof %s, %s, load average %s\n", time.Now().UTC().Format(time.RFC3339), *spec, strings.Join(strings.Fields(string(load))[:3], " "))
	for _, sql := range flag.Args() {
		for _, ef := range strings.Split(*efs, ",") {
			ef = strings.TrimSpace(ef)
			if _, err := strconv.Atoi(ef); err != nil {
				fail(fmt.Errorf("--ef %q", ef))
			}
			// Each AM reads its own GUC; setting one the server lacks fails, so both are tried.
			conn.Exec(ctx, "SET hnsw.ef_search = "+ef)
			conn.Exec(ctx, "SET borealis.ef_search = "+ef)
			if err := measure(ctx, conn, pid, sql, ef, qs, *n, *warm, *freq, *keep, *think); err != nil {
				fail(err)
			}
		}
	}
}

func measure(ctx context.Context, conn *pgx.Conn, pid int, sql, ef string, qs []string, n, warm, freq int, keep string, think time.Duration) error {
	run := func(i int) error {
		rows, err := conn.Query(ctx, sql, qs[i%len(qs)])
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	}
	for i := range warm {
		if err := run(i); err != nil {
			return err
		}
	}
	var perf *exec.Cmd
	data := ""
	if freq > 0 {
		f, err := os.CreateTemp("", "scanprof-*.data")
		if err != nil {
			return err
		}
		f.Close()
		data = f.Name()
		if keep != "" {
			data = fmt.Sprintf("%s-ef%s.data", keep, ef)
		}
		perf = exec.Command("perf", "record", "-q", "-g", "-F", strconv.Itoa(freq), "-p", strconv.Itoa(pid), "-o", data)
		if err := perf.Start(); err != nil {
			return fmt.Errorf("perf: %w", err)
		}
		time.Sleep(500 * time.Millisecond) // perf attaches
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	for i := range n {
		if err := run(i); err != nil {
			return err
		}
		if think > 0 {
			time.Sleep(think)
		}
	}
	wall := time.Since(start) - time.Duration(n)*think
	cpu1, _ := procCPU(pid)
	fmt.Printf("\n%s\n  ef %s, think %v: %d queries, %.0f QPS, wall %.0f us/query, backend CPU %.0f us/query (/proc)\n",
		sql, ef, think, n, float64(n)/wall.Seconds(), float64(wall.Microseconds())/float64(n), (cpu1-cpu0)*1e6/float64(n))
	if perf == nil {
		return nil
	}
	perf.Process.Signal(syscall.SIGINT)
	perf.Wait()
	if keep == "" {
		defer os.Remove(data)
	}
	return classify(data, freq, n)
}

// procCPU is the process's user + system time in seconds (all threads).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fs[11], 64)
	st, _ := strconv.ParseFloat(fs[12], 64)
	return (ut + st) / 100, nil // USER_HZ
}

const (
	catShared   = "shared: parse, executor, heap, projection, protocol"
	catPgvector = "index scan (pgvector)"
	catSearch   = "index scan: engine search (Go)"
	catCgo      = "index scan: cgo/Go runtime on the query thread"
	catThreads  = "Go runtime threads (sysmon, idle Ms)"
)

// classify reads perf's samples (thread, call chain) and prints the CPU per query of each
// class.
func classify(data string, freq, n int) error {
	cmd := exec.Command("perf", "script", "-i", data, "-F", "tid,ip,sym,dso")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	type sample struct {
		tid   int
		chain string
	}
	var samples []sample
	var cur *sample
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	flush := func() {
		if cur != nil {
			samples = append(samples, *cur)
			cur = nil
		}
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case !strings.HasPrefix(line, "\t"):
			flush()
			tid, _ := strconv.Atoi(strings.Fields(line)[0])
			cur = &sample{tid: tid}
		case cur != nil:
			cur.chain += " " + strings.TrimSpace(line)
		}
	}
	flush()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	perTid := map[int]int{}
	for _, s := range samples {
		perTid[s.tid]++
	}
	main, most := 0, -1
	for tid, c := range perTid {
		if c > most {
			main, most = tid, c
		}
	}
	counts := map[string]int{}
	for _, s := range samples {
		counts[class(s.tid == main, s.chain)]++
	}
	total := len(samples)
	if total == 0 {
		fmt.Println("  (no samples)")
		return nil
	}
	cats := make([]string, 0, len(counts))
	for c := range counts {
		cats = append(cats, c)
	}
	sort.Slice(cats, func(i, j int) bool { return counts[cats[i]] > counts[cats[j]] })
	us := func(c int) float64 { return float64(c) / float64(freq) * 1e6 / float64(n) }
	for _, c := range cats {
		fmt.Printf("  %-52s %8.0f us/query %5.1f%%\n", c, us(counts[c]), 100*float64(counts[c])/float64(total))
	}
	fmt.Printf("  %-52s %8.0f us/query (%d samples at %d Hz)\n", "total (perf)", us(total), total, freq)
	return nil
}

func class(mainThread bool, chain string) string {
	switch {
	case !mainThread:
		return catThreads
	case strings.Contains(chain, "hnswgettuple") || strings.Contains(chain, "hnswbeginscan") ||
		strings.Contains(chain, "hnswrescan") || strings.Contains(chain, "hnswendscan"):
		return catPgvector
	case strings.Contains(chain, "borealis_engine.so") || strings.Contains(chain, "bhnsw_"):
		if strings.Contains(chain, "hnsw.") || strings.Contains(chain, "simd.") {
			return catSearch
		}
		return catCgo
	}
	return catShared
}

// vectorText is v in pgvector's text form.
func vectorText(v []float32) string { return pgvector.NewVector(v).String() }

// setupTables loads d's base rows into t by binary COPY, copies them into tpv, and builds each
// table's index with d's metric's class of element: "halfvec" on embedding::halfvec(dim),
// "vector" on the column, as bench ann's --element does.
func setupTables(ctx context.Context, conn *pgx.Conn, d *dataset.Dataset, element string) error {
	if d.Sparse != nil {
		return fmt.Errorf("--setup %s needs a dense dataset", element)
	}
	if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
		return err
	}
	class := map[dataset.Metric]string{dataset.L2: element + "_l2_ops", dataset.Cosine: element + "_cosine_ops", dataset.IP: element + "_ip_ops"}[d.Metric]
	if class == "" {
		return fmt.Errorf("--setup %s: no %s class for metric %v", element, element, d.Metric)
	}
	rows := make([][]any, d.N())
	for i := range rows {
		rows[i] = []any{int32(i), pgvector.NewVector(d.Row(i))}
	}
	target := fmt.Sprintf("((embedding::halfvec(%d)) %s) WITH (m = 16, ef_construction = 64)", d.Dim, class)
	if element == "vector" {
		target = fmt.Sprintf("(embedding %s) WITH (m = 16, ef_construction = 64)", class)
	}
	for _, st := range []string{
		"DROP TABLE IF EXISTS t, tpv",
		fmt.Sprintf("CREATE TABLE t (id int4 NOT NULL, embedding vector(%d) NOT NULL)", d.Dim),
	} {
		if _, err := conn.Exec(ctx, st); err != nil {
			return err
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"id", "embedding"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("COPY into t: %w", err)
	}
	for _, st := range []string{
		"CREATE TABLE tpv AS SELECT * FROM t",
		"SET maintenance_work_mem = '1GB'",
		"SET max_parallel_maintenance_workers = 1",
		"CREATE INDEX ON t USING borealis_hnsw " + target,
		"CREATE INDEX ON tpv USING hnsw " + target,
		"VACUUM (ANALYZE) t",
		"VACUUM (ANALYZE) tpv",
	} {
		fmt.Fprintf(os.Stderr, "setup: %s\n", st)
		if _, err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("%s: %w", st, err)
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "scanprof:", err)
	os.Exit(1)
}
