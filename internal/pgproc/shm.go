package pgproc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A killed postmaster's System V segment can stay attached for a moment after its last
// process has left the process group: the segment is detached when the process's memory is
// finally released, and a reader of /proc/<pid>/smaps (a PSS measurement, the node agent)
// holds that memory past the process's exit. PostgreSQL refuses to start while the segment
// it recorded in postmaster.pid has attachments ("pre-existing shared memory block is still
// in use"), so Kill9 also waits for the segment's attach count to reach zero.

// recordedShmID is the System V segment id postmaster.pid records (its seventh line holds
// the key and the id), or -1 when the file or the line is missing.
func recordedShmID(dataDir string) int {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return -1
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 7 {
		return -1
	}
	fields := strings.Fields(lines[6])
	if len(fields) != 2 {
		return -1
	}
	id, err := strconv.Atoi(fields[1])
	if err != nil {
		return -1
	}
	return id
}

// shmAttached reports how many processes have segment id attached, from
// /proc/sysvipc/shm; a segment that is gone has none.
func shmAttached(id int) int {
	data, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		// key shmid perms size cpid lpid nattch ...
		if len(f) < 7 || f[1] != strconv.Itoa(id) {
			continue
		}
		n, _ := strconv.Atoi(f[6])
		return n
	}
	return 0
}

// waitShmDetached waits until the segment id has no attachment left, at most limit. It
// reports whether it got there.
func waitShmDetached(id int, limit time.Duration) bool {
	if id < 0 {
		return true
	}
	deadline := time.Now().Add(limit)
	for shmAttached(id) > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
