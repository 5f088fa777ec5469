package bgworker

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// UsableCPUs is how many CPUs the server may use: its affinity count, lowered by a cgroup v2
// CPU quota (cpu.max) on the path from the process's cgroup up to the root, as Docker and
// Kubernetes set one. proc is "/proc" and cgroupRoot "/sys/fs/cgroup" outside tests; where the
// quota cannot be read (cgroup v1, no cpu controller) the affinity count stands.
func UsableCPUs(proc, cgroupRoot string, pid int, affinity float64) float64 {
	limit := cgroupCPULimit(proc, cgroupRoot, pid)
	if limit > 0 && limit < affinity {
		return limit
	}
	return affinity
}

// cgroupCPULimit is the smallest quota/period on the cgroup path of pid, or 0 if none.
func cgroupCPULimit(proc, cgroupRoot string, pid int) float64 {
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return 0
	}
	defer f.Close()
	path := ""
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			path, found = p, true
		}
	}
	if !found {
		return 0
	}
	limit := 0.0
	for dir := filepath.Join(cgroupRoot, filepath.Clean("/"+path)); ; dir = filepath.Dir(dir) {
		if data, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
			if l, ok := parseCPUMax(string(data)); ok && (limit == 0 || l < limit) {
				limit = l
			}
		}
		if len(dir) <= len(filepath.Clean(cgroupRoot)) {
			return limit
		}
	}
}

// parseCPUMax reads cgroup v2 cpu.max ("quota period", or "max period" for no limit).
func parseCPUMax(s string) (float64, bool) {
	f := strings.Fields(s)
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
		return 0, false
	}
	return quota / period, true
}
