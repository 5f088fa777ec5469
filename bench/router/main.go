// Command router measures the control plane's router: pgbench -S (select-only) with 8 clients
// through the router against the same pgbench straight to the writer, in one run, alternating
// rounds so machine noise hits both alike. It reports throughput ratio and the latency the
// router adds (p50 and p99 from pgbench's per-transaction log), and writes the table with the
// machine to bench/results/router.md, with the run's per-round data beside it as JSON
// (router.json) and a plot of TPS per round for every path (router.png; plot.go). With -pgbouncer (Debian's pgbouncer package), each round
// also runs PgBouncer in session mode on the same server socket as the peer. With -sockmap
// (and -backend tcp), each round also runs the kernel-forwarding experiment's proxies
// (sockmap.go: an eBPF sockmap redirecting the steady state between the two sockets).
//
// Clients authenticate with SCRAM-SHA-256 on every path (the server's TCP pg_hba, the router's
// own authentication, PgBouncer's auth_type), so the router keeps its warm pool of
// authenticated backends (its default; -router-pool=false turns it off) and -connect (pgbench
// -C, a new connection per transaction) measures what a connect costs on each path.
//
//	go run ./bench/router [-clients 8] [-rounds 3] [-seconds 20] [-scale 10] [-out bench/results/router.md]
//	go run ./bench/router -plot bench/results/router-pool-quiet.md   # redraw a run's .png from its data
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/borealisdb/borealis/bench/internal/benchenv"
	"github.com/borealisdb/borealis/controlplane/router"
	"github.com/borealisdb/borealis/internal/pgproc"
)

var cpuProfile, backendNet, pgbouncerBin, relayModel, sockmapModes string

// perfRecordDir, when set, gets a perf record (kernel call graphs) of the proxy in each
// proxied run: DIR/<path>-<round>.data.
var perfRecordDir string

// perfRecord is the current run's perf record file, without .data ("" for none).
var perfRecord string

// compareSched adds a second router whose event loop always waits through the Go scheduler;
// compareEpoll one whose loop runs on epoll rather than io_uring. At most one of them.
var compareSched, compareEpoll bool

// secondName is the second router's path name.
func secondName() string {
	if compareEpoll {
		return "router-epoll"
	}
	return "router-sched"
}

type staticWriter string

func (s staticWriter) Writer() string    { return string(s) }
func (s staticWriter) Readers() []string { return nil }

type result struct {
	path     string
	round    int
	tps      float64
	p50, p99 float64 // ms
	txns     float64
	// cpuPerTxn is this process's CPU time (the router; pgbench is a separate process) per
	// transaction, in µs; 0 for direct runs.
	cpuPerTxn float64
	// clientCPU and serverCPU are pgbench's and the PostgreSQL server's CPU per transaction, µs.
	clientCPU, serverCPU float64
	// syscalls is the proxy's (router's or PgBouncer's) system calls per transaction, counted
	// by perf (0 when perf is missing). Unlike CPU time it does not move with the machine's load.
	syscalls float64
	// syscallMix is the main kinds per transaction.
	syscallMix string
	// serverFaults is the server's minor page faults per transaction.
	serverFaults float64
	// machineCPU is the whole machine's busy CPU per transaction, µs (/proc/stat): it counts
	// kernel work done outside the proxy's process too (a sockmap's softirqs and kworkers).
	machineCPU float64
	// kthreadCPU is the kernel worker threads' CPU per transaction, µs (kernelThreadsCPU).
	kthreadCPU float64
	// idle is the machine's idle share of CPU time during the run: above 0 the cores were
	// not saturated (the run was bound by latency, not CPU).
	idle float64
	// poolReused and poolOpened are the router's warm pool reuses and new backends in the run.
	poolReused, poolOpened int64
}

// syscallKinds are the system calls counted one by one (the rest is "other").
var syscallKinds = []string{"read", "write", "epoll_pwait", "epoll_wait", "io_uring_enter", "futex", "nanosleep", "recvfrom", "sendto"}

// syscallCount is a proxy's system calls over one run: the total and the main kinds.
type syscallCount struct {
	total float64
	kinds map[string]float64
	// switches is the proxy's context switches (its threads going to sleep or being
	// preempted): its wake-ups.
	switches float64
	// ipis is the inter-processor interrupts the proxy's threads sent (a wake-up of a task on
	// the other CPU; in a virtual machine each is an exit to the hypervisor).
	ipis float64
}

// mix formats the kinds per transaction, biggest first.
func (c syscallCount) mix(txns float64) string {
	if c.total == 0 || txns == 0 {
		return "–"
	}
	var parts []string
	rest := c.total
	for _, k := range syscallKinds {
		if v := c.kinds[k]; v/txns >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, v/txns))
			rest -= v
		}
	}
	if rest/txns >= 0.05 {
		parts = append(parts, fmt.Sprintf("other %.1f", rest/txns))
	}
	parts = append(parts, fmt.Sprintf("(context switches %.2f, IPIs sent %.2f)", c.switches/txns, c.ipis/txns))
	return strings.Join(parts, ", ")
}

// countSyscalls counts the system calls of process pid until the returned function is called,
// which returns the counts (zero when perf cannot count).
func countSyscalls(pid int) func() syscallCount {
	if pid == 0 {
		return func() syscallCount { return syscallCount{} }
	}
	args := []string{"stat", "-x,", "-e", "raw_syscalls:sys_enter", "-e", "context-switches", "-e", "ipi:ipi_send_cpu", "-e", "ipi:ipi_send_cpumask"}
	for _, k := range syscallKinds {
		args = append(args, "-e", "syscalls:sys_enter_"+k)
	}
	cmd := exec.Command("perf", append(args, "-p", strconv.Itoa(pid))...)
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return func() syscallCount { return syscallCount{} }
	}
	var rec *exec.Cmd
	if perfRecord != "" {
		rec = exec.Command("perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "4999", "-p", strconv.Itoa(pid), "-o", perfRecord+".data")
		if rec.Start() != nil {
			rec = nil
		}
	}
	time.Sleep(200 * time.Millisecond) // attached before the run starts
	return func() syscallCount {
		if rec != nil {
			_ = rec.Process.Signal(os.Interrupt)
			_ = rec.Wait()
		}
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		c := syscallCount{kinds: map[string]float64{}}
		for _, line := range strings.Split(out.String(), "\n") {
			f := strings.Split(line, ",")
			if len(f) < 3 {
				continue
			}
			v, _ := strconv.ParseFloat(f[0], 64)
			switch ev := f[2]; {
			case ev == "raw_syscalls:sys_enter":
				c.total = v
			case ev == "context-switches":
				c.switches = v
			case strings.HasPrefix(ev, "ipi:"):
				c.ipis += v
			case strings.HasPrefix(ev, "syscalls:sys_enter_"):
				c.kinds[strings.TrimPrefix(ev, "syscalls:sys_enter_")] = v
			}
		}
		return c
	}
}

func main() {
	clients := flag.Int("clients", 8, "pgbench clients (-c)")
	threads := flag.Int("threads", 2, "pgbench threads (-j)")
	rounds := flag.Int("rounds", 3, "rounds; each runs direct then through the router")
	seconds := flag.Int("seconds", 20, "seconds per pgbench run (-T)")
	scale := flag.Int("scale", 10, "pgbench scale (-s)")
	out := flag.String("out", "bench/results/router.md", "markdown report")
	note := flag.String("note", "", "a line about the conditions, added to the report")
	flag.StringVar(&backendNet, "backend", "unix", "how the router reaches the server: unix (socket, as the control plane does) or tcp")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the router rounds here")
	flag.StringVar(&relayModel, "relay", "loop", "the router's relay: loop (its event loop, the default: io_uring where the kernel allows, else epoll), loop-epoll (the loop on epoll), loop-sched (the loop always waiting through the Go scheduler, for comparison) or goroutines (a goroutine per direction, for comparison)")
	flag.BoolVar(&compareEpoll, "compare-epoll", false, "add a second router, its event loop on epoll rather than io_uring (Config.NoIOURing), as a fourth path in every round")
	flag.BoolVar(&compareSched, "compare-sched", false, "add a second router, its event loop always waiting through the Go scheduler (Config.SchedulerWait), as a fourth path in every round")
	flag.StringVar(&perfRecordDir, "perf-record", "", "directory for a perf record -g of the proxy in each proxied run (<path>-<round>.data); it perturbs the throughput, so use it for profiles, not for the ratios")
	flag.BoolVar(&pooledBackends, "pgbouncer-pooled", false, "keep PgBouncer's server connections (and so its backends, warm) across rounds, its default; otherwise every path of every round runs on new backends")
	flag.StringVar(&sockmapModes, "sockmap", "", "comma-separated kernel-forwarding experiment paths added to every round (sockmap.go, needs -backend tcp): verdict, scan, half, parser (see sockmapModeDoc)")
	flag.StringVar(&pgbouncerBin, "pgbouncer", "", "path of the pgbouncer binary: adds PgBouncer (session mode) as the peer in every round")
	flag.BoolVar(&routerPool, "router-pool", true, "the router keeps its warm pool of authenticated backends (its default; -backend is then ignored: the node's address is TCP, pooled backends use the Unix socket); false gives every router client a new backend")
	flag.BoolVar(&routerPassThrough, "router-passthrough", false, "add a second router whose pooled backends are opened over TCP with the client's SCRAM key (Config.PassThrough), as an extra path in every round")
	flag.BoolVar(&routerSockmap, "router-sockmap", false, "add a router with pass-through and kernel forwarding (Config.PassThrough, Config.Sockmap: needs root), as an extra path in every round")
	flag.BoolVar(&connectEach, "connect", false, "pgbench -C: a new connection for every transaction (connect, authenticate, one SELECT, disconnect)")
	replot := flag.String("plot", "", "draw the plot of an earlier run (its report .md or .json; the .png goes beside it) and run nothing: from the run's JSON, else its report's per-round tables")
	flag.Parse()
	if *replot != "" {
		run, err := ReadRun(*replot)
		if err == nil {
			err = PlotRun(run, base(*replot)+".png")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/router -plot:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", base(*replot)+".png")
		return
	}
	if pooledBackends {
		bouncerLifetime = 3600
	}
	if err := runBench(*clients, *threads, *rounds, *seconds, *scale, *out, *note); err != nil {
		fmt.Fprintln(os.Stderr, "bench/router:", err)
		os.Exit(1)
	}
}

func runBench(clients, threads, rounds, seconds, scale int, out, note string) error {
	root, err := os.MkdirTemp("", "borealis-bench-router-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if err := pgproc.PrepareDir(root, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	node, err := pgproc.New(pgproc.Config{DataDir: filepath.Join(root, "writer"), DieWithParent: true,
		Settings: map[string]string{"shared_buffers": "256MB", "max_connections": "50", "synchronous_commit": "off"}})
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
	// SCRAM for every client over TCP; the Unix socket (the router's private path and
	// PgBouncer's way to the server) trusts, as on a Borealis node.
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(node.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	if o, err := exec.Command("psql", "-X", "-q", "-h", node.SocketDir, "-p", strconv.Itoa(node.Port), "-U", "postgres", "-d", "postgres",
		"-c", "SET password_encryption = 'scram-sha-256'", "-c", "ALTER ROLE postgres PASSWORD '"+benchPassword+"'", "-c", "SELECT pg_reload_conf()").CombinedOutput(); err != nil {
		return fmt.Errorf("setting the bench password: %v\n%s", err, o)
	}
	os.Setenv("PGPASSWORD", benchPassword)
	fmt.Fprintf(os.Stderr, "initialising pgbench scale %d on port %d\n", scale, node.Port)
	if o, err := exec.Command("pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "-h", "127.0.0.1", "-p", strconv.Itoa(node.Port), "-U", "postgres", "postgres").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, o)
	}
	backend := fmt.Sprintf("127.0.0.1:%d", node.Port)
	if routerPool {
		// As the control plane runs it: the node's address is TCP, whose pg_hba rule
		// (scram-sha-256) lets the router authenticate clients itself; its pooled backends
		// are opened on the Unix socket, the private path.
		backendNet = "pool"
	} else if backendNet == "unix" {
		backend = filepath.Join(node.SocketDir, fmt.Sprintf(".s.PGSQL.%d", node.Port))
	}
	if relayModel != "loop" && relayModel != "loop-epoll" && relayModel != "loop-sched" && relayModel != "goroutines" {
		return fmt.Errorf("-relay %q: want loop, loop-epoll, loop-sched or goroutines", relayModel)
	}
	private := filepath.Join(node.SocketDir, fmt.Sprintf(".s.PGSQL.%d", node.Port))
	privateAddr := func(string) string { return private }
	r := router.New(router.Config{Name: "bench", Backends: staticWriter(backend), GoroutineRelay: relayModel == "goroutines", SchedulerWait: relayModel == "loop-sched", NoIOURing: relayModel == "loop-epoll",
		PrivateAddr: privateAddr, NoBackendPool: !routerPool})
	defer r.Close()
	routerIO = r.EventLoopIO()
	if routerIO == "" {
		routerIO = "none (goroutine relay)"
	}
	l, err := r.Listen(router.ClusterEndpoint, "127.0.0.1:0")
	if err != nil {
		return err
	}
	routerPort := l.Addr().(*net.TCPAddr).Port
	paths := []struct {
		name string
		port int
	}{{"direct", node.Port}, {"router", routerPort}}
	schedPort := 0
	if compareSched && compareEpoll {
		return fmt.Errorf("-compare-sched and -compare-epoll: one at a time")
	}
	if compareSched || compareEpoll {
		rs := router.New(router.Config{Name: "bench-second", Backends: staticWriter(backend), SchedulerWait: compareSched, NoIOURing: compareEpoll,
			PrivateAddr: privateAddr, NoBackendPool: !routerPool})
		defer rs.Close()
		ls, err := rs.Listen(router.ClusterEndpoint, "127.0.0.1:0")
		if err != nil {
			return err
		}
		schedPort = ls.Addr().(*net.TCPAddr).Port
	}
	var bouncerPID int
	if pgbouncerBin != "" {
		port, pid, stop, err := startPgBouncer(root, node)
		if err != nil {
			return err
		}
		defer stop()
		bouncerPID = pid
		paths = append(paths, struct {
			name string
			port int
		}{"pgbouncer", port})
	}
	if compareSched || compareEpoll {
		paths = append(paths, struct {
			name string
			port int
		}{secondName(), schedPort})
	}
	nExtra := 0
	// extraRouter adds a router with pass-through (and more, by cfg) as an extra path.
	extraRouter := func(flagName, path string, cfg router.Config) (*router.Router, error) {
		if !routerPool {
			return nil, fmt.Errorf("%s needs the router's pool (-router-pool)", flagName)
		}
		cfg.Name, cfg.Backends, cfg.PrivateAddr, cfg.PassThrough = "bench-"+path, staticWriter(backend), privateAddr, true
		cfg.GoroutineRelay, cfg.SchedulerWait, cfg.NoIOURing = relayModel == "goroutines", relayModel == "loop-sched", relayModel == "loop-epoll"
		rx := router.New(cfg)
		if cfg.Sockmap && !rx.KernelStats().Enabled {
			rx.Close()
			return nil, fmt.Errorf("%s: kernel forwarding did not start (see the log)", flagName)
		}
		lx, err := rx.Listen(router.ClusterEndpoint, "127.0.0.1:0")
		if err != nil {
			rx.Close()
			return nil, err
		}
		paths = append(paths, struct {
			name string
			port int
		}{path, lx.Addr().(*net.TCPAddr).Port})
		nExtra++
		return rx, nil
	}
	if routerPassThrough {
		rp, err := extraRouter("-router-passthrough", "router-passthrough", router.Config{})
		if err != nil {
			return err
		}
		defer rp.Close()
	}
	var rk *router.Router
	if routerSockmap {
		if rk, err = extraRouter("-router-sockmap", "router-sockmap", router.Config{Sockmap: true}); err != nil {
			return err
		}
		defer rk.Close()
	}
	for _, mode := range strings.Split(sockmapModes, ",") {
		if mode == "" {
			continue
		}
		sp, err := newSockmapProxy(backend, mode)
		if err != nil {
			return fmt.Errorf("sockmap %s: %w", mode, err)
		}
		defer sp.Close()
		paths = append(paths, struct {
			name string
			port int
		}{"sockmap-" + mode, sp.Port()})
		nExtra++
	}
	loadStart := benchenv.LoadAvg()
	started := time.Now().UTC()
	var results []result
	for round := 1; round <= rounds; round++ {
		for _, p := range paths {
			if p.name == "router" && cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				pprof.StartCPUProfile(f)
			}
			proxy := 0
			switch p.name {
			case "router", "router-sched", "router-epoll", "router-passthrough", "router-sockmap":
				proxy = os.Getpid()
			case "pgbouncer":
				proxy = bouncerPID
			}
			var stopCount func() syscallCount
			var cpu0, client0, server0, bouncer0 time.Duration
			var busy0, idle0 time.Duration
			var kthread0 map[string]time.Duration
			var faults0 int64
			pool0 := r.BackendPool()
			var kern0 router.KernelStats
			if rk != nil {
				kern0 = rk.KernelStats()
			}
			perfRecord = ""
			if perfRecordDir != "" && proxy != 0 {
				perfRecord = filepath.Join(perfRecordDir, fmt.Sprintf("%s-%d", p.name, round))
			}
			res, err := pgbench(root, p.port, clients, threads, seconds, func() {
				// pgbench is waiting to start: perf attaches now, so that pgbench, forked
				// before, is not counted as the router's child.
				stopCount = countSyscalls(proxy)
				cpu0, client0, server0, bouncer0 = benchenv.CPUTime(), benchenv.ChildrenCPU(), benchenv.ServerTreeCPU(node.PID()), benchenv.ServerCPU(bouncerPID)
				busy0, idle0 = benchenv.MachineCPU()
				kthread0 = kernelThreads()
				faults0 = benchenv.ServerTreeFaults(node.PID())
			})
			busy1, idle1 := benchenv.MachineCPU()
			kthreads := kernelThreadsSince(kthread0)
			calls := syscallCount{}
			if stopCount != nil {
				calls = stopCount()
			}
			// Backends are reaped a moment after pgbench disconnects.
			time.Sleep(300 * time.Millisecond)
			if err == nil {
				if strings.HasPrefix(p.name, "router") || strings.HasPrefix(p.name, "sockmap-") {
					res.cpuPerTxn = float64((benchenv.CPUTime() - cpu0).Microseconds()) / res.txns
				}
				if p.name == "pgbouncer" {
					res.cpuPerTxn = float64((benchenv.ServerCPU(bouncerPID) - bouncer0).Microseconds()) / res.txns
				}
				res.syscalls = calls.total / res.txns
				res.syscallMix = calls.mix(res.txns)
				res.clientCPU = float64((benchenv.ChildrenCPU() - client0).Microseconds()) / res.txns
				res.serverCPU = float64((benchenv.ServerTreeCPU(node.PID()) - server0).Microseconds()) / res.txns
				res.serverFaults = float64(benchenv.ServerTreeFaults(node.PID())-faults0) / res.txns
				res.machineCPU = float64((busy1 - busy0).Microseconds()) / res.txns
				res.kthreadCPU = float64(kthreads.Microseconds()) / res.txns
				if p.name == "router" {
					pool1 := r.BackendPool()
					res.poolReused, res.poolOpened = pool1.Reused-pool0.Reused, pool1.Opened-pool0.Opened
				}
				if all := busy1 - busy0 + idle1 - idle0; all > 0 {
					res.idle = float64(idle1-idle0) / float64(all)
				}
			}
			if p.name == "router" && cpuProfile != "" {
				pprof.StopCPUProfile()
			}
			if err != nil {
				return fmt.Errorf("%s round %d: %w", p.name, round, err)
			}
			res.path, res.round = p.name, round
			if p.name == "router-sockmap" {
				k := rk.KernelStats()
				fmt.Fprintf(os.Stderr, "round %d router-sockmap: the kernel forwarded %d requests (%.0f%% of the transactions), %d entries, %d hand-backs, %d backed out\n",
					round, k.Forwarded-kern0.Forwarded, 100*float64(k.Forwarded-kern0.Forwarded)/max(1, res.txns), k.Entered-kern0.Entered, k.HandedBack-kern0.HandedBack, k.BackedOut-kern0.BackedOut)
			}
			fmt.Fprintf(os.Stderr, "round %d %-6s  %8.0f tps  p50 %.3f ms  p99 %.3f ms  proxy CPU %.1f µs/txn  pgbench %.1f  server %.1f (%.2f faults/txn)  idle %.0f%%  machine %.1f µs/txn  kthreads %.1f  syscalls %.1f/txn (%s)  router pool: %d reused, %d opened\n", round, p.name, res.tps, res.p50, res.p99, res.cpuPerTxn, res.clientCPU, res.serverCPU, res.serverFaults, 100*res.idle, res.machineCPU, res.kthreadCPU, res.syscalls, res.syscallMix, res.poolReused, res.poolOpened)
			results = append(results, res)
		}
	}
	var main, sched, extra []result
	for _, r := range results {
		if strings.HasPrefix(r.path, "sockmap-") || r.path == "router-passthrough" || r.path == "router-sockmap" {
			extra = append(extra, r)
		} else if r.path == "router-sched" || r.path == "router-epoll" {
			sched = append(sched, r)
		} else {
			main = append(main, r)
		}
	}
	loadEnd := benchenv.LoadAvg()
	if err := report(out, note, main, sched, len(paths)-nExtra-len(sched)/max(1, rounds), clients, threads, seconds, scale, started, loadStart, loadEnd); err != nil {
		return err
	}
	// The run's own data, and the picture drawn from it, beside the report.
	if err := WriteRun(out, Run{Title: "pgbench -S TPS per round, " + started.Format("2006-01-02 15:04 UTC"), Command: strings.Join(os.Args, " "),
		Note: note, Load: loadStart + ", at end " + loadEnd, Rounds: toRounds(results)}); err != nil {
		return err
	}
	if len(extra) > 0 {
		return sockmapReport(out, main, extra, len(paths)-nExtra-len(sched)/max(1, rounds))
	}
	return nil
}

// startPgBouncer runs PgBouncer 1.x in session mode in front of node's Unix socket (as the
// router reaches it), trusting local clients like the server does, as the server's OS user.
func startPgBouncer(root string, node *pgproc.Node) (port, pid int, stop func(), err error) {
	dir := filepath.Join(root, "pgbouncer")
	if err := pgproc.PrepareDir(dir, 0o755); err != nil {
		return 0, 0, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, nil, err
	}
	port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	ini := fmt.Sprintf(`[databases]
postgres = host=%s port=%d dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
server_lifetime = %d
server_idle_timeout = %d
auth_type = scram-sha-256
auth_file = %s/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 50
logfile = %s/pgbouncer.log
pidfile = %s/pgbouncer.pid
`, node.SocketDir, node.Port, port, bouncerLifetime, bouncerLifetime, dir, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		return 0, 0, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(`"postgres" "`+benchPassword+`"`+"\n"), 0o644); err != nil {
		return 0, 0, nil, err
	}
	// pgproc.Command gives the server user's credentials (PgBouncer refuses to run as root).
	cmd, err := pgproc.Command("postgres")
	if err != nil {
		return 0, 0, nil, err
	}
	cmd.Path, cmd.Args = pgbouncerBin, []string{pgbouncerBin, filepath.Join(dir, "pgbouncer.ini")}
	if err := cmd.Start(); err != nil {
		return 0, 0, nil, fmt.Errorf("starting %s: %w", pgbouncerBin, err)
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			cmd.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			return 0, 0, nil, fmt.Errorf("pgbouncer did not listen on %d: %v\n%s", port, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ver, _ := exec.Command(pgbouncerBin, "--version").Output()
	pgbouncerVersion = strings.SplitN(strings.TrimSpace(string(ver)), "\n", 2)[0]
	return port, cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

var pgbouncerVersion string

// benchPassword is the bench role's password: every path authenticates it with SCRAM.
const benchPassword = "bench-scram"

// routerPool keeps the router's warm backend pool on; connectEach runs pgbench -C;
// routerPassThrough adds a router whose pooled backends are on TCP (SCRAM pass-through).
var routerPool, connectEach, routerPassThrough, routerSockmap bool

// pooledBackends keeps PgBouncer's server connections across rounds (its default, an hour);
// otherwise they are closed a second after their client leaves, so that every path of every
// round runs on new backends, as the router and the direct path do.
var pooledBackends bool

// bouncerLifetime is server_lifetime and server_idle_timeout, s.
var bouncerLifetime = 1

// routerIO is the router's event loop I/O (io_uring or epoll).
var routerIO string

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)`)

// pgbench runs select-only pgbench against port and returns tps and latency percentiles from
// its per-transaction log. The process is forked first and waits (a shell reading its stdin)
// while ready runs, then execs pgbench: perf counts a process's children forked after it
// attached, and pgbench's system calls are not the router's.
func pgbench(root string, port, clients, threads, seconds int, ready func()) (result, error) {
	dir, err := os.MkdirTemp(root, "run-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	args := []string{"-c", `read go && exec "$0" "$@"`, "pgbench", "-S", "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(seconds), "-l", "--log-prefix", filepath.Join(dir, "tx"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "postgres"}
	if connectEach {
		args = append(args, "-C")
	}
	cmd := exec.Command("sh", args...)
	var ob strings.Builder
	cmd.Stdout, cmd.Stderr = &ob, &ob
	start, err := cmd.StdinPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	ready()
	_, _ = start.Write([]byte("go\n"))
	err = cmd.Wait()
	o := []byte(ob.String())
	if err != nil {
		return result{}, fmt.Errorf("pgbench: %v\n%s", err, o)
	}
	m := tpsRE.FindSubmatch(o)
	if m == nil {
		return result{}, fmt.Errorf("no tps in pgbench output:\n%s", o)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	lat, err := readLatencies(dir)
	if err != nil {
		return result{}, err
	}
	return result{tps: tps, p50: percentile(lat, 0.50), p99: percentile(lat, 0.99), txns: float64(len(lat))}, nil
}

// readLatencies reads the third column (latency in µs) of every pgbench log file, in ms.
func readLatencies(dir string) ([]float64, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "tx*"))
	var lat []float64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseFloat(fields[2], 64)
			if err == nil {
				lat = append(lat, us/1000)
			}
		}
		fh.Close()
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("pgbench wrote no transaction log in %s", dir)
	}
	sort.Float64s(lat)
	return lat, nil
}

func percentile(sorted []float64, q float64) float64 {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

const readingNote = `
## Reading the figures

The router cannot make a query faster; what it costs is the router CPU per transaction above
(one read and one write each way, in the router's event loop, or through Go's netpoller with
-relay goroutines). On a machine where other work
competes for the cores, the routed runs have more runnable threads (the router's), so the
benchmark as a whole gets a larger share of the CPU: that, not a faster path, is why routed
throughput can come out above direct. The measured ratio only isolates the router on a quiet
machine; the CPU-derived ratio is what to expect when the CPU is saturated by this benchmark
alone.
`

func backendDesc() string {
	if backendNet == "pool" {
		return "its Unix socket (the router's private path: every client here is authenticated by the router, so every backend is a pooled one; the node's address is TCP as in a cluster)"
	}
	if backendNet == "unix" {
		return "its Unix socket, as the control plane does"
	}
	return "TCP on 127.0.0.1"
}

func diff(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

func report(out, note string, rs, sched []result, per, clients, threads, seconds, scale int, started time.Time, load0, load1 string) error {
	var b strings.Builder
	pg, _ := exec.Command("pgbench", "--version").Output()
	fmt.Fprintf(&b, "# Router overhead: pgbench -S through the router vs direct, %s\n\n", started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Produced by `make bench-router` (`go run ./bench/router`); every figure below was measured in this one run.\n\n")
	fmt.Fprintf(&b, "## Machine\n\n- CPU: %s, %d cores; %s/%s, %s\n- %s- Load average at start %s, at end %s\n",
		benchenv.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), strings.TrimSpace(string(pg))+"\n", load0, load1)
	autogroup, _ := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled")
	fmt.Fprintf(&b, "- kernel.sched_autogroup_enabled = %s (0: nice ranks processes across sessions)\n", strings.TrimSpace(string(autogroup)))
	fmt.Fprintf(&b, "- Command: `%s`\n", strings.Join(os.Args, " "))
	fmt.Fprintf(&b, "- pgbench, the router and PostgreSQL all share these cores (the router runs in the benchmark process)\n")
	if note != "" {
		fmt.Fprintf(&b, "- Note: %s\n", note)
	}
	if connectEach {
		fmt.Fprintf(&b, "\n## Settings\n\n- `pgbench -S -n -C -c %d -j %d -T %d`, scale %d (simple query protocol, a new connection for every transaction: TPS and latency include connecting and authenticating)\n", clients, threads, seconds, scale)
	} else {
		fmt.Fprintf(&b, "\n## Settings\n\n- `pgbench -S -n -c %d -j %d -T %d`, scale %d (simple query protocol, one connection per client for the whole run)\n", clients, threads, seconds, scale)
	}
	fmt.Fprintf(&b, "- Every client authenticates with SCRAM-SHA-256: the server's TCP pg_hba (direct), the router's own authentication, PgBouncer's auth_type\n")
	if routerPool {
		fmt.Fprintf(&b, "- The router keeps its warm pool of authenticated backends (its default; idle timeout 60 s), opened on the server's Unix socket\n")
	} else {
		fmt.Fprintf(&b, "- The router's warm pool is off (`-router-pool=false`): every router client gets a new backend\n")
	}
	fmt.Fprintf(&b, "- Throwaway server: shared_buffers=256MB, fsync on; rounds alternate direct then router\n")
	fmt.Fprintf(&b, "- Router relay: %s (`-relay`); the event loop's I/O: %s\n", relayModel, routerIO)
	fmt.Fprintf(&b, "- pgbench reaches the server (direct) and the router over TCP on 127.0.0.1; the router reaches the server over %s\n", backendDesc())
	fmt.Fprintf(&b, "- Latency: per-transaction pgbench log (`-l`), percentiles over every transaction of the run\n\n")
	if per == 3 {
		fmt.Fprintf(&b, "- Peer: %s in session mode (Debian package, auth scram-sha-256, pool 50), reaching the server's Unix socket like the router; rounds alternate direct, router, pgbouncer\n", pgbouncerVersion)
		if pooledBackends {
			if routerPool {
				fmt.Fprintf(&b, "- PgBouncer keeps its server connections across rounds (`-pgbouncer-pooled`, its default), as the router keeps its pool: both proxies' backends are warm, direct's new\n\n")
			} else {
				fmt.Fprintf(&b, "- PgBouncer keeps its server connections across rounds (`-pgbouncer-pooled`): its backends are warm, the others' new\n\n")
			}
		} else {
			fmt.Fprintf(&b, "- Every path of every round runs on new backends: PgBouncer closes its server connections a second after their client leaves (server_lifetime, server_idle_timeout 1 s)\n\n")
		}
		fmt.Fprintf(&b, "## Router vs PgBouncer\n\n| round | direct TPS | router TPS | pgbouncer TPS | router/direct | pgbouncer/direct | router/pgbouncer | pgbouncer p50 / p99 ms | pgbouncer CPU µs/txn | router CPU µs/txn | router / pgbouncer syscalls/txn | server CPU µs/txn direct / router / pgbouncer | server faults/txn direct / router / pgbouncer |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		var rb, pb, rp []float64
		for i := 0; i+2 < len(rs); i += 3 {
			d, r, p := rs[i], rs[i+1], rs[i+2]
			rb, pb, rp = append(rb, r.tps/d.tps), append(pb, p.tps/d.tps), append(rp, r.tps/p.tps)
			fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.3f / %.3f | %.1f | %.1f | %.1f / %.1f | %.0f / %.0f / %.0f | %.2f / %.2f / %.2f |\n", d.round, d.tps, r.tps, p.tps, r.tps/d.tps, p.tps/d.tps, r.tps/p.tps, p.p50, p.p99, p.cpuPerTxn, r.cpuPerTxn, r.syscalls, p.syscalls, d.serverCPU, r.serverCPU, p.serverCPU, d.serverFaults, r.serverFaults, p.serverFaults)
		}
		verdict := "beats"
		if benchenv.Median(rp) <= 1 {
			verdict = "does not beat"
		}
		fmt.Fprintf(&b, "\nSystem calls per transaction by kind (perf, the proxy's process):\n\n| round | router | pgbouncer |\n|---:|---|---|\n")
		for i := 0; i+2 < len(rs); i += 3 {
			fmt.Fprintf(&b, "| %d | %s | %s |\n", rs[i].round, rs[i+1].syscallMix, rs[i+2].syscallMix)
		}
		fmt.Fprintf(&b, "\n**Medians over rounds:** router/direct **%.2f×**, pgbouncer/direct **%.2f×**: the router %s PgBouncer in this run (router/pgbouncer %.2f×).\n\n", benchenv.Median(rb), benchenv.Median(pb), verdict, benchenv.Median(rp))
		if len(sched) > 0 {
			n := secondName()
			if compareEpoll {
				fmt.Fprintf(&b, "### The event loop on epoll (`-compare-epoll`), in the same rounds\n\nA second router in the same process with `Config.NoIOURing`, run after PgBouncer in each round.\n\n")
			} else {
				fmt.Fprintf(&b, "### The event loop waiting through the Go scheduler (`-compare-sched`), in the same rounds\n\nA second router in the same process with `Config.SchedulerWait`, run after PgBouncer in each round.\n\n")
			}
			fmt.Fprintf(&b, "| round | %s TPS | %s/pgbouncer | router/%s | CPU µs/txn (%s / router) | syscalls/txn by kind |\n|---:|---:|---:|---:|---:|---|\n", n, n, n, n)
			var sp []float64
			for j, x := range sched {
				i := 3 * j
				if i+2 >= len(rs) {
					break
				}
				r, p := rs[i+1], rs[i+2]
				sp = append(sp, x.tps/p.tps)
				fmt.Fprintf(&b, "| %d | %.0f | %.2f | %.2f | %.1f / %.1f | %.1f: %s |\n", x.round, x.tps, x.tps/p.tps, r.tps/x.tps, x.cpuPerTxn, r.cpuPerTxn, x.syscalls, x.syscallMix)
			}
			fmt.Fprintf(&b, "\nMedian %s/pgbouncer %.2f×.\n\n", n, benchenv.Median(sp))
		}
		// The rest of the report pairs direct and router.
		var pairs []result
		for i := 0; i+1 < len(rs); i += 3 {
			pairs = append(pairs, rs[i], rs[i+1])
		}
		rs = pairs
	}
	fmt.Fprintf(&b, "## Results\n\n| round | direct TPS | router TPS | router/direct | direct p50 / p99 ms | router p50 / p99 ms | router CPU µs/txn | router pool: backends reused / opened |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var ratios, dP50, rP50, dP99, rP99, cpu, dT, rT []float64
	for i := 0; i+1 < len(rs); i += 2 {
		d, r := rs[i], rs[i+1]
		ratio := r.tps / d.tps
		ratios, cpu = append(ratios, ratio), append(cpu, r.cpuPerTxn)
		dT, rT = append(dT, d.tps), append(rT, r.tps)
		dP50, rP50, dP99, rP99 = append(dP50, d.p50), append(rP50, r.p50), append(dP99, d.p99), append(rP99, r.p99)
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.2f | %.3f / %.3f | %.3f / %.3f | %.1f | %d / %d |\n", d.round, d.tps, r.tps, ratio, d.p50, d.p99, r.p50, r.p99, r.cpuPerTxn, r.poolReused, r.poolOpened)
	}
	sorted := append([]float64(nil), ratios...)
	sort.Float64s(sorted)
	ratio := benchenv.Median(ratios)
	verdict := "meets"
	if ratio < 0.9 {
		verdict = "misses"
	}
	fmt.Fprintf(&b, "\n**Throughput:** median over rounds of router/direct = **%.2f×** (%s the ≥ 0.9× target); per-round range %.2f–%.2f; median TPS direct %.0f, router %.0f.  \n",
		ratio, verdict, sorted[0], sorted[len(sorted)-1], benchenv.Median(dT), benchenv.Median(rT))
	fmt.Fprintf(&b, "**Latency added by the router** (median over rounds of router minus direct): p50 **%+.3f ms**, p99 **%+.3f ms** (medians: direct p99 %.3f ms, router p99 %.3f ms).  \n",
		benchenv.Median(diff(rP50, dP50)), benchenv.Median(diff(rP99, dP99)), benchenv.Median(dP99), benchenv.Median(rP99))
	var dCPU, rCPU []float64
	for i := 0; i+1 < len(rs); i += 2 {
		dCPU = append(dCPU, rs[i].clientCPU+rs[i].serverCPU)
		rCPU = append(rCPU, rs[i+1].clientCPU+rs[i+1].serverCPU+rs[i+1].cpuPerTxn)
	}
	fmt.Fprintf(&b, "**CPU per transaction** (medians; pgbench + server, plus the router when routed): direct %.1f µs, routed %.1f µs, of which the router %.1f µs. "+
		"When the CPU is the bottleneck and nothing else competes for it, throughput scales with the inverse: router/direct ≈ **%.2f×** (derived from the measured CPU, not a measured throughput).\n",
		benchenv.Median(dCPU), benchenv.Median(rCPU), benchenv.Median(cpu), benchenv.Median(dCPU)/benchenv.Median(rCPU))
	b.WriteString(readingNote)
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	return nil
}
