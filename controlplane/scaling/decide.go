package scaling

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/capacity"
)

// Policy holds the thresholds and timings. DefaultPolicy gives each default and where it comes
// from; every field is settable.
type Policy struct {
	// Scale up when any of these is reached (percent of the current capacity's CPU,
	// max_connections and memory).
	ScaleUpCPU, ScaleUpConnections, ScaleUpMemory float64
	// VectorIndexMemory is the share (percent) of memory the borealis_hnsw indexes may take
	// before the node grows: each scanning backend keeps a copy of the graph, so it must fit
	// well before memory is full.
	VectorIndexMemory float64
	// Scale down only while all of these hold (CPU over both 1 and 5 minutes).
	ScaleDownCPU, ScaleDownConnections, ScaleDownMemory float64
	// TargetCPU and TargetConnections, TargetMemory are the utilisation a new capacity is sized
	// for (percent), below the scale-up thresholds so a change does not call for another.
	TargetCPU, TargetConnections, TargetMemory float64
	// LowUseFor is how long use must stay low before a scale-down.
	LowUseFor time.Duration
	// UpCooldown is the wait after any change before a scale-up; DownCooldown the longer wait
	// after a scale-down before the next one.
	UpCooldown, DownCooldown time.Duration
	// MinCPUWindow is how much CPU history is needed before CPU may trigger anything (a node
	// just started has none worth acting on).
	MinCPUWindow time.Duration
}

// DefaultPolicy follows Aurora Serverless v1's documented behaviour: scale up when CPU is above
// 70% or connections above 90% of max_connections; scale down when CPU is below 30% and
// connections below 40%; a 3-minute cool-down after a change before scaling up again and a
// 15-minute one after a scale-down before the next. Memory and vector-index rules are ours:
// Aurora scales on "available memory" without publishing a figure.
func DefaultPolicy() Policy {
	return Policy{
		ScaleUpCPU: 70, ScaleUpConnections: 90, ScaleUpMemory: 90, VectorIndexMemory: 25,
		ScaleDownCPU: 30, ScaleDownConnections: 40, ScaleDownMemory: 50,
		TargetCPU: 50, TargetConnections: 70, TargetMemory: 70,
		LowUseFor: 5 * time.Minute, UpCooldown: 3 * time.Minute, DownCooldown: 15 * time.Minute,
		MinCPUWindow: 30 * time.Second,
	}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	pct := []struct {
		name string
		v    float64
	}{{"ScaleUpCPU", p.ScaleUpCPU}, {"ScaleUpConnections", p.ScaleUpConnections}, {"ScaleUpMemory", p.ScaleUpMemory},
		{"VectorIndexMemory", p.VectorIndexMemory}, {"ScaleDownCPU", p.ScaleDownCPU}, {"ScaleDownConnections", p.ScaleDownConnections},
		{"ScaleDownMemory", p.ScaleDownMemory}, {"TargetCPU", p.TargetCPU}, {"TargetConnections", p.TargetConnections}, {"TargetMemory", p.TargetMemory}}
	for _, x := range pct {
		if !(x.v > 0 && x.v <= 100) {
			return fmt.Errorf("scaling policy: %s = %g, want a percentage above 0 and at most 100", x.name, x.v)
		}
	}
	if !(p.ScaleDownCPU < p.TargetCPU && p.TargetCPU < p.ScaleUpCPU) || !(p.ScaleDownConnections < p.TargetConnections && p.TargetConnections < p.ScaleUpConnections) ||
		!(p.ScaleDownMemory < p.TargetMemory && p.TargetMemory < p.ScaleUpMemory) {
		return fmt.Errorf("scaling policy: each scale-down threshold must be below its target, and the target below the scale-up threshold")
	}
	if p.LowUseFor < 0 || p.UpCooldown < 0 || p.DownCooldown < 0 || p.MinCPUWindow < 0 {
		return fmt.Errorf("scaling policy: durations must not be negative")
	}
	return nil
}

// Observation is what is known about a node now.
type Observation struct {
	Now      time.Time
	Capacity float64
	Min, Max float64
	// CPU1m and CPU5m are percent of the capacity's CPUs, averaged over what CPUWindow covers
	// (at most 1 and 5 minutes); CPUWindow 0 means CPU is unknown.
	CPU1m, CPU5m float64
	CPUWindow    time.Duration
	// Connections are client sessions; MaxConnections is the node's setting.
	Connections, MaxConnections int
	// MemoryBytes is what the node's processes use (0: unknown).
	MemoryBytes int64
	// VectorIndexBytes is the size of the node's borealis_hnsw indexes.
	VectorIndexBytes int64
	// OOMKills counts processes the kernel killed at the memory limit since the last decision.
	OOMKills int64
}

// State is carried from one decision to the next.
type State struct {
	// LastChange and LastScaleDown are when capacity last changed, and last went down.
	LastChange, LastScaleDown time.Time
	// LowSince is when use last became low (zero while it is not).
	LowSince time.Time
}

// Decision is the outcome: Target equal to the capacity means no change.
type Decision struct {
	Target float64
	Reason string
}

// Changed reports whether the decision changes capacity from c.
func (d Decision) Changed(c float64) bool { return d.Target != c }

// Applied is the state after a change to capacity was applied at now.
func (s State) Applied(from, to float64, now time.Time) State {
	s.LastChange, s.LowSince = now, time.Time{}
	if to < from {
		s.LastScaleDown = now
	}
	return s
}

const step = 0.5

// roundUp rounds to the next multiple of the capacity step.
func roundUp(v float64) float64 { return math.Ceil(v/step-1e-9) * step }

func pct(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * part / whole
}

// Decide returns the capacity the node should have and why, and the state to pass next time.
func Decide(p Policy, s State, o Observation) (Decision, State) {
	keep := Decision{Target: o.Capacity}
	if o.Min > o.Max || o.Min <= 0 {
		keep.Reason = fmt.Sprintf("invalid range %g-%g ACU", o.Min, o.Max)
		return keep, s
	}
	if o.Capacity < o.Min {
		return Decision{Target: o.Min, Reason: fmt.Sprintf("capacity %g is below MinCapacity %g", o.Capacity, o.Min)}, s
	}
	if o.Capacity > o.Max {
		return Decision{Target: o.Max, Reason: fmt.Sprintf("capacity %g is above MaxCapacity %g", o.Capacity, o.Max)}, s
	}
	c := o.Capacity
	cpuKnown := o.CPUWindow >= p.MinCPUWindow && o.CPUWindow > 0
	mem := float64(capacity.MemoryBytes(c))
	conns := float64(o.Connections)
	maxConns := float64(o.MaxConnections)
	if maxConns <= 0 {
		maxConns = float64(capacity.MaxConnections(c))
	}

	// Why it should grow, and the smallest capacity that answers each reason.
	var why []string
	goal := c
	need := func(g float64, reason string) {
		why = append(why, reason)
		goal = math.Max(goal, g)
	}
	if o.OOMKills > 0 {
		need(2*c, fmt.Sprintf("%d process(es) killed at the %s memory limit", o.OOMKills, gib(mem)))
	}
	cpuOnly := false
	if cpuKnown && o.CPU1m >= p.ScaleUpCPU {
		cpuOnly = len(why) == 0
		need(c*o.CPU1m/p.TargetCPU, fmt.Sprintf("CPU %.0f%% of %g CPUs over 1 minute (scale-up at %.0f%%)", o.CPU1m, capacity.CPUs(c), p.ScaleUpCPU))
	}
	if pct(conns, maxConns) >= p.ScaleUpConnections {
		need(fitConnections(conns, p.TargetConnections, o.Max), fmt.Sprintf("%d of %d connections in use (scale-up at %.0f%%)", o.Connections, int(maxConns), p.ScaleUpConnections))
	}
	if o.MemoryBytes > 0 && pct(float64(o.MemoryBytes), mem) >= p.ScaleUpMemory {
		need(float64(o.MemoryBytes)*100/p.TargetMemory/capacity.MemoryPerACU, fmt.Sprintf("memory %s of %s (scale-up at %.0f%%)", gib(float64(o.MemoryBytes)), gib(mem), p.ScaleUpMemory))
	}
	if o.VectorIndexBytes > 0 && pct(float64(o.VectorIndexBytes), mem) > p.VectorIndexMemory {
		need(float64(o.VectorIndexBytes)*100/p.VectorIndexMemory/capacity.MemoryPerACU,
			fmt.Sprintf("borealis_hnsw indexes of %s exceed %.0f%% of %s memory", gib(float64(o.VectorIndexBytes)), p.VectorIndexMemory, gib(mem)))
	}
	cpuOnly = cpuOnly && len(why) == 1
	if len(why) > 0 {
		s.LowSince = time.Time{}
		target := math.Min(o.Max, math.Max(roundUp(goal), c+step))
		// CPU alone first grows within the tier, in place (no restart); only a later decision,
		// after the cool-down, crosses into the next tier if the load still needs it.
		if cpuOnly && capacity.Tier(target) != capacity.Tier(c) {
			if top := math.Min(o.Max, 2*capacity.Tier(c)-step); top > c {
				target = top
			}
		}
		switch {
		case c >= o.Max:
			keep.Reason = "at MaxCapacity; would scale up for: " + strings.Join(why, "; ")
			return keep, s
		case !s.LastChange.IsZero() && o.Now.Sub(s.LastChange) < p.UpCooldown:
			keep.Reason = fmt.Sprintf("scale-up cool-down (%s left); would scale up for: %s", (p.UpCooldown - o.Now.Sub(s.LastChange)).Round(time.Second), strings.Join(why, "; "))
			return keep, s
		}
		return Decision{Target: target, Reason: "Autoscaling: " + strings.Join(why, "; ")}, s
	}

	// Low use: every measure under its scale-down threshold.
	low := cpuKnown && o.CPU1m < p.ScaleDownCPU && o.CPU5m < p.ScaleDownCPU &&
		pct(conns, maxConns) < p.ScaleDownConnections &&
		(o.MemoryBytes == 0 || pct(float64(o.MemoryBytes), mem) < p.ScaleDownMemory)
	if !low {
		s.LowSince = time.Time{}
		keep.Reason = "load within thresholds"
		return keep, s
	}
	if s.LowSince.IsZero() {
		s.LowSince = o.Now
	}
	// The smallest capacity the current load fits at the targets, at least half of now.
	target := math.Max(o.Min, math.Max(roundUp(c/2), roundUp(c*o.CPU5m/p.TargetCPU)))
	target = math.Max(target, fitConnections(conns, p.TargetConnections, o.Max))
	target = math.Max(target, roundUp(float64(o.MemoryBytes)*100/p.TargetMemory/capacity.MemoryPerACU))
	target = math.Max(target, roundUp(float64(o.VectorIndexBytes)*100/p.VectorIndexMemory/capacity.MemoryPerACU))
	target = math.Min(target, c)
	switch {
	case target >= c:
		keep.Reason = "low use, but the load needs the current capacity"
		return keep, s
	case o.Now.Sub(s.LowSince) < p.LowUseFor:
		keep.Reason = fmt.Sprintf("low use for %s of %s", o.Now.Sub(s.LowSince).Round(time.Second), p.LowUseFor)
		return keep, s
	case !s.LastScaleDown.IsZero() && o.Now.Sub(s.LastScaleDown) < p.DownCooldown:
		keep.Reason = fmt.Sprintf("scale-down cool-down (%s left)", (p.DownCooldown - o.Now.Sub(s.LastScaleDown)).Round(time.Second))
		return keep, s
	case !s.LastChange.IsZero() && o.Now.Sub(s.LastChange) < p.UpCooldown:
		keep.Reason = fmt.Sprintf("cool-down after the last change (%s left)", (p.UpCooldown - o.Now.Sub(s.LastChange)).Round(time.Second))
		return keep, s
	}
	return Decision{Target: target, Reason: fmt.Sprintf("Autoscaling: low use for %s (CPU %.0f%%/%.0f%% over 1/5 minutes, %d connections)",
		o.Now.Sub(s.LowSince).Round(time.Second), o.CPU1m, o.CPU5m, o.Connections)}, s
}

// fitConnections is the smallest capacity (up to max) whose max_connections keeps conns at or
// below target percent.
func fitConnections(conns, target, maxACU float64) float64 {
	for c := step; c < maxACU; c += step {
		if conns <= float64(capacity.MaxConnections(c))*target/100 {
			return c
		}
	}
	return maxACU
}

func gib(b float64) string { return fmt.Sprintf("%.1f GiB", b/(1<<30)) }
