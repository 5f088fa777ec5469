// Command resume measures resume on connect: a cluster with auto-pause on pauses after 1 s
// idle, then a client connects to the paused cluster's endpoint and runs a borealis_hnsw
// top-10 query on rows×dims vectors; the time from the client's connect to the query's last
// row is one sample. It repeats for -cycles pauses and writes the figures (p50, p90, p99, max,
// every sample, the server-side resume time from the events) and a plot to bench/results.
//
//	go run ./bench/resume [-rows 100000] [-dims 128] [-cycles 20] [-enforce off|on|both] [-out bench/results/resume]
//
// It runs a control plane in process (cluster.Manager) on local PostgreSQL processes, like
// `borealis serve`, with BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS=1. -enforce both runs two
// control planes, one enforcing capacity with cgroups (as `borealis serve` does by default)
// and one not, each with its own cluster and copy of the data, and alternates their cycles so
// both see the same load; -enforce all adds a third, enforcing without the cgroup start-up
// boost (cluster.Options.NoCgroupStartupBoost), to show what that boost buys.
package main

import (
	"context"
	"flag"
	"fmt"
	"image/color"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/store"
)

func main() {
	rows := flag.Int("rows", 100000, "vectors in the table")
	dims := flag.Int("dims", 128, "dimensions")
	cycles := flag.Int("cycles", 20, "pause/resume cycles")
	out := flag.String("out", "bench/results/resume", "output path without extension (.md, .png)")
	enforce := flag.String("enforce", "off", "capacity enforcement (cgroup limits) of the control plane: off, on, both (alternating cycles), or all (both, plus enforced without the cgroup start-up boost)")
	flag.Parse()
	var modes []mode
	switch *enforce {
	case "off":
		modes = []mode{unenforced}
	case "on":
		modes = []mode{enforced}
	case "both":
		modes = []mode{enforced, unenforced}
	case "all":
		modes = []mode{enforced, enforcedNoBoost, unenforced}
	default:
		log.Fatalf("-enforce %q: use off, on, both or all", *enforce)
	}
	if *cycles < 1 || *rows < 10 || *dims < 1 {
		log.Fatalf("-cycles must be at least 1, -rows at least 10 and -dims at least 1")
	}
	if err := run(*rows, *dims, *cycles, modes, *out); err != nil {
		log.Fatal(err)
	}
}

var loadStart string

// mode is how a bench's control plane enforces capacity.
type mode string

const (
	enforced        mode = "enforced"
	enforcedNoBoost mode = "enforced, no cgroup start-up boost"
	unenforced      mode = "unenforced"
)

// bench is one control plane with its cluster, loaded and set to auto-pause.
type bench struct {
	name  mode
	m     *cluster.Manager
	dsn   string
	setup time.Duration
	mode  string // the enforcement mode the control plane reports
	cs    []cycle
}

func run(rows, dims, cycles int, modes []mode, out string) error {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		loadStart = strings.TrimSpace(string(b))
	}
	os.Setenv(cluster.AutoPauseFloorEnv, "1")
	var bs []*bench
	for _, md := range modes {
		b, cleanup, err := setUp(rows, dims, md)
		if cleanup != nil {
			defer cleanup()
		}
		if err != nil {
			return err
		}
		bs = append(bs, b)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range cycles {
		for _, b := range bs {
			vec := make([]string, dims)
			for j := range vec {
				vec[j] = fmt.Sprintf("%.4f", r.Float32())
			}
			c, err := b.cycle(i, "["+strings.Join(vec, ",")+"]")
			if err != nil {
				return err
			}
			b.cs = append(b.cs, c)
		}
	}
	return report(out, rows, dims, bs)
}

func setUp(rows, dims int, md mode) (*bench, func(), error) {
	b := &bench{name: md}
	enforce := md != unenforced
	home, err := os.MkdirTemp("", "borealis-resume-")
	if err != nil {
		return nil, nil, err
	}
	if err := cluster.PrepareHome(home); err != nil {
		return nil, nil, err
	}
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		return nil, nil, err
	}
	m, err := cluster.NewManager(cluster.Options{Home: home, Store: st, PollInterval: 200 * time.Millisecond, HoldTimeout: 60 * time.Second,
		EnforceCapacity: enforce, NoCgroupStartupBoost: md == enforcedNoBoost})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	b.m = m
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.Close(ctx, true)
		st.Close()
		os.RemoveAll(home)
	}
	e := m.Enforcement()
	b.mode = e.Mode
	if enforce && !e.Enforced {
		return b, cleanup, fmt.Errorf("capacity enforcement asked for but not available: %s", e.Reason)
	}
	if _, err := m.Create(cluster.CreateInput{Name: "resume", Readers: 0, MinCapacity: 1, MaxCapacity: 4,
		MasterUserInput: cluster.MasterUserInput{MasterUsername: "bench", MasterUserPassword: benchPassword}}); err != nil {
		return b, cleanup, err
	}
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	d, err := m.WaitAvailable(wctx, "resume")
	cancel()
	if err != nil {
		return b, cleanup, err
	}
	// The endpoints ask for SCRAM, as a client of a real cluster meets them.
	b.dsn = fmt.Sprintf("postgres://bench:%s@%s/postgres?sslmode=disable", benchPassword, d.Endpoint)

	log.Printf("%s: loading %d × %d vectors and building the borealis_hnsw index", b.name, rows, dims)
	began := time.Now()
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return b, cleanup, err
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE TABLE items (id int PRIMARY KEY, embedding vector(%d))", dims),
		fmt.Sprintf(`INSERT INTO items SELECT g, (SELECT array_agg(random()::real) FROM generate_series(1, %d) WHERE g > 0)::vector
		             FROM generate_series(1, %d) g`, dims, rows),
		"SET maintenance_work_mem = '1GB'",
		"CREATE INDEX ON items USING borealis_hnsw (embedding vector_l2_ops)",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			conn.Close(ctx)
			return b, cleanup, fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		}
	}
	conn.Close(ctx)
	b.setup = time.Since(began)
	log.Printf("%s: loaded in %s", b.name, b.setup.Round(time.Second))
	if _, err := m.Modify("resume", cluster.ModifyInput{AutoPause: ptr(true), SecondsUntilAutoPause: ptr(1)}); err != nil {
		return b, cleanup, err
	}
	return b, cleanup, nil
}

// cycle waits for the cluster to pause, then times a client's connect to its top-10 result.
func (b *bench) cycle(i int, vec string) (cycle, error) {
	ctx := context.Background()
	if err := waitStatus(b.m, cluster.StatusPaused, 2*time.Minute); err != nil {
		return cycle{}, err
	}
	t0 := time.Now()
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return cycle{}, fmt.Errorf("%s cycle %d: connect: %w", b.name, i, err)
	}
	connected := time.Since(t0)
	rs, err := conn.Query(ctx, "SELECT id FROM items ORDER BY embedding <-> $1::vector LIMIT 10", vec)
	if err != nil {
		conn.Close(ctx)
		return cycle{}, err
	}
	n := 0
	for rs.Next() {
		n++
	}
	if err := rs.Err(); err != nil || n != 10 {
		conn.Close(ctx)
		return cycle{}, fmt.Errorf("%s cycle %d: %d rows, %v", b.name, i, n, err)
	}
	el := time.Since(t0)
	conn.Close(ctx)
	server, phases := lastResume(b.m)
	log.Printf("%s cycle %2d: connect to top-10 result %s (connected after %s; writer accepting after %s: %s)", b.name, i+1,
		el.Round(time.Millisecond), connected.Round(time.Millisecond), server.Round(time.Millisecond), phases)
	return cycle{total: el, connect: connected, server: server, phases: phases}, nil
}

// cycle is one pause → connect → top-10 measurement.
type cycle struct {
	total, connect, server time.Duration
	phases                 string // the cluster.resumed event's breakdown
}

const benchPassword = "resume-bench-pw"

func ptr[T any](v T) *T { return &v }

func waitStatus(m *cluster.Manager, status string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		d, err := m.Describe("resume")
		if err != nil {
			return err
		}
		if d.Status == status {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster still %s after %s, waiting for %s", d.Status, timeout, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastResume is the resume time the control plane recorded in its last cluster.resumed event,
// and the phase breakdown the event gives in parentheses.
func lastResume(m *cluster.Manager) (time.Duration, string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs, _ := m.Events("resume", 5)
		for _, e := range evs {
			var s float64
			if e.Type == "cluster.resumed" {
				rest := e.Message[strings.Index(e.Message, "accepted connections")+len("accepted connections "):]
				if _, err := fmt.Sscanf(rest, "%g", &s); err == nil {
					phases := ""
					if i, j := strings.Index(rest, "("), strings.LastIndex(rest, ")"); i >= 0 && j > i {
						phases = rest[i+1 : j]
					}
					return time.Duration(s * float64(time.Second)), phases
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, ""
}

var phaseRE = regexp.MustCompile(`([a-z][a-z ]*?) (\d+) ms`)

// phaseMedians is the median of each named phase over the cycles, in the events' order.
func phaseMedians(cs []cycle) (names []string, med map[string]time.Duration) {
	all := map[string][]time.Duration{}
	for _, c := range cs {
		for _, m := range phaseRE.FindAllStringSubmatch(c.phases, -1) {
			name := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(m[1]), "="), "+"))
			if _, ok := all[name]; !ok {
				names = append(names, name)
			}
			v, _ := strconv.Atoi(m[2])
			all[name] = append(all[name], time.Duration(v)*time.Millisecond)
		}
	}
	med = map[string]time.Duration{}
	for k, v := range all {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		med[k] = pct(v, .5)
	}
	return names, med
}

func pct(sorted []time.Duration, p float64) time.Duration {
	// Nearest rank: with 20 samples p99 is the largest.
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func sortd(v []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func report(out string, rows, dims int, bs []*bench) error {
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	autogroup, _ := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled")
	pg, _ := exec.Command("postgres", "--version").Output()
	var b strings.Builder
	fmt.Fprintf(&b, "# Resume on connect: connect to a paused cluster → borealis_hnsw top-10 result\n\n")
	fmt.Fprintf(&b, "`%s`, %s, at normal priority. One writer, no reader; auto-pause after 1 s idle (dev floor); each cycle waits for `paused` (every node stopped with a shutdown checkpoint), then one pgx client connects to the cluster endpoint (SCRAM, as the master user) and runs `ORDER BY embedding <-> $1 LIMIT 10` on %d × %d random vectors (borealis_hnsw, vector_l2_ops). Measured on the client: from the start of the connect to the 10th row.",
		"go run ./bench/resume "+strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 UTC"), rows, dims)
	if len(bs) > 1 {
		var names []string
		for _, x := range bs {
			names = append(names, string(x.name))
		}
		fmt.Fprintf(&b, " %d control planes in the same run (capacity %s), each with its own cluster and data; their cycles alternate.", len(bs), strings.Join(names, "; "))
	}
	b.WriteString("\n\n")
	row := func(name string, v []time.Duration) {
		s := sortd(v)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, ms(pct(s, .5)), ms(pct(s, .9)), ms(pct(s, .99)), ms(s[len(s)-1]), ms(s[0]))
	}
	for _, x := range bs {
		var samples, server, connect, query []time.Duration
		for _, c := range x.cs {
			samples, server, connect, query = append(samples, c.total), append(server, c.server), append(connect, c.connect), append(query, c.total-c.connect)
		}
		fmt.Fprintf(&b, "## Capacity %s (%s)\n\n", x.name, x.mode)
		fmt.Fprintf(&b, "| | p50 | p90 | p99 | max | min |\n|---|---|---|---|---|---|\n")
		row("connect → top-10 result", samples)
		row("of which connect (start-up, SCRAM, through the held gate)", connect)
		row("of which the first query", query)
		row("first client → writer accepting (event)", server)
		names, med := phaseMedians(x.cs)
		if len(names) > 0 {
			fmt.Fprintf(&b, "\nMedian of each phase of the control plane's side (from the `cluster.resumed` event):\n\n| phase | median |\n|---|---|\n")
			for _, n := range names {
				fmt.Fprintf(&b, "| %s | %s |\n", n, ms(med[n]))
			}
		}
		target := "met"
		if pct(sortd(samples), .99) > time.Second {
			target = "missed"
		}
		fmt.Fprintf(&b, "\nTarget ≤ 1 s p99: **%s**.\n\n", target)
		if len(x.cs) > 0 {
			fmt.Fprintf(&b, "Start-up priority (last cycle's event): %s.\n\n", boostPart(x.cs[len(x.cs)-1].phases))
		}
		fmt.Fprintf(&b, "Samples (ms, in order):")
		for i, s := range samples {
			fmt.Fprintf(&b, " %d/%d", s.Milliseconds(), server[i].Milliseconds())
		}
		fmt.Fprintf(&b, " (client/server)\n\nData load and index build took %s.\n\n", x.setup.Round(time.Second))
	}
	fmt.Fprintf(&b, "Anchors (not measured here): Aurora Serverless ~15 s, Neon a few hundred ms.\n\n")
	fmt.Fprintf(&b, "## Machine\n\n- CPU: %s, %d cores; %s/%s\n- %s- Load average at start: %s; at end: %s\n- kernel.sched_autogroup_enabled = %s\n",
		cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, string(pg), loadStart, strings.TrimSpace(string(load)), strings.TrimSpace(string(autogroup)))
	fmt.Fprintf(&b, "- Shared with other work (8 agents building and testing on the same 2 cores): figures are upper bounds for a quiet machine.\n")
	if err := os.WriteFile(out+".md", []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())

	p := plot.New()
	p.Title.Text = fmt.Sprintf("Resume on connect (%d×%d borealis_hnsw top-10)", rows, dims)
	p.X.Label.Text = "cycle"
	p.Y.Label.Text = "ms"
	p.Add(plotter.NewGrid())
	mk := func(ds []time.Duration) plotter.XYs {
		xys := make(plotter.XYs, len(ds))
		for i, d := range ds {
			xys[i] = plotter.XY{X: float64(i + 1), Y: float64(d) / float64(time.Millisecond)}
		}
		return xys
	}
	colors := map[mode][2]color.RGBA{
		enforced:        {{R: 200, A: 255}, {R: 240, G: 150, B: 150, A: 255}},
		enforcedNoBoost: {{G: 150, A: 255}, {R: 150, G: 220, B: 150, A: 255}},
		unenforced:      {{B: 200, A: 255}, {R: 150, G: 150, B: 240, A: 255}},
	}
	n := 0
	for _, x := range bs {
		var client, server []time.Duration
		for _, c := range x.cs {
			client, server = append(client, c.total), append(server, c.server)
		}
		n = max(n, len(client))
		for k, ds := range [][]time.Duration{client, server} {
			l, pts, err := plotter.NewLinePoints(mk(ds))
			if err != nil {
				return err
			}
			l.Color, pts.Color = colors[x.name][k], colors[x.name][k]
			if k == 1 {
				l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			}
			p.Add(l, pts)
			what := "client: connect → top-10 result"
			if k == 1 {
				what = "server: first client → writer accepting"
			}
			p.Legend.Add(string(x.name)+", "+what, l, pts)
		}
	}
	target1s, _ := plotter.NewLine(plotter.XYs{{X: 1, Y: 1000}, {X: float64(n), Y: 1000}})
	target1s.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(target1s)
	p.Legend.Add("target p99 1 s", target1s)
	p.Legend.Top = true
	p.Y.Min = 0
	p.Y.Max = 1500 // room for the legend above the 1 s target
	for _, x := range bs {
		for _, c := range x.cs {
			p.Y.Max = max(p.Y.Max, 1.1*float64(c.total)/float64(time.Millisecond))
		}
	}
	p.BackgroundColor = color.White
	return p.Save(7*vg.Inch, 4.5*vg.Inch, out+".png")
}

// boostPart is the start-up priority part of an event's breakdown.
func boostPart(phases string) string {
	if i := strings.Index(phases, "start-up "); i >= 0 {
		return phases[i:]
	}
	return "not reported"
}
