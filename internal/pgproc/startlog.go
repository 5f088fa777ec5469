package pgproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/borealisdb/borealis/internal/safefile"
)

// ErrPortInUse is wrapped by a start that failed because another process holds the server's
// TCP port: a caller that chose the port may choose another and start again.
var ErrPortInUse = errors.New("its TCP port is held by another process")

// collectorHint is PostgreSQL's word, in the stderr log, that the rest of the start-up's
// messages go to the logging collector's files (PostgreSQL 15 starts the collector before it
// opens its sockets, so a port conflict's FATAL goes there too).
var collectorHint = regexp.MustCompile(`Future log output will appear in directory "([^"]+)"`)

// startFailure is the error for a server that exited (exited) or was not ready when ctx ended
// (cause) during a start: it leads with PostgreSQL's own FATAL or PANIC line, then the stderr
// log's lines of this start and, when the logging collector took over, the end of its newest
// file, where that FATAL went.
func (n *Node) startFailure(exited bool, cause string) error {
	if exited && n.PID() != 0 {
		// The logging collector writes what the postmaster sent it after the postmaster has
		// gone; it is in the postmaster's process group and ends once it has written it all.
		waitGroupGone(n.PID(), 10*time.Second)
	}
	own, collected, file := n.startLog()
	var b strings.Builder
	if exited {
		fmt.Fprintf(&b, "postgres for %s exited during start-up (%v)", n.DataDir, n.err)
	} else {
		fmt.Fprintf(&b, "postgres for %s not ready: %s", n.DataDir, cause)
	}
	// (Only for an exit: a server still starting refuses the readiness checks with FATALs.)
	if fatal := firstFatal(own + "\n" + collected); exited && fatal != "" {
		fmt.Fprintf(&b, ": %s", fatal)
	}
	fmt.Fprintf(&b, "; log %s ends with:\n%s", n.LogFile, own)
	if file != "" {
		fmt.Fprintf(&b, "\nthe logging collector's %s ends with:\n%s", file, collected)
	}
	err := errors.New(b.String())
	if exited && portTaken(own+"\n"+collected) {
		return fmt.Errorf("%w (%w)", err, ErrPortInUse)
	}
	return err
}

// portTaken reports whether a start's log says it could not listen on its TCP port because it
// was taken (with listen_addresses a single address, that ends the start).
func portTaken(log string) bool {
	return strings.Contains(log, "could not create any TCP/IP sockets") && strings.Contains(log, "Address already in use")
}

// firstFatal returns the first FATAL or PANIC line of log, without its prefix.
func firstFatal(log string) string {
	for _, line := range strings.Split(log, "\n") {
		for _, level := range []string{"FATAL:", "PANIC:"} {
			if i := strings.Index(line, level); i >= 0 {
				return strings.Join(strings.Fields(line[i:]), " ")
			}
		}
	}
	return ""
}

// startLog returns what the server logged in this start: the stderr log's lines since Start
// (at most 30), and, if the server handed its logging to the collector, the newest collector
// file written since Start and its lines from this start on (at most 30).
func (n *Node) startLog() (own, collected, file string) {
	data, err := readFrom(n.LogFile, n.logOffset)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err), "", ""
	}
	own = lastLines(data, 30)
	m := collectorHint.FindStringSubmatch(data)
	if m == nil {
		return own, "", ""
	}
	dir := m[1]
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(n.DataDir, dir)
	}
	file = newestLog(dir, n.Launched.Add(-2*time.Second))
	if file == "" {
		return own, fmt.Sprintf("(no file in %s written since the start)", dir), dir
	}
	data, err = readFrom(file, -64<<10)
	if err != nil {
		return own, fmt.Sprintf("(unreadable: %v)", err), file
	}
	// A file the collector reuses (same name within a second) holds earlier starts too.
	if i := strings.LastIndex(data, "starting PostgreSQL"); i >= 0 {
		data = data[strings.LastIndexByte(data[:i], '\n')+1:] // from the start of its line
	}
	return own, lastLines(data, 30), file
}

// newestLog is the most recently written plain-text log file in dir modified at or after
// since, or "" (the collector also writes .json and .csv files beside it).
func newestLog(dir string, since time.Time) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var best string
	var bestTime time.Time
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".json") || strings.HasSuffix(e.Name(), ".csv") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().Before(since) {
			continue
		}
		if best == "" || info.ModTime().After(bestTime) {
			best, bestTime = filepath.Join(dir, e.Name()), info.ModTime()
		}
	}
	return best
}

// readFrom reads path from offset on; a negative offset counts back from the end (at most that
// many bytes). An offset beyond the end (the file was replaced) reads the whole file.
func readFrom(path string, offset int64) (string, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	switch {
	case offset < 0:
		offset = max(0, size+offset)
	case offset > size:
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", err
	}
	data, err := io.ReadAll(f)
	return string(data), err
}

// lastLines returns the last k lines of s.
func lastLines(s string, k int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > k {
		all = all[len(all)-k:]
	}
	return strings.Join(all, "\n")
}
