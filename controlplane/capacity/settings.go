package capacity

import (
	"fmt"
	"math"
	"sort"
)

const (
	// MemoryPerACU is the memory of one ACU, as Aurora defines it: 2 GiB.
	MemoryPerACU = 2 << 30
	// CPUPerACU is the CPU share of one ACU, in CPUs. Aurora only says "corresponding CPU";
	// Neon publishes its compute unit as 1 vCPU per 4 GB, the same ratio as this.
	CPUPerACU = 0.5
	// MinNodeACU is the smallest capacity a running node has. A paused cluster reports 0 ACU,
	// and its settings are those of MinNodeACU except max_connections, which never drops below
	// the 1-ACU value (the seed's rule).
	MinNodeACU = 0.5
	// MaxNodeACU is the largest capacity in the table (the seed's max_connections table ends
	// there; the API currently allows up to 128).
	MaxNodeACU = 256
	// WorkerProcesses is max_worker_processes on every node, whatever its capacity: it needs a
	// restart, and a hot standby may not have fewer than its writer, so it is fixed at 8 plus
	// the parallel workers of the largest capacity.
	WorkerProcesses = 8 + 64
)

// maxConnections is the seed's table (Aurora Serverless v1), by capacity tier.
var maxConnections = []struct {
	acu float64
	n   int
}{{1, 90}, {2, 180}, {4, 270}, {8, 1000}, {16, 2000}, {32, 3000}, {64, 4000}, {128, 5000}, {256, 6000}}

// Setting is one PostgreSQL parameter as capacity sets it.
type Setting struct {
	Name  string
	Value string
	// Restart is true for parameters PostgreSQL reads only at server start (context
	// postmaster); the others take effect on a reload.
	Restart bool
}

// Tier is the capacity whose restart-type settings (shared_buffers, max_connections) a node at
// acu runs with: the largest power of two at or below it (0.5 below 1 ACU). Between two powers
// of two only reloadable settings and the cgroup change, so those changes happen in place.
func Tier(acu float64) float64 {
	acu = clampACU(acu)
	if acu < 1 {
		return MinNodeACU
	}
	return math.Exp2(math.Floor(math.Log2(acu)))
}

func clampACU(acu float64) float64 {
	if math.IsNaN(acu) || acu < MinNodeACU {
		return MinNodeACU
	}
	return math.Min(acu, MaxNodeACU)
}

// MaxConnections is max_connections at acu: the seed's table (1 ACU 90, 2 180, 4 270, 8 1,000,
// then +1,000 per doubling to 6,000 at 256), each capacity taking the row of its Tier, so 3 ACU
// has 180. Never below the 1-ACU value: 0.5 ACU and a paused node (0 ACU) have 90.
func MaxConnections(acu float64) int {
	t := Tier(acu)
	n := maxConnections[0].n
	for _, row := range maxConnections {
		if row.acu <= t {
			n = row.n
		}
	}
	return n
}

// MemoryBytes is the memory limit of a node at acu (2 GiB per ACU).
func MemoryBytes(acu float64) int64 { return int64(clampACU(acu) * MemoryPerACU) }

// CPUs is the CPU limit of a node at acu, in CPUs (0.5 per ACU).
func CPUs(acu float64) float64 { return clampACU(acu) * CPUPerACU }

const mb = 1 << 20

// SharedBuffersBytes is shared_buffers at acu: a quarter of its Tier's memory (PostgreSQL's
// own advice for a dedicated server; the OS page cache holds the rest).
func SharedBuffersBytes(acu float64) int64 { return MemoryBytes(Tier(acu)) / 4 }

// WALBuffersBytes is wal_buffers at acu: 1/128 of shared_buffers, at most PostgreSQL's own
// ceiling of 16 MB (reached at 4 ACU). PostgreSQL's automatic value is 1/32, which at 1 ACU
// is 16 MB that the postmaster zeroes page by page at every start: measured on the 2-core VM,
// those page faults were a quarter of a node's start-up CPU (14,300 faults and 620 ms
// for a start with 16 MB, 10,500 and 490 ms with 1 MB), and a start is what a resume waits
// for. Small writes gain nothing from the larger buffer.
func WALBuffersBytes(acu float64) int64 { return min(SharedBuffersBytes(acu)/128, 16*mb) }

// ParallelWorkers is max_parallel_workers at acu: one per whole CPU of the capacity, at most 64.
func ParallelWorkers(acu float64) int { return min(WorkerProcesses-8, int(math.Floor(CPUs(acu)))) }

// Settings are the parameters capacity sets on a node at acu, by name. The values:
//
//	max_connections                   MaxConnections (seed's table by Tier)          restart
//	shared_buffers                    25% of the Tier's memory                       restart
//	wal_buffers                       shared_buffers / 128, at most 16 MB            restart
//	max_worker_processes              WorkerProcesses (fixed)                        restart
//	effective_cache_size              75% of memory                                  reload
//	work_mem                          (memory - shared_buffers) / (2 x max_connections),
//	                                  4 MB to 1 GB                                   reload
//	maintenance_work_mem              memory / 8, 64 MB to 8 GB                      reload
//	max_parallel_workers              whole CPUs, at most 64                         reload
//	max_parallel_workers_per_gather   half of that, at most 4                        reload
//	max_parallel_maintenance_workers  half of that, at most 4                        reload
//	borealis.build_threads            CPUs rounded up, 1 to 64                       reload
func Settings(acu float64) []Setting {
	mem := MemoryBytes(acu)
	sb := SharedBuffersBytes(acu)
	conns := MaxConnections(acu)
	workers := ParallelWorkers(acu)
	half := min(4, workers/2)
	workMem := clampInt((mem-sb)/int64(2*conns), 4*mb, 1<<30)
	maint := clampInt(mem/8, 64*mb, 8<<30)
	threads := int(math.Min(64, math.Max(1, math.Ceil(CPUs(acu)))))
	out := []Setting{
		{Name: "max_connections", Value: fmt.Sprint(conns), Restart: true},
		{Name: "shared_buffers", Value: kb(sb), Restart: true},
		{Name: "wal_buffers", Value: kb(WALBuffersBytes(acu)), Restart: true},
		{Name: "max_worker_processes", Value: fmt.Sprint(WorkerProcesses), Restart: true},
		{Name: "effective_cache_size", Value: kb(mem * 3 / 4)},
		{Name: "work_mem", Value: kb(workMem)},
		{Name: "maintenance_work_mem", Value: kb(maint)},
		{Name: "max_parallel_workers", Value: fmt.Sprint(workers)},
		{Name: "max_parallel_workers_per_gather", Value: fmt.Sprint(half)},
		{Name: "max_parallel_maintenance_workers", Value: fmt.Sprint(half)},
		{Name: "borealis.build_threads", Value: fmt.Sprint(threads)},
	}
	return out
}

// StandbySettings are Settings for a hot standby whose writer may scale up to writerMaxACU: a
// standby stops replaying when its max_connections is below its writer's, so it takes the
// larger of its own value and the one at writerMaxACU.
func StandbySettings(acu, writerMaxACU float64) []Setting {
	s := Settings(acu)
	n := max(MaxConnections(acu), MaxConnections(writerMaxACU))
	for i := range s {
		if s[i].Name == "max_connections" {
			s[i].Value = fmt.Sprint(n)
		}
	}
	return s
}

func clampInt(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

// kb renders bytes as a whole number of kB, PostgreSQL's unit for these memory settings.
func kb(b int64) string { return fmt.Sprintf("%dkB", b/1024) }

// Owned is the names of every parameter capacity sets, sorted. A parameter group must not set
// them: the value follows the capacity.
func Owned() []string {
	var out []string
	for _, s := range Settings(1) {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

// IsOwned reports whether capacity sets the parameter name.
func IsOwned(name string) bool {
	for _, s := range Settings(1) {
		if s.Name == name {
			return true
		}
	}
	return false
}

// RestartNeeded lists the restart-type parameters whose values differ between two lists of
// settings (what a node runs with and what it should run with), sorted.
func RestartNeeded(from, to []Setting) []string {
	old := map[string]string{}
	for _, s := range from {
		old[s.Name] = s.Value
	}
	var out []string
	for _, s := range to {
		if s.Restart && old[s.Name] != s.Value {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Map returns settings as name → value.
func Map(settings []Setting) map[string]string {
	m := make(map[string]string, len(settings))
	for _, s := range settings {
		m[s.Name] = s.Value
	}
	return m
}
