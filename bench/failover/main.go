// Command failover is a Jepsen-style failover check scaled to one machine. It runs a cluster
// of a writer and two readers in-process (the control plane's Manager, real PostgreSQL), keeps
// a write load on the cluster endpoint — each client inserts unique ids and records every
// acknowledgement — and fails the writer again and again, cycling through three kinds:
//
//   - kill9:   SIGKILL of the postmaster, data left (restart in place is expected);
//   - sigstop: SIGSTOP of the writer's postmaster and every process under it (thawed once the
//     failover is done);
//   - rmdata:  the data directory removed under the running server.
//
// After each failure it waits for the cluster to be whole again and checks the writer: every
// acknowledged id must be there. It reports lost, duplicated and unacknowledged-but-present
// ids, and the RTO — from the failure to the first acknowledged write on a connection opened
// after it, through the cluster endpoint — as a distribution, per kind.
//
//	go run ./bench/failover [-mode asynchronous|synchronous] [-failures 20] [-grace 2] [-clients 4] [-out bench/results/failover-<mode>.md]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// benchPassword is the throwaway cluster's master password: endpoints ask every client for it.
const benchPassword = "failover-bench-pw"

// dsn connects as the master user through addr.
func dsn(addr string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", cluster.DefaultMasterUsername, benchPassword, addr)
}

type attempt struct {
	id        int64
	issued    time.Time
	connSince time.Time // when the connection that sent it was opened
	acked     time.Time // zero: not acknowledged (error or unknown outcome)
}

type client struct {
	n        int
	addr     string
	mu       sync.Mutex
	attempts []attempt
	next     int64
}

// run inserts ids until ctx ends, reconnecting after any error.
func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, dsn(c.addr)+"&connect_timeout=5")
		cancel()
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		since := time.Now()
		for ctx.Err() == nil {
			c.next++
			a := attempt{id: int64(c.n)*1_000_000_000 + c.next, issued: time.Now(), connSince: since}
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := conn.Exec(qctx, "INSERT INTO acked (id) VALUES ($1)", a.id)
			cancel()
			if err == nil {
				a.acked = time.Now()
			}
			c.mu.Lock()
			c.attempts = append(c.attempts, a)
			c.mu.Unlock()
			if err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		conn.Close(context.Background())
	}
}

type result struct {
	N          int     `json:"n"`
	Kind       string  `json:"kind"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Action     string  `json:"action"` // failover or restart
	RTOSeconds float64 `json:"rto_seconds"`
	// ControlPlaneDowntime is the downtime the completion event reports (failovers only).
	EventDowntime string `json:"event_downtime,omitempty"`
	// Phases is the control plane's split of its downtime, from the completion event.
	Phases string `json:"phases,omitempty"`
	// Timeline is when things happened, in seconds from the failure: the control plane's
	// failover events and the clients' first new connection and first acknowledged write.
	Timeline       map[string]float64 `json:"timeline,omitempty"`
	Acked          int                `json:"acked"`
	Lost           int                `json:"lost"`
	Duplicated     int                `json:"duplicated"`
	UnackedPresent int                `json:"unacked_present"`
	// ReadersRepaired counts the readers found unable to follow the new writer by the time
	// this failure's check ran (member.diverged and member.not-following events since the
	// failure): each is rewound or cloned. The report's total counts the whole run.
	ReadersRepaired int `json:"readers_repaired"`
}

func main() {
	mode := flag.String("mode", "asynchronous", "durability mode: asynchronous or synchronous")
	failures := flag.Int("failures", 20, "number of writer failures")
	graceS := flag.Int("grace", 2, "failover grace period in seconds")
	clients := flag.Int("clients", 4, "writing clients")
	kinds := flag.String("kinds", "kill9,sigstop,rmdata", "failure kinds, cycled")
	out := flag.String("out", "", "results file (.md; a .json beside it); default bench/results/failover-<mode>.md")
	flag.Parse()
	if *out == "" {
		*out = "bench/results/failover-" + *mode + ".md"
	}
	if err := run(*mode, *failures, *graceS, *clients, strings.Split(*kinds, ","), *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench failover:", err)
		os.Exit(1)
	}
}

// startLoad is the load average when the bench began (the report gives it and the end's).
var startLoad string

func run(mode string, failures, graceS, nclients int, kinds []string, out string) (rerr error) {
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		startLoad = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	home, err := os.MkdirTemp("", "borealis-failover-bench-")
	if err != nil {
		return err
	}
	// The cluster's directory (node data and logs, state.db, the control plane's log) goes only
	// after a completed run: an aborted one is kept for its post-mortem, and said where.
	defer func() {
		switch {
		case rerr != nil:
			fmt.Fprintf(os.Stderr, "bench failover: aborted; cluster directory kept for the post-mortem: %s (controlplane.log, abort-diagnosis.txt, clusters/*/*/log/)\n", home)
		case os.Getenv("FAILOVER_BENCH_KEEP") != "":
			fmt.Println("home kept:", home)
		default:
			os.RemoveAll(home)
		}
	}()
	if err := cluster.PrepareHome(home); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	// Every control-plane line goes to controlplane.log, timestamped, as it happens.
	cplog, err := os.OpenFile(filepath.Join(home, "controlplane.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer cplog.Close()
	var logMu sync.Mutex
	var events []stamped
	m, err := cluster.NewManager(cluster.Options{Home: home, Store: st, HoldTimeout: 30 * time.Second,
		Logf: func(f string, a ...any) {
			now := time.Now()
			msg := fmt.Sprintf(f, a...)
			logMu.Lock()
			events = append(events, stamped{now, msg})
			fmt.Fprintf(cplog, "%s %s\n", now.UTC().Format("15:04:05.000"), msg)
			logMu.Unlock()
		}})
	if err != nil {
		return err
	}
	defer func() {
		if rerr != nil {
			diagnose(m, home)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.Close(ctx, true)
	}()
	const name = "bench"
	if _, err := m.Create(cluster.CreateInput{Name: name, Readers: 2, MasterUserInput: cluster.MasterUserInput{MasterUserPassword: benchPassword}, FailoverInput: cluster.FailoverInput{DurabilityMode: mode, FailoverGraceSeconds: graceS}}); err != nil {
		return err
	}
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	d, err := m.WaitAvailable(wctx, name)
	cancel()
	if err != nil {
		return err
	}
	setup, err := pgx.Connect(ctx, dsn(d.Endpoint))
	if err != nil {
		return err
	}
	// No primary key: a duplicate must be countable, not refused.
	if _, err := setup.Exec(ctx, "CREATE TABLE acked (id bigint NOT NULL); CREATE INDEX ON acked (id)"); err != nil {
		return err
	}
	setup.Close(ctx)

	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	cs := make([]*client, nclients)
	for i := range cs {
		cs[i] = &client{n: i + 1, addr: d.Endpoint}
		wg.Add(1)
		go func() { defer wg.Done(); cs[i].run(loadCtx) }()
	}
	defer func() { stopLoad(); wg.Wait() }()
	time.Sleep(3 * time.Second)

	c, err := m.Cluster(name)
	if err != nil {
		return err
	}
	var results []result
	for i := 0; i < failures; i++ {
		kind := kinds[i%len(kinds)]
		if err := waitWhole(m, name, 3*time.Minute); err != nil {
			return fmt.Errorf("before failure %d: %w", i+1, err)
		}
		time.Sleep(2 * time.Second) // some load on the settled cluster
		d = describe(m, name)
		w := writerOf(d)
		seqBefore := lastSeq(m)
		var frozen []int
		logMu.Lock()
		events = nil
		logMu.Unlock()
		t0 := time.Now()
		switch kind {
		case "kill9":
			err = syscall.Kill(w.PID, syscall.SIGKILL)
		case "sigstop":
			// The whole server hangs: the postmaster and every process under it (its
			// children are their own process groups, so -pid would stop the postmaster only).
			frozen, err = freeze(w.PID)
		case "rmdata":
			var dir string
			if dir, err = c.DataDir(w.DBInstanceIdentifier); err == nil {
				err = os.RemoveAll(dir)
			}
		default:
			err = fmt.Errorf("unknown failure kind %q", kind)
		}
		if err != nil {
			return err
		}
		rto, ok := waitRTO(cs, t0, 2*time.Minute)
		if kind == "sigstop" {
			// Thaw once the failover is done: a fenced writer must stay dead.
			waitEvent(m, name, "cluster.failover-completed", seqBefore, time.Minute)
			for _, pid := range frozen {
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		if !ok {
			return fmt.Errorf("failure %d (%s): no acknowledged write within 2 minutes", i+1, kind)
		}
		if err := waitWhole(m, name, 3*time.Minute); err != nil {
			return fmt.Errorf("after failure %d: %w", i+1, err)
		}
		d = describe(m, name)
		r := result{N: i + 1, Kind: kind, From: w.DBInstanceIdentifier, To: writerOf(d).DBInstanceIdentifier, RTOSeconds: rto.Seconds(), Action: "restart"}
		if ev := eventAfter(m, name, "cluster.failover-completed", seqBefore); ev != nil {
			r.Action = "failover"
			if i := strings.Index(ev.Message, "downtime "); i >= 0 {
				parts := strings.SplitN(ev.Message[i+len("downtime "):], ": ", 2)
				r.EventDowntime = parts[0]
				if len(parts) == 2 {
					r.Phases = strings.SplitN(parts[1], ";", 2)[0]
				}
			}
		}
		if evs, err := m.Events(name, 0); err == nil {
			for _, e := range evs {
				if e.Seq > seqBefore && (e.Type == "member.diverged" || e.Type == "member.not-following") {
					r.ReadersRepaired++
				}
			}
		}
		logMu.Lock()
		r.Timeline = timeline(events, cs, t0)
		logMu.Unlock()
		if err := check(ctx, d.Endpoint, cs, &r); err != nil {
			return err
		}
		if os.Getenv("FAILOVER_BENCH_DEBUG") != "" {
			logMu.Lock()
			for _, e := range events {
				fmt.Printf("   event %+.3f s: %s\n", e.at.Sub(t0).Seconds(), e.msg)
			}
			events = nil
			logMu.Unlock()
			debugLost(d.Endpoint, cs, t0)
		}
		fmt.Printf("%2d %-7s %s -> %s (%s): RTO %.2f s, acked %d, lost %d, duplicated %d, unacked present %d\n",
			r.N, r.Kind, r.From, r.To, r.Action, r.RTOSeconds, r.Acked, r.Lost, r.Duplicated, r.UnackedPresent)
		results = append(results, r)
	}
	stopLoad()
	wg.Wait()
	// Every repair of the run, late ones (the follow watch acts after 15 s) included.
	repaired := 0
	if evs, err := m.Events(name, 0); err == nil {
		for _, e := range evs {
			if e.Type == "member.diverged" || e.Type == "member.not-following" {
				repaired++
			}
		}
	}
	return report(out, mode, graceS, nclients, results, repaired)
}

// freeze stops the postmaster pid, then every process under it, and returns them all. The
// postmaster first, so that it forks nothing while its children are listed (a backend forked
// between a listing and the postmaster's stop would go on serving, and a probe on it would find
// the server alive); then the listing is repeated until nothing new is found.
func freeze(pid int) ([]int, error) {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	frozen := []int{pid}
	seen := map[int]bool{pid: true}
	for round := 0; round < 10; round++ {
		added := false
		for _, c := range pgproc.Descendants(pid) {
			if !seen[c] {
				seen[c], added = true, true
				if syscall.Kill(c, syscall.SIGSTOP) == nil {
					frozen = append(frozen, c)
				}
			}
		}
		if !added {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return frozen, nil
}

// stamped is a control-plane event line and when the bench saw it.
type stamped struct {
	at  time.Time
	msg string
}

// timelineEvents are the event types a failure's timeline shows, by label.
var timelineEvents = []struct{ label, prefix string }{
	{"failover started", "cluster.failover-started"},
	{"old writer fenced", "member.fenced"},
	{"failover completed", "cluster.failover-completed"},
	{"writer restarted", "member.restarted"},
	{"a reader follows", "cluster.failover-followed"},
}

// timeline gives, in seconds from t0, the first of each timeline event and the clients' first
// connection opened after t0 and first acknowledged write on one.
func timeline(events []stamped, cs []*client, t0 time.Time) map[string]float64 {
	out := map[string]float64{}
	for _, e := range events {
		for _, te := range timelineEvents {
			if _, seen := out[te.label]; !seen && e.at.After(t0) && strings.HasPrefix(e.msg, te.prefix) {
				out[te.label] = e.at.Sub(t0).Seconds()
			}
		}
	}
	var conn, ack time.Time
	for _, c := range cs {
		c.mu.Lock()
		for _, a := range c.attempts {
			if a.connSince.After(t0) && (conn.IsZero() || a.connSince.Before(conn)) {
				conn = a.connSince
			}
			if !a.acked.IsZero() && a.connSince.After(t0) && (ack.IsZero() || a.acked.Before(ack)) {
				ack = a.acked
			}
		}
		c.mu.Unlock()
	}
	if !conn.IsZero() {
		out["first new connection"] = conn.Sub(t0).Seconds()
	}
	if !ack.IsZero() {
		out["first acknowledged write"] = ack.Sub(t0).Seconds()
	}
	return out
}

// timelineLabels orders a timeline's entries for the report.
var timelineLabels = []string{"failover started", "old writer fenced", "writer restarted", "first new connection", "first acknowledged write", "a reader follows", "failover completed"}

// waitRTO returns the time from t0 to the first acknowledged write on a connection opened
// after t0.
func waitRTO(cs []*client, t0 time.Time, limit time.Duration) (time.Duration, bool) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var first time.Time
		for _, c := range cs {
			c.mu.Lock()
			for j := len(c.attempts) - 1; j >= 0 && c.attempts[j].issued.After(t0); j-- {
				a := c.attempts[j]
				if !a.acked.IsZero() && a.connSince.After(t0) && (first.IsZero() || a.acked.Before(first)) {
					first = a.acked
				}
			}
			c.mu.Unlock()
		}
		if !first.IsZero() {
			return first.Sub(t0), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, false
}

// check compares the writer's table with every client's attempts so far.
func check(ctx context.Context, addr string, cs []*client, r *result) error {
	conn, err := pgx.Connect(ctx, dsn(addr))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// Only writes acknowledged before the snapshot count: the load goes on meanwhile.
	cut := time.Now()
	rows, err := conn.Query(ctx, "SELECT id, count(*) FROM acked GROUP BY id")
	if err != nil {
		return err
	}
	present := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		present[id] = n
	}
	rows.Close()
	if rows.Err() != nil {
		return rows.Err()
	}
	for _, c := range cs {
		c.mu.Lock()
		for _, a := range c.attempts {
			if !a.issued.Before(cut) || a.acked.After(cut) {
				continue
			}
			n := present[a.id]
			if n > 1 {
				r.Duplicated += n - 1
			}
			if !a.acked.IsZero() {
				r.Acked++
				if n == 0 {
					r.Lost++
				}
			} else if n > 0 {
				r.UnackedPresent++
			}
		}
		c.mu.Unlock()
	}
	return nil
}

func describe(m *cluster.Manager, name string) cluster.Description {
	d, _ := m.Describe(name)
	return d
}

func writerOf(d cluster.Description) cluster.MemberDescription {
	for _, mb := range d.DBClusterMembers {
		if mb.IsClusterWriter {
			return mb
		}
	}
	return cluster.MemberDescription{}
}

// waitWhole waits until the cluster and every member are available, none is fenced and every
// reader is at most 1 s behind.
func waitWhole(m *cluster.Manager, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		d := describe(m, name)
		ok := d.Status == cluster.StatusAvailable
		for _, mb := range d.DBClusterMembers {
			ok = ok && mb.Status == cluster.StatusAvailable && !mb.Fenced && mb.PID != 0
			// Readers caught up (a rejoined one replays its backlog first): each failure hits
			// a settled cluster.
			ok = ok && (mb.IsClusterWriter || (mb.ReplicaLagSeconds != nil && *mb.ReplicaLagSeconds <= 1))
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(d.DBClusterMembers)
			return fmt.Errorf("cluster %s not whole after %s: %s %s", name, limit, d.Status, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lastSeq(m *cluster.Manager) uint64 {
	evs, _ := m.Events("", 1)
	if len(evs) == 0 {
		return 0
	}
	return evs[0].Seq
}

func eventAfter(m *cluster.Manager, name, typ string, after uint64) *store.Event {
	evs, _ := m.Events(name, 0)
	for i := range evs {
		if evs[i].Seq > after && evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

func waitEvent(m *cluster.Manager, name, typ string, after uint64, limit time.Duration) *store.Event {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ev := eventAfter(m, name, typ, after); ev != nil {
			return ev
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	rel := make([]byte, 0, len(uts.Release))
	for _, b := range uts.Release {
		if b == 0 {
			break
		}
		rel = append(rel, byte(b))
	}
	autogroup := "unknown"
	if data, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err == nil {
		autogroup = strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%s, %d CPUs, Linux %s, kernel.sched_autogroup_enabled=%s, load average at the end %s (shared with other engineers' builds and tests)", model, runtime.NumCPU(), rel, autogroup, load)
}

func report(out, mode string, graceS, nclients int, rs []result, repaired int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Failover check (%s mode)\n\n", mode)
	fmt.Fprintf(&b, "`go run ./bench/failover -mode %s -failures %d -grace %d -clients %d`, %s UTC (exact command: `%s`; load average at the start %s).\n\n",
		mode, len(rs), graceS, nclients, time.Now().UTC().Format("2006-01-02 15:04"), strings.Join(os.Args, " "), startLoad)
	fmt.Fprintf(&b, "Machine: %s.\n\n", machine())
	b.WriteString("A writer and two readers; clients insert unique ids through the cluster endpoint and record each acknowledgement. " +
		"RTO: from the failure to the first acknowledged write on a connection opened after it. " +
		"Lost: acknowledged ids missing on the writer after the cluster is whole again (all failures so far, cumulative). " +
		"Unacknowledged-but-present: inserts whose outcome the client never learned that did commit (allowed). " +
		"Each failure hits a settled cluster: every member available and every reader at most 1 s behind.\n\n")
	b.WriteString("| # | failure | writer before → after | action | RTO (s) | downtime in the event | acked so far | lost | duplicated | unacked present |\n|---:|---|---|---|---:|---|---:|---:|---:|---:|\n")
	byKind := map[string][]float64{}
	var all []float64
	totalLost, totalDup := 0, 0
	for _, r := range rs {
		fmt.Fprintf(&b, "| %d | %s | %s → %s | %s | %.2f | %s | %d | %d | %d | %d |\n", r.N, r.Kind, r.From, r.To, r.Action, r.RTOSeconds, r.EventDowntime, r.Acked, r.Lost, r.Duplicated, r.UnackedPresent)
		byKind[r.Kind] = append(byKind[r.Kind], r.RTOSeconds)
		all = append(all, r.RTOSeconds)
		totalLost, totalDup = max(totalLost, r.Lost), max(totalDup, r.Duplicated)
	}
	b.WriteString("\n## RTO distribution (seconds)\n\n| failures | n | min | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(label string, v []float64) {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", label, len(s), s[0], percentile(s, 50), percentile(s, 90), percentile(s, 99), s[len(s)-1])
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		row(k, byKind[k])
	}
	row("all", all)
	b.WriteString("\n## Where the time goes\n\nSeconds from the failure to each step (the bench's clock), and the control plane's own split of its downtime, which starts when its detector first saw the failure, from the completion event.\n\n")
	b.WriteString("| # | failure |")
	for _, l := range timelineLabels {
		b.WriteString(" " + l + " |")
	}
	b.WriteString(" control plane's phases |\n|---:|---|")
	for range timelineLabels {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %d | %s |", r.N, r.Kind)
		for _, l := range timelineLabels {
			if v, ok := r.Timeline[l]; ok {
				fmt.Fprintf(&b, " %.2f |", v)
			} else {
				b.WriteString(" |")
			}
		}
		fmt.Fprintf(&b, " %s |\n", r.Phases)
	}
	sorted := append([]float64(nil), all...)
	sort.Float64s(sorted)
	p99 := percentile(sorted, 99)
	verdict := "met"
	if p99 > 5 {
		verdict = "missed"
	}
	fmt.Fprintf(&b, "\nTarget RTO p99 ≤ 5 s: %s (p99 %.2f s). Acknowledged writes lost: %d; duplicated: %d. Readers found unable to follow the new writer and repaired (member.diverged, member.not-following): %d.\n", verdict, p99, totalLost, totalDup, repaired)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(map[string]any{"mode": mode, "grace_seconds": graceS, "clients": nclients, "machine": machine(), "results": rs}, "", "  ")
	if err := os.WriteFile(strings.TrimSuffix(out, ".md")+".json", js, 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	return nil
}

// debugLost prints the acknowledged ids missing on the writer, with their timing.
func debugLost(addr string, cs []*client, t0 time.Time) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn(addr))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, c := range cs {
		c.mu.Lock()
		for _, a := range c.attempts {
			if a.acked.IsZero() {
				continue
			}
			var n int
			_ = conn.QueryRow(ctx, "SELECT count(*) FROM acked WHERE id = $1", a.id).Scan(&n)
			if n == 0 {
				fmt.Printf("   lost id %d: issued %+.3f s, acked %+.3f s from the failure, connection from %+.3f s\n",
					a.id, a.issued.Sub(t0).Seconds(), a.acked.Sub(t0).Seconds(), a.connSince.Sub(t0).Seconds())
			}
		}
		c.mu.Unlock()
	}
}

// diagnose writes abort-diagnosis.txt into the kept cluster directory: each member as describe
// shows it, what each running node says about its replication (pg_stat_wal_receiver on a
// reader, pg_stat_replication and the slots on the writer, positions and timeline), its
// postgresql.auto.conf, and the cluster's events.
func diagnose(m *cluster.Manager, home string) {
	var b strings.Builder
	const name = "bench"
	d, _ := m.Describe(name)
	fmt.Fprintf(&b, "diagnosis at %s UTC\ncluster %s status %s\n", time.Now().UTC().Format("15:04:05.000"), name, d.Status)
	c, _ := m.Cluster(name)
	queries := []string{
		"SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp(), (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli, CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END AS current_lsn",
		"SELECT * FROM pg_stat_wal_receiver",
		"SELECT * FROM pg_stat_replication",
		"SELECT slot_name, active, restart_lsn, wal_status FROM pg_replication_slots",
		"SELECT name FROM pg_ls_waldir() WHERE name LIKE '%.history' ORDER BY 1",
	}
	for _, mb := range d.DBClusterMembers {
		js, _ := json.Marshal(mb)
		fmt.Fprintf(&b, "\n== %s\n%s\n", mb.DBInstanceIdentifier, js)
		if c != nil {
			if dir, err := c.DataDir(mb.DBInstanceIdentifier); err == nil {
				fmt.Fprintf(&b, "data directory %s\n", dir)
				if data, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf")); err == nil {
					fmt.Fprintf(&b, "postgresql.auto.conf:\n%s\n", data)
				}
			}
		}
		if mb.Port == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := pgx.Connect(ctx, dsn(fmt.Sprintf("127.0.0.1:%d", mb.Port)))
		if err != nil {
			fmt.Fprintf(&b, "connect: %v\n", err)
			cancel()
			continue
		}
		for _, q := range queries {
			rows, err := conn.Query(ctx, q)
			if err != nil {
				fmt.Fprintf(&b, "%s: %v\n", q, err)
				continue
			}
			fmt.Fprintf(&b, "-- %s\n", q)
			for rows.Next() {
				vals, _ := rows.Values()
				var cols []string
				for i, f := range rows.FieldDescriptions() {
					cols = append(cols, fmt.Sprintf("%s=%v", f.Name, vals[i]))
				}
				fmt.Fprintf(&b, "   %s\n", strings.Join(cols, " "))
			}
			rows.Close()
		}
		conn.Close(context.Background())
		cancel()
	}
	evs, _ := m.Events(name, 0)
	b.WriteString("\n== events (newest first)\n")
	for _, e := range evs {
		fmt.Fprintf(&b, "%d %s %s %s %s\n", e.Seq, e.Time.UTC().Format("15:04:05.000"), e.Type, e.Member, e.Message)
	}
	_ = os.WriteFile(filepath.Join(home, "abort-diagnosis.txt"), []byte(b.String()), 0o644)
}
