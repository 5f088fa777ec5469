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
	"unsafe"
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
	// durable is the last record known on disk (fsynced); records after it are written (in
	// the page cache, so they survive a kill -9 of the control plane) but not yet synced.
	durable  uint64
	dirty    bool      // the active segment has writes not yet fsynced
	syncedAt time.Time // last fsync of the active segment
	buf      []byte    // encoding buffer, reused across batches (when recent is off)

	// recent keeps the last batches stored, as written, for the exporter (recentMax > 0 when
	// export is on): records it sends on time come from memory, not from re-reading and
	// decoding the segment. Each batch's buffer is the one written, never changed after.
	recent      []*memBatch
	recentBytes int
	recentMax   int
	spare       []*memBatch // large batches recent let go, for the next ones
	refs        []recentRef // withRecent's, reused
}

// bigBatch is the size from which a batch's buffer comes from spare: a fresh large buffer
// is zeroed by the runtime and given back to the OS by the scavenger when let go, which cost
// more than the records in it.
const bigBatch = 64 << 10

// memBatch is records first, first+1, ... as one write stored them.
type memBatch struct {
	first uint64
	buf   []byte
	recs  []memRec
}

// memRec is one record of a memBatch: its node line (line.n < 0: a checkpoint) and the
// line's fields as the tailer scanned them.
type memRec struct {
	line         span
	time, ingest int64
	f            lineFields
	fok          bool
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
	// What a previous run wrote may still be only in the page cache (it was killed between
	// its write and its sync): make it durable before anything is exported from it.
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	s.durable, s.syncedAt = s.next-1, time.Now()
	return s, nil
}

func (s *stream) roll() error {
	if s.active != nil {
		// A finished segment is synced before the next one starts: sync covers only the
		// active segment.
		if err := s.syncLocked(); err != nil {
			return err
		}
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

// syncLocked makes every record written durable (under s.mu).
func (s *stream) syncLocked() error {
	if s.dirty {
		if err := s.active.Sync(); err != nil {
			return err
		}
		s.dirty = false
	}
	s.durable, s.syncedAt = s.next-1, time.Now()
	return nil
}

// syncIfDue fsyncs the stream when it has records written more than every ago not yet
// synced, and reports whether it synced records. The collector calls it after each poll:
// writes are per batch, fsyncs at most one per stream per interval (see the durability note
// in doc.go).
func (s *stream) syncIfDue(every time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil || s.durable == s.next-1 || time.Since(s.syncedAt) < every {
		return false, nil
	}
	return true, s.syncLocked()
}

// durableSeq is the last record known on disk; the exporter sends nothing after it.
func (s *stream) durableSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// append stores records (numbering them): one write per segment they fill.
func (s *stream) append(recs []Record) error {
	return s.commit(len(recs), 0, func(b []byte, i int, seq uint64, now int64) ([]byte, Record, memRec) {
		r := recs[i]
		r.Seq = seq
		if r.Ingest == 0 {
			r.Ingest = now
		}
		recs[i] = r
		m := memRec{line: noSpan, time: r.Time, ingest: r.Ingest}
		if !r.Checkpoint {
			m.line = notKept // a message written as JSON: the exporter reads it from the segment
		}
		return appendRecord(b, &r, nil), r, m
	})
}

// pending is a line a tailer stores; msg points into its read buffer, f into msg.
type pending struct {
	time, off int64
	msg       []byte
	f         lineFields
	fok       bool
}

// appendLines stores lines read from the source file src, as append does.
func (s *stream) appendLines(src string, lines []pending) error {
	size := 0
	for i := range lines {
		size += len(lines[i].msg) + 80 + len(src)
	}
	return s.commit(len(lines), size, func(b []byte, i int, seq uint64, now int64) ([]byte, Record, memRec) {
		l := &lines[i]
		r := Record{Seq: seq, Time: l.time, Ingest: now, Src: src, Off: l.off}
		b = appendRecord(b, &r, nil)
		b[len(b)-1] = '\t'
		m := memRec{line: span{off: int32(len(b)), n: int32(len(l.msg))}, time: l.time, ingest: now, f: l.f, fok: l.fok}
		return append(append(b, l.msg...), '\n'), r, m
	})
}

// commit writes n records that encode appends (given their sequence number and the ingest
// time), with one write per segment they fill; syncIfDue makes them durable. size is a guess
// of the bytes, for the buffer.
func (s *stream) commit(n, size int, encode func(b []byte, i int, seq uint64, now int64) ([]byte, Record, memRec)) error {
	if n == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixMilli()
	keep := s.recentMax > 0
	var buf []byte
	if !keep {
		buf = s.buf[:0]
		defer func() {
			if cap(buf) <= 4<<20 {
				s.buf = buf[:0] // kept for the next batch; a rare huge one is let go
			}
		}()
	}
	var batch *memBatch
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := s.active.Write(buf); err != nil {
			s.dropRecent()
			return err
		}
		if !s.dirty {
			// The interval counts from the first unsynced write, not from the last sync of
			// an idle stream.
			s.dirty, s.syncedAt = true, time.Now()
		}
		s.activeSize += int64(len(buf))
		if keep {
			batch.buf = buf
			s.keepRecent(batch)
			batch, buf = nil, nil // the next record, if any, starts another
		} else {
			buf = buf[:0]
		}
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
		if keep && batch == nil {
			batch = s.newBatch(size, n-i)
			batch.first, buf = s.next, batch.buf
		}
		var r Record
		var m memRec
		buf, r, m = encode(buf, i, s.next, now)
		if keep {
			batch.recs = append(batch.recs, m)
		}
		s.next++
		s.last = r
	}
	if err := flush(); err != nil {
		return err
	}
	s.lastTime = time.Now()
	return nil
}

// notKept marks a record recent does not hold: its batch is not kept.
var notKept = span{n: -2}

// keepRecent adds a stored batch to recent, dropping the oldest past recentMax.
func (s *stream) keepRecent(b *memBatch) {
	if len(b.recs) == 0 {
		return
	}
	for i := range b.recs {
		if b.recs[i].line == notKept {
			s.dropRecent()
			return
		}
	}
	if n := len(s.recent); n > 0 {
		if last := s.recent[n-1]; last.first+uint64(len(last.recs)) != b.first {
			s.dropRecent() // not contiguous: start again from this batch
		}
	}
	s.recent = append(s.recent, b)
	s.recentBytes += cap(b.buf) + cap(b.recs)*int(unsafe.Sizeof(memRec{}))
	for len(s.recent) > 1 && s.recentBytes > s.recentMax {
		s.dropOldestLocked()
	}
}

func (s *stream) dropOldestLocked() {
	old := s.recent[0]
	s.recentBytes -= cap(old.buf) + cap(old.recs)*int(unsafe.Sizeof(memRec{}))
	s.recent[0] = nil
	s.recent = s.recent[1:]
	if cap(old.buf) < bigBatch {
		return
	}
	// No one else holds it: the exporter reads recent only under s.mu (withRecent).
	old.buf, old.recs = old.buf[:0], old.recs[:0]
	if len(s.spare) < maxSpare {
		s.spare = append(s.spare, old)
		return
	}
	// Full: keep the larger buffers, which fit any batch.
	small := 0
	for i, b := range s.spare {
		if cap(b.buf) < cap(s.spare[small].buf) {
			small = i
		}
	}
	if cap(old.buf) > cap(s.spare[small].buf) {
		s.spare[small] = old
	}
}

// maxSpare bounds the batches kept for reuse: a stream's exporter on time holds two or three
// batches at once (one being filled, one or two being sent).
const maxSpare = 8

// exportedUpTo lets recent forget the batches the exporter has sent (every record below
// next): memory holds only what is still to send, so its bound is how far the exporter may
// fall behind, and a stream on time keeps little.
func (s *stream) exportedUpTo(next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.recent) > 0 && s.recent[0].first+uint64(len(s.recent[0].recs)) <= next {
		s.dropOldestLocked()
	}
}

// newBatch is a batch for about size bytes of n records (under s.mu): a spare one if one is
// large enough, else a new one whose buffer is a power of two from 64 KiB (so that the next
// batches, of about the same size, fit the spares it becomes). Reusing them matters: a fresh
// large buffer is zeroed by the runtime, and given back to the OS by the scavenger once let
// go (madvise), which cost more than the records in it.
func (s *stream) newBatch(size, n int) *memBatch {
	size = min(size, int(segmentBytes)) + 256
	if size < bigBatch {
		return &memBatch{buf: make([]byte, 0, size), recs: make([]memRec, 0, n)}
	}
	best := -1
	for i, b := range s.spare {
		if cap(b.buf) >= size && (best < 0 || cap(b.buf) < cap(s.spare[best].buf)) {
			best = i
		}
	}
	if best >= 0 {
		b := s.spare[best]
		s.spare[best] = s.spare[len(s.spare)-1]
		s.spare = s.spare[:len(s.spare)-1]
		if cap(b.recs) < n {
			b.recs = make([]memRec, 0, n+n/4)
		}
		return b
	}
	c := bigBatch
	for c < size {
		c *= 2
	}
	return &memBatch{buf: make([]byte, 0, c), recs: make([]memRec, 0, n+n/4)}
}

func (s *stream) dropRecent() {
	s.recent, s.recentBytes, s.spare = nil, 0, nil
}

// keepRecentUpTo turns the memory of recent batches on (max > 0) or off.
func (s *stream) keepRecentUpTo(max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recentMax = max
	if max == 0 {
		s.dropRecent()
	}
}

// recentRef is one record of a memBatch.
type recentRef struct {
	b *memBatch
	i int
}

func (r recentRef) seq() uint64      { return r.b.first + uint64(r.i) }
func (r recentRef) rec() *memRec     { return &r.b.recs[r.i] }
func (r recentRef) line() []byte     { return r.rec().line.in(r.b.buf) }
func (r recentRef) checkpoint() bool { return r.rec().line.n < 0 }

// withRecent calls fn, under the stream's lock, with the records numbered from on (up to
// max events, and the checkpoints between them) when memory holds record from, and reports
// whether it did (if not, the caller reads the segments). The records' bytes are valid only
// during fn: their buffers are reused once let go.
func (s *stream) withRecent(from uint64, max int, fn func([]recentRef)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, ok := s.recentFromLocked(from, s.durable, max, s.refs[:0])
	if ok {
		fn(refs)
	}
	clear(refs)
	s.refs = refs[:0]
	return ok
}

// recentFromLocked is withRecent's list: records from..upTo.
func (s *stream) recentFromLocked(from, upTo uint64, max int, out []recentRef) ([]recentRef, bool) {
	if from > upTo {
		return out, true
	}
	if len(s.recent) == 0 || from < s.recent[0].first {
		return out, false
	}
	events := 0
	for _, b := range s.recent {
		end := b.first + uint64(len(b.recs))
		if end <= from {
			continue
		}
		for i := int(max64(from, b.first) - b.first); i < len(b.recs); i++ {
			if events == max || b.first+uint64(i) > upTo {
				return out, true
			}
			out = append(out, recentRef{b, i})
			if b.recs[i].line.n >= 0 {
				events++
			}
		}
	}
	return out, true
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
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
		_ = s.syncLocked() // an error here is the disk's: the next open re-reads from the last good record
		s.active.Close()
		s.active = nil
	}
}
