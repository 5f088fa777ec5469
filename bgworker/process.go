package bgworker

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat is the part of /proc/<pid>/stat the agent uses.
type procStat struct {
	PPID int
	// Ticks is utime+stime+cutime+cstime in clock ticks: the process's own CPU time plus that
	// of its children it has reaped, so work of exited backends stays counted in the postmaster.
	Ticks uint64
}

// parseStat parses one /proc/<pid>/stat line. The command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(line string) (procStat, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("malformed stat line %q: no ')' after the command name", line)
	}
	f := strings.Fields(line[end+1:])
	// f[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("malformed stat line %q: %d fields after the command name, want at least 15", line, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("malformed stat line %q: ppid: %w", line, err)
	}
	var ticks uint64
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("malformed stat line %q: cpu times: %w", line, err)
		}
		if v > 0 {
			ticks += uint64(v)
		}
	}
	return procStat{PPID: ppid, Ticks: ticks}, nil
}

func readStat(proc string, pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(strings.TrimSpace(string(data)))
}

// serverProcesses lists the postmaster and its children. The kernel lists each thread's
// children in /proc/<pid>/task/<tid>/children (one thread for the postmaster, but callers such
// as tests may have more); kernels without those files (CONFIG_PROC_CHILDREN off) get a scan
// of /proc instead.
func serverProcesses(proc string, postmaster int) ([]int, error) {
	if _, err := os.Stat(filepath.Join(proc, strconv.Itoa(postmaster))); err != nil {
		return nil, fmt.Errorf("postmaster pid %d not found in %s: %w", postmaster, proc, err)
	}
	pids := []int{postmaster}
	files, err := filepath.Glob(filepath.Join(proc, strconv.Itoa(postmaster), "task", "*", "children"))
	if err == nil && len(files) > 0 {
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue // a thread that just exited
			}
			for _, s := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(s); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		return pids, nil
	}
	return scanChildren(proc, postmaster, pids)
}

// scanChildren appends to pids every process of proc whose parent is postmaster.
func scanChildren(proc string, postmaster int, pids []int) ([]int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		if st, err := readStat(proc, pid); err == nil && st.PPID == postmaster {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// cpuTicks sums the CPU ticks of the processes. A process that exited since it was listed is
// skipped: its time reaches the postmaster's cutime once it is reaped.
func cpuTicks(proc string, pids []int) (uint64, error) {
	var total uint64
	for i, pid := range pids {
		st, err := readStat(proc, pid)
		if err != nil {
			if i == 0 {
				return 0, fmt.Errorf("reading the postmaster's CPU time: %w", err)
			}
			continue
		}
		total += st.Ticks
	}
	return total, nil
}
