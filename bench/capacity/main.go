// Command capacity measures capacity following load, as a user would watch it in CloudWatch:
// a cluster (1 writer, 1-4 ACU, enforced with cgroups) under a stepped pgbench load through the
// cluster endpoint — idle, 8 clients, 85 clients, idle — sampled once a second. It plots
// capacity, CPU against the quota and connections over time, and reports, for each change, the
// time from the start of the load step to the new capacity being in force, in place or with a
// restart. Cool-downs are shortened (listed in the report) so the run takes minutes, not hours.
//
//	go run ./bench/capacity [-step 60s] [-out bench/results]   (as root, for the cgroups)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/scaling"
	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

type sample struct {
	T           float64 `json:"t"`
	Step        string  `json:"step"`
	Clients     int     `json:"clients"`
	Capacity    float64 `json:"capacity"`
	CPUPercent  float64 `json:"cpu_percent_of_quota_short"`
	Connections int     `json:"connections"`
	Status      string  `json:"status"`
}

type change struct {
	From, To   float64
	Step       string
	Reason     string
	Restart    bool
	Announced  float64 // seconds after the step started
	InForce    float64
	StepStart  float64
	ChangedMsg string
}

type stepDef struct {
	name    string
	clients int
}

func main() {
	stepLen := flag.Duration("step", 60*time.Second, "length of each load step")
	out := flag.String("out", "bench/results", "directory for capacity.md, capacity.png, capacity.json")
	def := scaling.DefaultPolicy()
	upCPU := flag.Float64("scale-up-cpu", def.ScaleUpCPU, "scale-up CPU threshold, percent of the quota (a busy host may never let a node reach the default)")
	targetCPU := flag.Float64("target-cpu", def.TargetCPU, "CPU a new capacity is sized for, percent")
	downCPU := flag.Float64("scale-down-cpu", def.ScaleDownCPU, "scale-down CPU threshold, percent")
	flag.Parse()
	cpuPolicy = [3]float64{*upCPU, *targetCPU, *downCPU}
	if err := run(*stepLen, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench capacity:", err)
		os.Exit(1)
	}
}

// benchPassword is the throwaway cluster's master password.
const benchPassword = "bench-capacity-pw"

// cpuPolicy is the scale-up, target and scale-down CPU percentages of the run.
var cpuPolicy [3]float64

func run(stepLen time.Duration, outDir string) error {
	home, err := os.MkdirTemp("", "borealis-bench-capacity-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	if err := cluster.PrepareHome(home); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	policy := scaling.DefaultPolicy()
	policy.UpCooldown, policy.DownCooldown, policy.LowUseFor, policy.MinCPUWindow = 15*time.Second, 30*time.Second, 15*time.Second, 10*time.Second
	policy.ScaleUpCPU, policy.TargetCPU, policy.ScaleDownCPU = cpuPolicy[0], cpuPolicy[1], cpuPolicy[2]
	if err := policy.Validate(); err != nil {
		return err
	}
	windows := [2]time.Duration{10 * time.Second, 30 * time.Second}
	m, err := cluster.NewManager(cluster.Options{Home: home, Store: st, Scaling: &policy, CPUWindows: windows, EnforceCapacity: true, Autoscale: true,
		ScalingTimeout: 30 * time.Second, Logf: func(f string, a ...any) { fmt.Printf(time.Now().Format("15:04:05 ")+f+"\n", a...) }})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.Close(ctx, true)
	}()
	enf := m.Enforcement()
	if !enf.Enforced {
		return fmt.Errorf("capacity is not enforced here (%s): run as root", enf.Reason)
	}
	if _, err := m.Create(cluster.CreateInput{Name: "bench", Readers: 0, MinCapacity: 1, MaxCapacity: 4,
		MasterUserInput: cluster.MasterUserInput{MasterUserPassword: benchPassword},
		TimeoutAction:   cluster.ForceApplyCapacityChange}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	d, err := m.WaitAvailable(ctx, "bench")
	cancel()
	if err != nil {
		return err
	}
	host, port, _ := strings.Cut(d.Endpoint, ":")
	pgbench := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(pgproc.BinDir(), "pgbench"), append([]string{"-h", host, "-p", port, "-U", cluster.DefaultMasterUsername}, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+benchPassword)
		return cmd
	}
	if out, err := pgbench(context.Background(), "-i", "-s", "2", "-q", "postgres").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	evs, _ := m.Events("bench", 0)
	var seq uint64
	if len(evs) > 0 {
		seq = evs[len(evs)-1].Seq
	}
	steps := []stepDef{{"idle", 0}, {"8 clients", 8}, {"85 clients", 85}, {"idle again", 0}}
	start := time.Now()
	var samples []sample
	var stepStarts []float64
	for _, s := range steps {
		stepStarts = append(stepStarts, time.Since(start).Seconds())
		sctx, scancel := context.WithTimeout(context.Background(), stepLen)
		stepEnd := time.Now().Add(stepLen)
		if s.clients > 0 {
			// pgbench runs again when a capacity restart ends its sessions.
			go func(clients int) {
				for sctx.Err() == nil {
					left := time.Until(stepEnd)
					if left < 2*time.Second {
						return
					}
					_ = pgbench(sctx, "-S", "-c", fmt.Sprint(clients), "-j", "2", "-T", fmt.Sprint(int(left.Seconds())), "postgres").Run()
					time.Sleep(500 * time.Millisecond)
				}
			}(s.clients)
		}
		tick := time.NewTicker(time.Second)
		for sctx.Err() == nil {
			<-tick.C
			d, err := m.Describe("bench")
			if err != nil {
				continue
			}
			smp := sample{T: time.Since(start).Seconds(), Step: s.name, Clients: s.clients, Capacity: d.Capacity, Status: d.Status}
			for _, mb := range d.DBClusterMembers {
				if mb.IsClusterWriter {
					if mb.CapacityLimits != nil {
						smp.CPUPercent = mb.CapacityLimits.CPUPercent1m
					}
					if a := mb.Agent; a != nil {
						for _, p := range []*int32{a.ConnectionsActive, a.ConnectionsIdle, a.ConnectionsIdleInTransaction} {
							if p != nil {
								smp.Connections += int(*p)
							}
						}
					}
				}
			}
			samples = append(samples, smp)
		}
		tick.Stop()
		scancel()
	}
	total := time.Since(start)
	evs, err = m.Events("bench", 0)
	if err != nil {
		return err
	}
	changes := collect(evs, seq, start, stepStarts, steps)
	host2, _ := os.Hostname()
	loadAvg, _ := os.ReadFile("/proc/loadavg")
	machine := fmt.Sprintf("%s, %d CPUs, %s/%s, load average at the end %s, capacity enforced with %s",
		host2, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, strings.Join(strings.Fields(string(loadAvg))[:3], " "), enf.Mode)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(outDir, "capacity.json"), samples, changes); err != nil {
		return err
	}
	if err := writePNG(filepath.Join(outDir, "capacity.png"), samples, stepStarts, steps); err != nil {
		return err
	}
	return writeMD(filepath.Join(outDir, "capacity.md"), machine, policy, windows, stepLen, total, changes, steps)
}

// collect pairs each "Scaling DB cluster from X ... to Y" with its "Scaled ..." event and the
// load step it happened in.
func collect(evs []store.Event, after uint64, start time.Time, stepStarts []float64, steps []stepDef) []change {
	var out []change
	var cur *change
	for _, e := range evs {
		if e.Seq <= after {
			continue
		}
		t := e.Time.Sub(start).Seconds()
		switch e.Type {
		case "capacity.scaling":
			var from, to float64
			fmt.Sscanf(e.Message, "Scaling DB cluster from %g capacity units to %g capacity units", &from, &to)
			i := 0
			for j, s := range stepStarts {
				if t >= s {
					i = j
				}
			}
			_, reason, _ := strings.Cut(e.Message, "for this reason: ")
			cur = &change{From: from, To: to, Step: steps[i].name, StepStart: stepStarts[i], Announced: t - stepStarts[i], Reason: reason}
		case "capacity.changed":
			if cur != nil {
				cur.InForce = t - cur.StepStart
				cur.Restart = strings.Contains(e.Message, "with a restart")
				cur.ChangedMsg = e.Message
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	return out
}

func writeJSON(path string, samples []sample, changes []change) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, s := range samples {
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	for _, c := range changes {
		if err := enc.Encode(map[string]any{"change": c}); err != nil {
			return err
		}
	}
	return nil
}

func writePNG(path string, samples []sample, stepStarts []float64, steps []stepDef) error {
	top, bottom := plot.New(), plot.New()
	top.Title.Text = "Capacity of the writer (ServerlessDatabaseCapacity) under a stepped pgbench load"
	top.Y.Label.Text = "ACU"
	top.Y.Min, top.Y.Max = 0, 4.5
	bottom.X.Label.Text = "seconds"
	bottom.Y.Label.Text = "percent / count"
	var capXY, cpuXY, connXY, clientsXY plotter.XYs
	for _, s := range samples {
		capXY = append(capXY, plotter.XY{X: s.T, Y: s.Capacity})
		cpuXY = append(cpuXY, plotter.XY{X: s.T, Y: s.CPUPercent})
		connXY = append(connXY, plotter.XY{X: s.T, Y: float64(s.Connections)})
		clientsXY = append(clientsXY, plotter.XY{X: s.T, Y: float64(s.Clients)})
	}
	for i, l := range []struct {
		p    *plot.Plot
		xy   plotter.XYs
		name string
		c    int
	}{{top, capXY, "capacity (ACU)", 0}, {bottom, cpuXY, "CPU, % of the cgroup quota (10 s)", 1}, {bottom, connXY, "connections", 2}, {bottom, clientsXY, "pgbench clients", 3}} {
		line, err := plotter.NewLine(l.xy)
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(l.c)
		line.Width = vg.Points(1.5)
		if i == 3 {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		l.p.Add(line)
		l.p.Legend.Add(l.name, line)
	}
	for _, p := range []*plot.Plot{top, bottom} {
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = true, true
		p.BackgroundColor = color.White
		for i, s := range stepStarts {
			lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: s, Y: 0}}, Labels: []string{"▶ " + steps[i].name}})
			if err == nil && p == top {
				p.Add(lbl)
			}
		}
	}
	img := vgimg.New(9*vg.Inch, 7*vg.Inch)
	dc := draw.New(img)
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 4, PadX: vg.Millimeter * 4}, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return err
}

func writeMD(path, machine string, p scaling.Policy, windows [2]time.Duration, stepLen, total time.Duration, changes []change, steps []stepDef) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Capacity following load (`go run ./bench/capacity`)\n\n")
	fmt.Fprintf(&b, "Run %s on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine)
	fmt.Fprintf(&b, "One writer, MinCapacity 1, MaxCapacity 4 ACU (1 ACU = 2 GiB and 0.5 CPU, enforced by cgroup), ")
	fmt.Fprintf(&b, "TimeoutAction ForceApplyCapacityChange after 30 s. pgbench -S (select-only) through the cluster endpoint, steps of %s: ", stepLen)
	var names []string
	for _, s := range steps {
		names = append(names, s.name)
	}
	fmt.Fprintf(&b, "%s. Shortened for the run (defaults in brackets): CPU windows %s/%s [1m/5m], CPU history needed %s [30s], "+
		"scale-up cool-down %s [3m], low use for %s [5m], scale-down cool-down %s [15m]; CPU scale-up at %g%% [70], target %g%% [50], scale-down below %g%% [30] of the quota. Total %s.\n\n",
		strings.Join(names, " → "), windows[0], windows[1], p.MinCPUWindow, p.UpCooldown, p.LowUseFor, p.DownCooldown, p.ScaleUpCPU, p.TargetCPU, p.ScaleDownCPU, total.Round(time.Second))
	b.WriteString("![capacity over time](capacity.png)\n\n")
	b.WriteString("| step | change | how | announced (s after step start) | in force (s after step start) | reason |\n|---|---|---|---:|---:|---|\n")
	for _, c := range changes {
		how := "in place"
		if c.Restart {
			how = "restart"
		}
		fmt.Fprintf(&b, "| %s | %g → %g ACU | %s | %.1f | %.1f | %s |\n", c.Step, c.From, c.To, how, c.Announced, c.InForce, c.Reason)
	}
	if len(changes) == 0 {
		b.WriteString("| – | no change | | | | |\n")
	}
	b.WriteString("\nTime to the new capacity = detection (the load must show in the windows above) + applying it; " +
		"an in-place change is a cgroup write and a reload, a restart-type one waits for a scaling point and restarts the node.\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
