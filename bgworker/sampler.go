package bgworker

import (
	"fmt"
	"time"
)

// Sampler measures the resource use of one PostgreSQL server from /proc, once per call.
type Sampler struct {
	proc       string
	postmaster int
	clockTicks float64
	cpu        CPUMeter
}

// NodeUsage is what one sample measured.
type NodeUsage struct {
	CPUPercent1m, CPUPercent5m float64
	MemoryBytes                int64
	Processes                  int
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
		cpu: CPUMeter{CPUs: cpus, Keep: 5 * time.Minute}}, nil
}

// Sample reads CPU and memory now and returns them with the CPU averages so far.
func (s *Sampler) Sample(now time.Time) (NodeUsage, error) {
	pids, err := serverProcesses(s.proc, s.postmaster)
	if err != nil {
		return NodeUsage{}, err
	}
	ticks, err := cpuTicks(s.proc, pids)
	if err != nil {
		return NodeUsage{}, err
	}
	mem, err := memoryBytes(s.proc, pids)
	if err != nil {
		return NodeUsage{}, err
	}
	s.cpu.Add(now, float64(ticks)/s.clockTicks)
	return NodeUsage{
		CPUPercent1m: s.cpu.Percent(time.Minute),
		CPUPercent5m: s.cpu.Percent(5 * time.Minute),
		MemoryBytes:  mem,
		Processes:    len(pids),
	}, nil
}
