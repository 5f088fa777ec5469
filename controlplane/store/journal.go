package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// The record journal: a fast durable path for the cluster records a failover must not lose
// (the old writer fenced, a reader promoted), beside the bbolt file.
//
// Why: a bbolt update is two fdatasyncs of a file that grows (the event log lives in it), and
// a sync that allocates blocks commits the filesystem's journal (ext4's jbd2), which in the
// default data=ordered mode first writes every other file's dirty data in that transaction. On
// a machine where builds and tests write, one such update took 0.6-2.2 s in the failover bench,
// inside the downtime. The journal is a file preallocated (written with zeros and synced) once:
// an entry is whole 4 KiB blocks written over blocks that already exist, then fdatasync, which
// then has no metadata to commit (mtime is not data) and waits only for its own blocks and the
// device's cache flush. The bbolt file gets the same record from a goroutine afterwards.
//
// Records carry a revision (Cluster.Rev, bumped by each writer of the record under its lock):
// the bbolt copy is only ever replaced by a newer one, and Open applies an entry newer than the
// bbolt copy of the same cluster (a control plane, or the machine, that stopped between the two
// writes). A deleted cluster is not brought back (entries only update clusters the file has).
// Entries begin at the start again once the bbolt copies of everything written are in place.

const (
	journalSize  = 1 << 20
	journalBlock = 4096
	journalMagic = 0x424a524e // "BJRN"
	journalHdr   = 12         // magic, length, CRC-32C of the payload
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type journal struct {
	mu  sync.Mutex // serialises entries and the wrap
	f   *os.File
	off int64

	// pending are the records waiting for their bbolt copy, newest per cluster; flushing is
	// closed when the flusher has nothing more to do.
	pmu     sync.Mutex
	pending map[string]Cluster
	wake    chan struct{}
	idle    *sync.Cond
	busy    bool
	closed  bool
	stopped chan struct{}
	err     error // last bbolt copy that failed (reported by Flush)
}

// openJournal opens (creating and preallocating) the journal beside the state file and applies
// its entries newer than db's records.
func openJournal(path string, db *bolt.DB) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("record journal %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("record journal %s: not a regular file (%v)", path, err)
	}
	if st.Size() < journalSize {
		// Written, not only sized: blocks of a sparse file would be allocated by each entry.
		zero := make([]byte, journalSize-st.Size())
		if _, err := f.WriteAt(zero, st.Size()); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("preallocating record journal %s: %w", path, err)
		}
	}
	j := &journal{f: f, pending: map[string]Cluster{}, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	j.idle = sync.NewCond(&j.pmu)
	if err := j.replay(db); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// replay applies the entries newer than db's copies of their clusters.
func (j *journal) replay(db *bolt.DB) error {
	buf := make([]byte, journalSize)
	if _, err := j.f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading record journal: %w", err)
	}
	newest := map[string]Cluster{}
	for off := 0; off+journalHdr <= len(buf); {
		c, n, ok := decodeEntry(buf[off:])
		if !ok {
			off += journalBlock
			continue
		}
		if prev, seen := newest[c.Name]; !seen || c.Rev > prev.Rev {
			newest[c.Name] = c
		}
		off += n
	}
	if len(newest) == 0 {
		return nil
	}
	return db.Update(func(tx *bolt.Tx) error {
		for _, c := range newest {
			if err := putIfNewer(tx, c, false); err != nil {
				return err
			}
		}
		return nil
	})
}

func decodeEntry(b []byte) (Cluster, int, bool) {
	var c Cluster
	if len(b) < journalHdr || binary.LittleEndian.Uint32(b) != journalMagic {
		return c, 0, false
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if n <= 0 || journalHdr+n > len(b) {
		return c, 0, false
	}
	payload := b[journalHdr : journalHdr+n]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[8:]) {
		return c, 0, false
	}
	if json.Unmarshal(payload, &c) != nil || c.Name == "" {
		return c, 0, false
	}
	return c, roundBlock(journalHdr + n), true
}

func roundBlock(n int) int { return (n + journalBlock - 1) / journalBlock * journalBlock }

// putIfNewer stores c unless the file holds the same or a newer revision of it; with
// create false, a cluster the file does not hold is left out (it was deleted).
func putIfNewer(tx *bolt.Tx, c Cluster, create bool) error {
	b := tx.Bucket(bucketClusters)
	if old := b.Get([]byte(c.Name)); old != nil {
		var prev struct {
			Rev       uint64    `json:"rev"`
			CreatedAt time.Time `json:"created_at"`
		}
		// Another cluster of the same name (deleted and created again) is never replaced.
		if json.Unmarshal(old, &prev) == nil && (prev.Rev >= c.Rev || !prev.CreatedAt.Equal(c.CreatedAt)) {
			return nil
		}
	} else if !create {
		return nil
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.Put([]byte(c.Name), data)
}

// write makes c durable in the journal and queues its bbolt copy.
func (s *Store) writeJournal(c Cluster) error {
	j := s.j
	payload, err := json.Marshal(c)
	if err != nil {
		return err
	}
	n := roundBlock(journalHdr + len(payload))
	if n > journalSize/4 {
		return fmt.Errorf("cluster record %s is %d bytes, too large for the record journal", c.Name, len(payload))
	}
	entry := make([]byte, n)
	binary.LittleEndian.PutUint32(entry, journalMagic)
	binary.LittleEndian.PutUint32(entry[4:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(entry[8:], crc32.Checksum(payload, crcTable))
	copy(entry[journalHdr:], payload)

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.off+int64(n) > journalSize {
		// Everything written so far must be in the bbolt file before it is written over.
		if err := s.flushJournal(); err != nil {
			return err
		}
		j.off = 0
	}
	if _, err := j.f.WriteAt(entry, j.off); err != nil {
		return fmt.Errorf("writing the record journal: %w", err)
	}
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("syncing the record journal: %w", err)
	}
	j.off += int64(n)

	j.pmu.Lock()
	if prev, ok := j.pending[c.Name]; !ok || prev.Rev < c.Rev {
		j.pending[c.Name] = c
	}
	j.busy = true
	j.pmu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// runFlusher copies journaled records into the bbolt file, newest per cluster.
func (s *Store) runFlusher() {
	j := s.j
	defer close(j.stopped)
	for {
		j.pmu.Lock()
		for len(j.pending) == 0 && !j.closed {
			j.busy = false
			j.idle.Broadcast()
			j.pmu.Unlock()
			<-j.wake
			j.pmu.Lock()
		}
		if len(j.pending) == 0 && j.closed {
			j.busy = false
			j.idle.Broadcast()
			j.pmu.Unlock()
			return
		}
		batch := j.pending
		j.pending = map[string]Cluster{}
		j.pmu.Unlock()
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, c := range batch {
				if err := putIfNewer(tx, c, false); err != nil {
					return err
				}
			}
			return nil
		})
		j.pmu.Lock()
		j.err = err
		j.pmu.Unlock()
	}
}

// flushJournal waits until every journaled record has its bbolt copy.
func (s *Store) flushJournal() error {
	j := s.j
	j.pmu.Lock()
	defer j.pmu.Unlock()
	for j.busy || len(j.pending) > 0 {
		select {
		case j.wake <- struct{}{}:
		default:
		}
		j.idle.Wait()
	}
	return j.err
}

// PutClusterDurable makes c durable through the record journal, which waits on no other
// file's I/O, and copies it into the state file afterwards. c.Rev must be newer than any
// revision of c stored before (the record's owner bumps it under its lock); an older one is
// never stored over a newer.
func (s *Store) PutClusterDurable(c Cluster) error {
	return s.writeJournal(c)
}

// Flush waits until every record written by PutClusterDurable is in the state file.
func (s *Store) Flush() error {
	return s.flushJournal()
}

func (j *journal) close() {
	j.pmu.Lock()
	j.closed = true
	j.pmu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-j.stopped
	j.f.Close()
}
