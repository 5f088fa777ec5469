// Package benchenv holds what the benchmarks under bench/ report about the machine they ran on
// and how they measure CPU: load average, CPU model, CPU time of this process and of a server
// process, and the median of a run's rounds. It owns no benchmark logic and never starts or
// stops anything.
package benchenv

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LoadAvg is /proc/loadavg's three load averages, or "?".
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// CPUModel is /proc/cpuinfo's first model name.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// Median of v (the upper one of an even count); v is not changed.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// CPUTime is this process's user+system CPU time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ChildrenCPU is the CPU time of this process's reaped children (pgbench runs, say).
func ChildrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ServerCPU is the CPU time of a process and its exited children (a postmaster's backends end
// with each pgbench run), from /proc/<pid>/stat utime+stime+cutime+cstime at 100 ticks a second.
func ServerCPU(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime (fields 14-17)
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// ServerTreeCPU is ServerCPU of pid plus that of each of its living children: a pooler such as
// PgBouncer keeps its server connections open across runs, so their backends are not reaped
// and ServerCPU alone would miss them.
func ServerTreeCPU(pid int) time.Duration {
	total := ServerCPU(pid)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return total
	}
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			total += ServerCPU(c)
		}
	}
	return total
}

// MachineCPU is the machine's busy and idle time so far, from /proc/stat (busy: user, nice,
// system, irq, softirq and steal; idle: idle and iowait).
func MachineCPU() (busy, idle time.Duration) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var t [8]int64
	for i := range t {
		if i+1 < len(f) {
			t[i], _ = strconv.ParseInt(f[i+1], 10, 64)
		}
	}
	tick := 10 * time.Millisecond
	busy = time.Duration(t[0]+t[1]+t[2]+t[5]+t[6]+t[7]) * tick
	idle = time.Duration(t[3]+t[4]) * tick
	return busy, idle
}

// ServerTreeFaults is the minor page faults of pid, its exited children and its living
// children (/proc/<pid>/stat minflt and cminflt). A new PostgreSQL backend faults in each
// shared-buffer page the first time it touches it, which a pooler's long-lived backends do not.
func ServerTreeFaults(pid int) int64 {
	faults := func(pid int) int64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 > len(s) {
			return 0
		}
		f := strings.Fields(s[i+2:])
		var n int64
		for _, i := range []int{7, 8} { // minflt cminflt (fields 10 and 11)
			if i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				n += v
			}
		}
		return n
	}
	total := faults(pid)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return total
	}
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			total += faults(c)
		}
	}
	return total
}
