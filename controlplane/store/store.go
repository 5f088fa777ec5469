package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/borealisdb/borealis/internal/safefile"
)

var (
	bucketClusters = []byte("clusters")
	bucketEvents   = []byte("events")
)

// ErrNotFound is returned for a cluster that is not in the store.
var ErrNotFound = errors.New("not found")

// Store is the open state file.
type Store struct {
	db *bolt.DB
	j  *journal // journal.go
}

// Open opens (creating if needed) the state file at path. It fails after a few seconds when
// another control plane holds the file.
func Open(path string) (*Store, error) {
	// The state file is the control plane's: its directory must be private to the control
	// plane's user and the file a regular file of that user's, never a planted link.
	if err := safefile.CheckDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if f, err := safefile.Open(path); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("state file: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 3 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state file %s is locked by another control plane (stop it, or use another --home)", path)
		}
		return nil, fmt.Errorf("opening state file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketClusters, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising state file %s: %w", path, err)
	}
	j, err := openJournal(path+".journal", db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, j: j}
	go s.runFlusher()
	return s, nil
}

// Close copies what the record journal holds into the file and releases both.
func (s *Store) Close() error {
	s.j.close()
	return s.db.Close()
}

// PutCluster creates or replaces a cluster definition.
func (s *Store) PutCluster(c Cluster) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClusters).Put([]byte(c.Name), data)
	})
}

// CreateCluster stores c only if no cluster of that name exists.
func (s *Store) CreateCluster(c Cluster) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketClusters)
		if b.Get([]byte(c.Name)) != nil {
			return fmt.Errorf("cluster %q already exists", c.Name)
		}
		if !paramGroupExists(tx, c.ParameterGroup) {
			return fmt.Errorf("parameter group %q: %w (create it with `borealis parameter-group create`)", c.ParameterGroup, ErrNotFound)
		}
		return b.Put([]byte(c.Name), data)
	})
}

// Cluster returns one cluster definition, or ErrNotFound.
func (s *Store) Cluster(name string) (Cluster, error) {
	var c Cluster
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketClusters).Get([]byte(name))
		if data == nil {
			return fmt.Errorf("cluster %q: %w", name, ErrNotFound)
		}
		return json.Unmarshal(data, &c)
	})
	return c, err
}

// Clusters returns every cluster definition, by name.
func (s *Store) Clusters() ([]Cluster, error) {
	var out []Cluster
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClusters).ForEach(func(k, v []byte) error {
			var c Cluster
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("cluster record %q: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// DeleteCluster removes a cluster definition (its events stay).
func (s *Store) DeleteCluster(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClusters).Delete([]byte(name))
	})
}

// AppendEvent adds e to the log, assigning its sequence number (and time, if zero).
func (s *Store) AppendEvent(e Event) (Event, error) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], seq)
		return b.Put(key[:], data)
	})
	return e, err
}

// Events returns the log in order, only cluster's when cluster is not empty, at most limit
// of the newest when limit > 0.
func (s *Store) Events(cluster string, limit int) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event record %x: %w", k, err)
			}
			if cluster != "" && e.Cluster != cluster {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}
