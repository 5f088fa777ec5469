package logs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/borealisdb/borealis/internal/safefile"
)

// errorSeverities are the jsonlog severities the error group keeps.
var errorSeverities = map[string]bool{"WARNING": true, "ERROR": true, "FATAL": true, "PANIC": true}

// keep reports whether a line belongs in a group of log type typ, and its time (ms since the
// epoch, 0 if unknown), as parseLine decodes it.
func keep(typ string, line []byte, tc *tsCache) (bool, int64) {
	k, ms, _, _ := route(typ, line, tc)
	return k, ms
}

// route is keep with the line's fields (scanFields: one pass over the line), which the
// exporter uses when the line reaches it in memory; fok is false when the line was decoded
// the slow way (the exporter then does too).
func route(typ string, line []byte, tc *tsCache) (keepIt bool, ms int64, f lineFields, fok bool) {
	f, fok = scanFields(line)
	if fok {
		sev, ok1 := text(f.sev.in(line))
		ts, ok2 := text(f.ts.in(line))
		if ok1 && ok2 {
			if typ != TypePostgreSQL && !errorSeverities[string(sev)] {
				return false, 0, f, true
			}
			return true, tsMillis(tc, ts), f, true
		}
	}
	l, ms, parsed := parseLineCached(line, tc)
	return typ == TypePostgreSQL || (parsed && errorSeverities[l.Severity]), ms, f, false
}

const (
	// readChunk bounds one read of a source file.
	readChunk = 1 << 20
	// partialGrace is how long a line without its newline, in a file that a newer file
	// follows, may stay unfinished before it is taken as it is (a rotation mid-line).
	partialGrace = 2 * time.Second
	// checkpointEvery bounds how much of a source a restart re-reads when the group keeps
	// few of its lines (the error group).
	checkpointEvery = 5 * time.Second
)

// tailer follows one instance's jsonlog files into one group's stream.
type tailer struct {
	cluster, member, typ string
	logDir               string
	s                    *stream

	cur string // source file being read (base name)
	off int64  // offset of the next unread byte in cur

	buf   []byte    // read buffer, reused
	lines []pending // lines of one read, reused
	tc    tsCache

	partialSize  int64 // size of cur when an unfinished last line was first seen
	partialSince time.Time
	skippedSince time.Time // first line read but not kept since the last stored record
	refused      string    // a source refused (and reported) already
}

func newTailer(cluster, member, typ, logDir string, s *stream) *tailer {
	t := &tailer{cluster: cluster, member: member, typ: typ, logDir: logDir, s: s}
	t.cur, t.off = s.position()
	return t
}

// sources lists the jsonlog files, oldest first (names carry the creation time). The node's
// user owns the directory, so neither it nor its data directory may be a symbolic link (which
// could lead the control plane to publish files of its own), and only PostgreSQL's file names
// count.
func sources(dir string) []string {
	for _, d := range []string{filepath.Dir(dir), dir} {
		if st, err := os.Lstat(d); err != nil || !st.IsDir() {
			return nil
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "postgresql-") && strings.HasSuffix(e.Name(), ".json") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// step reads what is new, stores the kept lines with their positions, and reports whether it
// made progress (consumed bytes or moved to a newer file) and how many events it stored.
// final takes an unfinished last line as it is (the node is gone).
func (t *tailer) step(final bool) (bool, int, error) {
	n, stored, moved, err := t.read(final)
	return n > 0 || moved, stored, err
}

func (t *tailer) read(final bool) (int64, int, bool, error) {
	files := sources(t.logDir)
	if len(files) == 0 {
		return 0, 0, false, nil
	}
	idx := sort.SearchStrings(files, t.cur)
	if t.cur == "" || idx == len(files) || files[idx] != t.cur {
		// Not started, or the file is gone: the first file after the recorded one.
		if idx == len(files) {
			return 0, 0, false, nil
		}
		t.cur, t.off = files[idx], 0
	}
	newer := idx+1 < len(files)
	// No symbolic link, hard link, FIFO or device: the node's user could plant one.
	f, err := safefile.Open(filepath.Join(t.logDir, t.cur))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, false, nil
		}
		// Refused: skip the file (reported once), as if it were empty.
		if newer {
			t.cur, t.off = files[idx+1], 0
		}
		if t.refused == t.cur {
			return 0, 0, false, nil
		}
		t.refused = t.cur
		return 0, 0, newer, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, false, err
	}
	size := st.Size()
	if size < t.off { // truncated under us: start it again
		t.off = 0
	}
	if size == t.off {
		if newer {
			t.cur, t.off = files[idx+1], 0
			t.partialSince = time.Time{}
			return 0, 0, true, nil
		}
		return 0, 0, false, t.maybeCheckpoint(final)
	}
	if want := int(min(size-t.off, readChunk)); cap(t.buf) < want {
		t.buf = make([]byte, want)
	}
	buf := t.buf[:min(size-t.off, readChunk)]
	n, err := f.ReadAt(buf, t.off)
	if err != nil && err != io.EOF {
		return 0, 0, false, err
	}
	buf = buf[:n]
	end := bytes.LastIndexByte(buf, '\n') + 1
	if end == 0 {
		// Only an unfinished line. Wait for its newline unless the file is done with.
		switch {
		case final:
			end = len(buf)
		case newer && t.off+int64(len(buf)) == size:
			if t.partialSince.IsZero() || t.partialSize != size {
				t.partialSince, t.partialSize = time.Now(), size
				return 0, 0, false, nil
			}
			if time.Since(t.partialSince) < partialGrace {
				return 0, 0, false, nil
			}
			end = len(buf)
		default:
			return 0, 0, false, nil
		}
	}
	t.partialSince = time.Time{}
	lines := t.lines[:0]
	pos := t.off
	for rest := buf[:end]; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		pos += int64(len(line))
		raw := bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		ok, ts, f, fok := route(t.typ, raw, &t.tc)
		if !ok {
			if t.skippedSince.IsZero() {
				t.skippedSince = time.Now()
			}
			continue
		}
		if ts == 0 {
			ts = time.Now().UnixMilli()
		}
		lines = append(lines, pending{time: ts, off: pos, msg: raw, f: f, fok: fok})
	}
	t.lines = lines[:0]
	if len(lines) > 0 {
		// Lines skipped after the last kept one are covered by the checkpoint logic.
		if err := t.s.appendLines(t.cur, lines); err != nil {
			return 0, 0, false, err
		}
		last := lines[len(lines)-1].off
		if last == pos {
			t.skippedSince = time.Time{}
		} else if t.skippedSince.IsZero() {
			t.skippedSince = time.Now()
		}
	}
	t.off = pos
	return int64(end), len(lines), false, t.maybeCheckpoint(final)
}

// maybeCheckpoint records the read position when lines were skipped a while ago, so a
// restart does not re-read a long run of lines this group does not keep.
func (t *tailer) maybeCheckpoint(force bool) error {
	if t.skippedSince.IsZero() || (!force && time.Since(t.skippedSince) < checkpointEvery) {
		return nil
	}
	if src, off := t.s.position(); src == t.cur && off == t.off {
		t.skippedSince = time.Time{}
		return nil
	}
	err := t.s.append([]Record{{Src: t.cur, Off: t.off, Checkpoint: true}})
	if err == nil {
		t.skippedSince = time.Time{}
	}
	return err
}
