package logs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record is one stored entry of a stream: a log event, or a checkpoint (no message) that only
// records how far the source has been read.
type Record struct {
	Seq     uint64 `json:"q"`
	Time    int64  `json:"t"` // event time, ms since the epoch (from the node's line)
	Ingest  int64  `json:"i"` // when stored, ms since the epoch
	Message string `json:"m,omitempty"`
	// Src and Off are the source file (its base name) and the byte offset just after the line.
	Src        string `json:"f,omitempty"`
	Off        int64  `json:"o,omitempty"`
	Checkpoint bool   `json:"c,omitempty"`
}

// segmentBytes is where a stream starts a new segment file; retention and the size bound drop
// whole segments.
var segmentBytes int64 = 4 << 20

// stream is one instance's sequence of records in a group: segment files named by the
// sequence number of their first record.
type stream struct {
	name, dir string

	mu          sync.Mutex
	active      *os.File
	activeFirst uint64
	activeSize  int64
	next        uint64 // sequence number of the next record
	last        Record // last record stored (position of the source; its message is not kept)
	lastTime    time.Time
	buf         []byte // encoding buffer, reused across batches
}

func segName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

// segments lists a stream's segment files by first sequence number.
func segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(n, 10, 64); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// openStream opens (creating) a stream and recovers its end: a torn last line left by a crash
// is cut off, so the last complete record is the recorded position.
func openStream(dir, name string) (*stream, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &stream{name: name, dir: dir, next: 1}
	segs, err := segments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return s, s.roll()
	}
	first := segs[len(segs)-1]
	path := filepath.Join(dir, segName(first))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	good := int64(0)
	for off := 0; off < len(data); {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		r, err := decodeRecord(data[off : off+i])
		if err != nil {
			break
		}
		r.Message = ""
		s.last = r
		off += i + 1
		good = int64(off)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if good < int64(len(data)) {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	s.active, s.activeFirst, s.activeSize = f, first, good
	if s.last.Seq > 0 {
		s.next = s.last.Seq + 1
	} else {
		s.next = first
	}
	return s, nil
}

func (s *stream) roll() error {
	if s.active != nil {
		s.active.Close()
	}
	f, err := os.OpenFile(filepath.Join(s.dir, segName(s.next)), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	s.active, s.activeFirst, s.activeSize = f, s.next, 0
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append stores records (numbering them): one write and one fsync per segment they fill.
func (s *stream) append(recs []Record) error {
	return s.commit(len(recs), func(b []byte, i int, seq uint64, now int64) ([]byte, Record) {
		r := recs[i]
		r.Seq = seq
		if r.Ingest == 0 {
			r.Ingest = now
		}
		recs[i] = r
		return appendRecord(b, &r, nil), r
	})
}

// pending is a line a tailer stores; msg points into its read buffer.
type pending struct {
	time, off int64
	msg       []byte
}

// appendLines stores lines read from the source file src, as append does.
func (s *stream) appendLines(src string, lines []pending) error {
	return s.commit(len(lines), func(b []byte, i int, seq uint64, now int64) ([]byte, Record) {
		r := Record{Seq: seq, Time: lines[i].time, Ingest: now, Src: src, Off: lines[i].off}
		return appendRecord(b, &r, lines[i].msg), r
	})
}

// commit writes n records that encode appends (given their sequence number and the ingest
// time), with one write and one fsync per segment they fill: the batch, not the line, pays
// for durability.
func (s *stream) commit(n int, encode func(b []byte, i int, seq uint64, now int64) ([]byte, Record)) error {
	if n == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixMilli()
	buf := s.buf[:0]
	defer func() {
		if cap(buf) <= 4<<20 {
			s.buf = buf[:0] // kept for the next batch; a rare huge one is let go
		}
	}()
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := s.active.Write(buf); err != nil {
			return err
		}
		if err := s.active.Sync(); err != nil {
			return err
		}
		s.activeSize += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	for i := 0; i < n; i++ {
		if s.activeSize+int64(len(buf)) >= segmentBytes {
			if err := flush(); err != nil {
				return err
			}
			if err := s.roll(); err != nil {
				return err
			}
		}
		var r Record
		buf, r = encode(buf, i, s.next, now)
		s.next++
		s.last = r
	}
	if err := flush(); err != nil {
		return err
	}
	s.lastTime = time.Now()
	return nil
}

// position is where the source was read up to, by the last stored record.
func (s *stream) position() (string, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.Src, s.last.Off
}

// read calls fn for each event record with sequence >= from, in order, until fn returns false.
func (s *stream) read(from uint64, fn func(Record) bool) error {
	segs, err := segments(s.dir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	limit := s.activeSize // bytes of the active segment known complete
	active := s.activeFirst
	s.mu.Unlock()
	for i, first := range segs {
		if i+1 < len(segs) && segs[i+1] <= from {
			continue // every record of this segment is below from
		}
		f, err := os.Open(filepath.Join(s.dir, segName(first)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // dropped by retention meanwhile
			}
			return err
		}
		size := limit
		if first != active {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			size = st.Size()
		}
		start := int64(0)
		if from > first {
			start = seekSeq(f, size, from)
		}
		sc := bufio.NewScanner(io.NewSectionReader(f, start, size-start))
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if q, ok := recordSeq(line); ok && q < from {
				continue
			}
			r, err := decodeRecord(line)
			if err != nil {
				break
			}
			if r.Seq < from || r.Checkpoint {
				continue
			}
			if !fn(r) {
				f.Close()
				return nil
			}
		}
		f.Close()
	}
	return nil
}

// seekSeq finds, by bisecting the segment's first size bytes, the start of a line at or
// before the first record numbered from or above (records are in order, one a line), so a
// reader at the end of a 4 MiB segment does not decode it from the start. 0 when unsure.
func seekSeq(f *os.File, size int64, from uint64) int64 {
	const probe = 4 << 10
	lo, hi := int64(0), size
	buf := make([]byte, probe)
	for hi-lo > 2*probe {
		mid := lo + (hi-lo)/2
		n, _ := f.ReadAt(buf[:min(probe, size-mid)], mid)
		nl := bytes.IndexByte(buf[:n], '\n')
		if nl < 0 || mid+int64(nl)+1 >= size {
			return lo // a line longer than a probe: read from what is known
		}
		p := mid + int64(nl) + 1
		m, _ := f.ReadAt(buf[:min(64, size-p)], p)
		q, ok := recordSeq(buf[:m])
		if !ok {
			return lo // not a line this package wrote: read from what is known
		}
		if q < from {
			lo = p
		} else {
			hi = mid
		}
	}
	return lo
}

// bytes is the stream's size on disk, with its segments oldest first.
func (s *stream) usage() (int64, []segInfo) {
	segs, _ := segments(s.dir)
	var total int64
	var out []segInfo
	s.mu.Lock()
	active := s.activeFirst
	s.mu.Unlock()
	for i, first := range segs {
		st, err := os.Stat(filepath.Join(s.dir, segName(first)))
		if err != nil {
			continue
		}
		total += st.Size()
		end := uint64(0)
		if i+1 < len(segs) {
			end = segs[i+1]
		}
		out = append(out, segInfo{s: s, first: first, end: end, size: st.Size(), mtime: st.ModTime(), active: first == active})
	}
	return total, out
}

type segInfo struct {
	s          *stream
	first, end uint64 // records first..end-1 (end 0: open-ended)
	size       int64
	mtime      time.Time
	active     bool
}

func (g segInfo) remove() error { return os.Remove(filepath.Join(g.s.dir, segName(g.first))) }

func (s *stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil {
		s.active.Close()
		s.active = nil
	}
}
