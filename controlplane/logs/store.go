package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	last        Record // last record stored (position of the source)
	lastTime    time.Time
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
		var r Record
		if json.Unmarshal(data[off:off+i], &r) != nil {
			break
		}
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
	if len(recs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixMilli()
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		if _, err := s.active.Write(buf.Bytes()); err != nil {
			return err
		}
		if err := s.active.Sync(); err != nil {
			return err
		}
		s.activeSize += int64(buf.Len())
		buf.Reset()
		return nil
	}
	for i := range recs {
		if s.activeSize+int64(buf.Len()) >= segmentBytes {
			if err := flush(); err != nil {
				return err
			}
			if err := s.roll(); err != nil {
				return err
			}
		}
		recs[i].Seq = s.next
		s.next++
		if recs[i].Ingest == 0 {
			recs[i].Ingest = now
		}
		data, err := json.Marshal(recs[i])
		if err != nil {
			return err
		}
		buf.Write(data)
		buf.WriteByte('\n')
		s.last = recs[i]
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
		var rd io.Reader = f
		if first == active {
			rd = io.LimitReader(f, limit)
		}
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var r Record
			if json.Unmarshal(sc.Bytes(), &r) != nil {
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
