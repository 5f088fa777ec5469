package ann

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryKind says what the peak memory figure sums: PSS (proportional set size, from
// smaps_rollup), which splits shared pages such as shared_buffers fairly between the
// processes instead of counting them once per backend as RSS would.
const MemoryKind = "PSS"

// procParent reads pid's parent and command name from /proc/<pid>/stat.
func procParent(pid int) (int, string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	// comm is in parentheses and may contain spaces; fields after the last ')'.
	open, close := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || close < open {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(data[close+1:]))
	if len(fields) < 2 {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, string(data[open+1 : close]), err
}

// serverProcesses lists root and all its descendants.
func serverProcesses(root int) []int {
	entries, _ := filepath.Glob("/proc/[0-9]*")
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		if ppid, _, err := procParent(pid); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// rollup sums the named fields (kB) of /proc/<pid>/smaps_rollup, in bytes (0 if it is gone).
func rollup(pid int, fields ...string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, name := range fields {
			if rest, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				total += kb * 1024
			}
		}
	}
	return total
}

// processPSS is one process's PSS in bytes (0 if it is gone).
func processPSS(pid int) int64 { return rollup(pid, "Pss") }

// ProcessPrivate is one process's USS in bytes: the pages only it maps (Private_Clean plus
// Private_Dirty), which is what ending it would give back.
func ProcessPrivate(pid int) int64 { return rollup(pid, "Private_Clean", "Private_Dirty") }

// ServerMemory is the summed PSS of the server rooted at postmaster.
func ServerMemory(postmaster int) int64 {
	var total int64
	for _, pid := range serverProcesses(postmaster) {
		total += processPSS(pid)
	}
	return total
}

// memorySampler records the peak of ServerMemory while it runs.
type memorySampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak int64
}

// sampleMemory starts sampling every interval; postmaster 0 samples nothing.
func sampleMemory(postmaster int, interval time.Duration) *memorySampler {
	s := &memorySampler{stop: make(chan struct{})}
	if postmaster == 0 {
		return s
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if m := ServerMemory(postmaster); m > s.peak {
				s.peak = m
			}
			select {
			case <-s.stop:
				// A build shorter than the interval is sampled at its end too.
				if m := ServerMemory(postmaster); m > s.peak {
					s.peak = m
				}
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Peak stops sampling and returns the peak in bytes (0 when not measured).
func (s *memorySampler) Peak() int64 {
	close(s.stop)
	s.done.Wait()
	return s.peak
}
