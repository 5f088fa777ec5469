package scaling

import (
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/capacity"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func obs(c float64, mut func(*Observation)) Observation {
	o := Observation{Now: t0, Capacity: c, Min: 1, Max: 8, CPU1m: 50, CPU5m: 50, CPUWindow: 5 * time.Minute,
		Connections: 10, MaxConnections: capacity.MaxConnections(c)}
	if mut != nil {
		mut(&o)
	}
	return o
}

func TestDecideTable(t *testing.T) {
	p := DefaultPolicy()
	long := State{LastChange: t0.Add(-time.Hour), LastScaleDown: t0.Add(-time.Hour)}
	lowFor := func(d time.Duration) State { s := long; s.LowSince = t0.Add(-d); return s }
	for _, c := range []struct {
		name   string
		s      State
		o      Observation
		target float64
		reason string
	}{
		{"steady", long, obs(2, nil), 2, "within thresholds"},
		{"below min", long, obs(0.5, nil), 1, "below MinCapacity"},
		{"above max", long, obs(16, nil), 8, "above MaxCapacity"},
		{"cpu saturated: top of the tier first", long, obs(1, func(o *Observation) { o.CPU1m = 100 }), 1.5, "CPU 100%"},
		{"cpu saturated at the top of a tier crosses", long, obs(1.5, func(o *Observation) { o.CPU1m = 100 }), 3, "CPU 100%"},
		{"cpu and connections cross at once", long, obs(1, func(o *Observation) { o.CPU1m, o.Connections = 100, 85 }), 2, "85 of 90"},
		{"cpu 80% grows in place", long, obs(2, func(o *Observation) { o.CPU1m = 80 }), 3.5, "CPU 80%"},
		{"cpu high but no history", long, obs(1, func(o *Observation) { o.CPU1m, o.CPUWindow = 100, 10*time.Second }), 1, "within"},
		{"cpu high in cool-down", State{LastChange: t0.Add(-time.Minute)}, obs(1, func(o *Observation) { o.CPU1m = 100 }), 1, "scale-up cool-down"},
		{"cpu high at max", long, obs(8, func(o *Observation) { o.CPU1m = 100 }), 8, "at MaxCapacity"},
		{"connections 90%", long, obs(1, func(o *Observation) { o.Connections = 81 }), 2, "81 of 90 connections"},
		{"connections need 8", long, obs(4, func(o *Observation) { o.Connections = 260 }), 8, "260 of 270"},
		{"memory", long, obs(1, func(o *Observation) { o.MemoryBytes = 1900 << 20 }), 1.5, "memory 1.9 GiB"},
		{"oom kill", long, obs(1, func(o *Observation) { o.OOMKills = 1 }), 2, "killed at the 2.0 GiB memory limit"},
		{"oom kill capped", long, obs(8, func(o *Observation) { o.OOMKills = 1 }), 8, "at MaxCapacity"},
		{"hnsw grows before it stops fitting", long, obs(1, func(o *Observation) { o.VectorIndexBytes = 600 << 20 }), 1.5, "borealis_hnsw"},
		{"low but not long", lowFor(time.Minute), obs(4, func(o *Observation) { o.CPU1m, o.CPU5m = 5, 5 }), 4, "low use for 1m0s"},
		{"low long: halve", lowFor(6 * time.Minute), obs(4, func(o *Observation) { o.CPU1m, o.CPU5m = 5, 5 }), 2, "Autoscaling: low use"},
		{"low long at min", lowFor(6 * time.Minute), obs(1, func(o *Observation) { o.CPU1m, o.CPU5m = 5, 5 }), 1, "needs the current"},
		{"low, 1m busy", lowFor(6 * time.Minute), obs(4, func(o *Observation) { o.CPU1m, o.CPU5m = 40, 5 }), 4, "within"},
		{"low, down cool-down", State{LastChange: t0.Add(-10 * time.Minute), LastScaleDown: t0.Add(-10 * time.Minute), LowSince: t0.Add(-6 * time.Minute)},
			obs(4, func(o *Observation) { o.CPU1m, o.CPU5m = 5, 5 }), 4, "scale-down cool-down"},
		{"low but hnsw holds it", lowFor(6 * time.Minute), obs(4, func(o *Observation) { o.CPU1m, o.CPU5m, o.VectorIndexBytes = 5, 5, 1800<<20 }), 4, "needs the current"},
		{"low, connections keep 8", lowFor(6 * time.Minute), obs(8, func(o *Observation) { o.CPU1m, o.CPU5m, o.Connections = 5, 5, 260; o.MaxConnections = 1000 }), 8, "needs the current"},
		{"bad range", long, obs(2, func(o *Observation) { o.Min, o.Max = 4, 2 }), 2, "invalid range"},
	} {
		d, _ := Decide(p, c.s, c.o)
		if d.Target != c.target || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("%s: got %g (%s), want %g (%q)", c.name, d.Target, d.Reason, c.target, c.reason)
		}
	}
}

func TestDefaultPolicyValid(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy()
	p.TargetCPU = 80
	if err := p.Validate(); err == nil {
		t.Fatal("a target above the scale-up threshold was accepted")
	}
	p = DefaultPolicy()
	p.ScaleUpCPU = 0
	if err := p.Validate(); err == nil {
		t.Fatal("a zero threshold was accepted")
	}
}

// load is an absolute demand: CPUs busy, sessions, bytes. The observation at a capacity is
// what a node of that size would show.
type load struct {
	cpus      float64
	conns     int
	mem, hnsw int64
}

func (l load) at(c float64, now time.Time, min, max float64) Observation {
	cpu := 100 * l.cpus / capacity.CPUs(c)
	if cpu > 100 {
		cpu = 100 // a node cannot use more than its quota
	}
	return Observation{Now: now, Capacity: c, Min: min, Max: max, CPU1m: cpu, CPU5m: cpu, CPUWindow: 5 * time.Minute,
		Connections: l.conns, MaxConnections: capacity.MaxConnections(c), MemoryBytes: l.mem, VectorIndexBytes: l.hnsw}
}

// Properties, over random loads and ranges: never outside min/max, deterministic, and under a
// constant load capacity moves in one direction only (no flapping) and settles.
func TestDecideProperties(t *testing.T) {
	p := DefaultPolicy()
	rng := rand.New(rand.NewSource(13))
	for i := 0; i < 1000; i++ {
		min := float64(1+rng.Intn(8)) * 0.5
		max := min + float64(rng.Intn(40))*0.5
		l := load{cpus: rng.Float64() * 12, conns: rng.Intn(1500), mem: rng.Int63n(40 << 30), hnsw: rng.Int63n(8 << 30)}
		if rng.Intn(3) == 0 {
			l.mem, l.hnsw = 0, 0
		}
		c := min + float64(rng.Intn(int((max-min)/0.5)+1))*0.5
		var s State
		now := t0
		dir := 0
		changes := 0
		for step := 0; step < 200; step++ {
			o := l.at(c, now, min, max)
			d, s2 := Decide(p, s, o)
			d2, s3 := Decide(p, s, o)
			if d != d2 || s2 != s3 {
				t.Fatalf("not deterministic: %+v then %+v", d, d2)
			}
			if d.Target < min || d.Target > max {
				t.Fatalf("target %g outside %g-%g (load %+v, capacity %g): %s", d.Target, min, max, l, c, d.Reason)
			}
			s = s2
			if d.Changed(c) {
				nd := 1
				if d.Target < c {
					nd = -1
				}
				if dir != 0 && nd != dir {
					t.Fatalf("flapping under constant load %+v in %g-%g: went %d then %d at %g -> %g (%s)", l, min, max, dir, nd, c, d.Target, d.Reason)
				}
				dir = nd
				changes++
				s = s.Applied(c, d.Target, now)
				c = d.Target
			}
			now = now.Add(30 * time.Second)
		}
		if changes > 12 {
			t.Fatalf("load %+v in %g-%g: %d changes, did not settle", l, min, max, changes)
		}
	}
}
