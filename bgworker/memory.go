package bgworker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// memoryBytes sums the proportional set size (PSS) of the processes. PSS charges each shared
// page (shared_buffers above all) to the processes mapping it in equal parts, so the sum is
// the memory the server really holds, where a sum of RSS would count shared_buffers once per
// backend. Kernels without smaps_rollup (before 4.14) fall back to RSS from statm.
func memoryBytes(proc string, pids []int) (int64, error) {
	var total int64
	for i, pid := range pids {
		b, err := processPSS(proc, pid)
		if err != nil {
			b, err = processRSS(proc, pid)
		}
		if err != nil {
			if i == 0 {
				return 0, fmt.Errorf("reading the postmaster's memory: %w", err)
			}
			continue // exited since it was listed
		}
		total += b
	}
	return total, nil
}

func processPSS(proc string, pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, err
	}
	return parsePSS(data)
}

// parsePSS finds the "Pss:" line of smaps_rollup, in kB.
func parsePSS(data []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("Pss:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("malformed smaps_rollup Pss line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed smaps_rollup Pss line %q: %w", sc.Text(), err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("smaps_rollup has no Pss line")
}

func processRSS(proc string, pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(data)
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed statm %q", data)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed statm %q: %w", data, err)
	}
	return pages * int64(os.Getpagesize()), nil
}
