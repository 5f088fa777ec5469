package bgworker

import (
	"fmt"
	"time"
)

// MemoryBudget is the share of wall time the agent may spend measuring memory. Reading PSS
// costs about 0.7 ms per process (the kernel walks its page tables), fifty times a stat read,
// so with many backends memory is re-measured less often than every sample: only once the time
// since the last measurement is at least its cost divided by this budget.
const MemoryBudget = 0.02

// Sampler measures the resource use of one PostgreSQL server from /proc, once per call.
type Sampler struct {
	proc       string
	postmaster int
	clockTicks float64
	cpu        CPUMeter

	memBudget float64
	memory    int64
	memAt     time.Time
	memCost   time.Duration
}

// NodeUsage is what one sample measured.
type NodeUsage struct {
	CPUPercent1m, CPUPercent5m float64
	MemoryBytes                int64
	// MemoryMeasuredAt is when MemoryBytes was measured (see MemoryBudget).
	MemoryMeasuredAt time.Time
	Processes        int
}

// NewSampler measures the server whose postmaster has pid postmaster, reading the proc file
// system at proc ("/proc"). clockTicks is the kernel's USER_HZ (sysconf(_SC_CLK_TCK)) and cpus
// the number of CPUs the server may use.
func NewSampler(proc string, postmaster int, clockTicks, cpus float64) (*Sampler, error) {
	if postmaster <= 0 {
		return nil, fmt.Errorf("postmaster pid must be positive, got %d", postmaster)
	}
	if clockTicks <= 0 || cpus <= 0 {
		return nil, fmt.Errorf("clock ticks (%g) and CPUs (%g) must be positive", clockTicks, cpus)
	}
	return &Sampler{proc: proc, postmaster: postmaster, clockTicks: clockTicks,
		cpu: CPUMeter{CPUs: cpus, Keep: 5 * time.Minute}, memBudget: MemoryBudget}, nil
}

// Sample reads CPU now, and memory when the budget allows, and returns them with the CPU
// averages so far.
func (s *Sampler) Sample(now time.Time) (NodeUsage, error) {
	pids, err := serverProcesses(s.proc, s.postmaster)
	if err != nil {
		return NodeUsage{}, err
	}
	ticks, err := cpuTicks(s.proc, pids)
	if err != nil {
		return NodeUsage{}, err
	}
	if s.memAt.IsZero() || now.Sub(s.memAt).Seconds() >= s.memCost.Seconds()/s.memBudget {
		start := time.Now()
		mem, err := memoryBytes(s.proc, pids)
		if err != nil {
			return NodeUsage{}, err
		}
		s.memory, s.memAt, s.memCost = mem, now, time.Since(start)
	}
	s.cpu.Add(now, float64(ticks)/s.clockTicks)
	return NodeUsage{
		CPUPercent1m:     s.cpu.Percent(time.Minute),
		CPUPercent5m:     s.cpu.Percent(5 * time.Minute),
		MemoryBytes:      s.memory,
		MemoryMeasuredAt: s.memAt,
		Processes:        len(pids),
	}, nil
}
