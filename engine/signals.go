package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pgAsyncSignals are the signals PostgreSQL's own thread must receive: SIGINT (cancel),
// SIGUSR1 (procsignals), SIGUSR2, SIGTERM (terminate), SIGALRM (timeouts), SIGHUP (reload),
// SIGURG (latches; received through a signalfd, so a Go thread that takes it loses a wakeup).
var pgAsyncSignals = []int{2, 10, 12, 15, 14, 1, 23}

// signalIsolation reports whether every thread other than the process's main thread, that is
// every Go runtime thread, blocks PostgreSQL's asynchronous signals. It holds when the loader
// blocked them while the runtime started and async preemption is off; if preemption were on,
// the runtime would unblock SIGURG in its threads.
type signalIsolation struct {
	GoThreads int    `json:"go_threads"`
	OK        bool   `json:"ok"`
	Problem   string `json:"problem,omitempty"`
}

func checkSignalIsolation() signalIsolation {
	pid := os.Getpid()
	dirs, err := filepath.Glob("/proc/self/task/*")
	if err != nil || len(dirs) == 0 {
		return signalIsolation{Problem: "cannot list /proc/self/task"}
	}
	res := signalIsolation{OK: true}
	for _, dir := range dirs {
		tid, _ := strconv.Atoi(filepath.Base(dir))
		if tid == pid {
			continue
		}
		res.GoThreads++
		blocked, err := blockedSignals(filepath.Join(dir, "status"))
		if err != nil {
			return signalIsolation{Problem: err.Error()}
		}
		for _, sig := range pgAsyncSignals {
			if blocked&(1<<(sig-1)) == 0 {
				res.OK = false
				res.Problem = "thread " + strconv.Itoa(tid) + " accepts signal " + strconv.Itoa(sig)
			}
		}
	}
	return res
}

// blockedSignals reads the SigBlk mask of one thread.
func blockedSignals(statusFile string) (uint64, error) {
	data, err := os.ReadFile(statusFile)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigBlk:"); ok {
			return strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		}
	}
	return 0, os.ErrNotExist
}
