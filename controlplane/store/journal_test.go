package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// putRaw writes c into the bbolt file as it is, as if the journal's copy had never landed.
func putRaw(t *testing.T, s *Store, c Cluster) {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(c)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClusters).Put([]byte(c.Name), data) }); err != nil {
		t.Fatal(err)
	}
}

func journalCluster(name string) Cluster {
	return Cluster{Name: name, CreatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Status: "available",
		Members: []Member{{ID: name + "-1", Writer: true, Created: true}, {ID: name + "-2", Created: true}}}
}

func fencedCopy(c Cluster, rev uint64) Cluster {
	c.Rev = rev
	c.Members = []Member{{ID: c.Name + "-1", Fenced: true, Status: "fenced", Created: true}, {ID: c.Name + "-2", Writer: true, Created: true}}
	return c
}

func TestJournalRecordSurvivesLostStateWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, gone, again := journalCluster("a"), journalCluster("gone"), journalCluster("again")
	for _, c := range []Cluster{a, gone, again} {
		if err := s.CreateCluster(c); err != nil {
			t.Fatal(err)
		}
	}
	// Many revisions: the journal wraps around (256 blocks) more than once.
	for rev := uint64(1); rev <= 300; rev++ {
		if err := s.PutClusterDurable(fencedCopy(a, rev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutClusterDurable(fencedCopy(gone, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutClusterDurable(fencedCopy(again, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Cluster("a")
	if err != nil || got.Rev != 300 || !got.Members[0].Fenced {
		t.Fatalf("state file after the copies: rev %d fenced %v (%v)", got.Rev, got.Members[0].Fenced, err)
	}
	// The machine stopped before the state file's copies reached the disk: it holds the
	// records from before; "gone" was deleted and "again" created anew under the same name.
	putRaw(t, s, a)
	if err := s.DeleteCluster("gone"); err != nil {
		t.Fatal(err)
	}
	again2 := journalCluster("again")
	again2.CreatedAt = again2.CreatedAt.Add(time.Hour)
	putRaw(t, s, again2)
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err = s.Cluster("a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev != 300 || !got.Members[0].Fenced || got.Members[0].Writer || !got.Members[1].Writer {
		t.Fatalf("after reopening, the journal's newest record must be back: %+v", got)
	}
	if _, err := s.Cluster("gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted cluster came back from the journal: %v", err)
	}
	if got, _ := s.Cluster("again"); got.Rev != 0 || got.Members[0].Fenced {
		t.Fatalf("a cluster created anew under the same name got an old incarnation's record: %+v", got)
	}
	// An older journaled revision never replaces a newer stored one.
	newer := fencedCopy(a, 900)
	newer.Status = "newer"
	putRaw(t, s, newer)
	if err := s.PutClusterDurable(fencedCopy(a, 700)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Cluster("a"); got.Status != "newer" || got.Rev != 900 {
		t.Fatalf("revision 700 replaced 900: %+v", got)
	}
}

func TestJournalTornEntryIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a := journalCluster("a")
	if err := s.CreateCluster(a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutClusterDurable(fencedCopy(a, 1)); err != nil {
		t.Fatal(err)
	}
	putRaw(t, s, a)
	s.Close()
	// Damage the entry's payload: its checksum no longer matches, so it is not applied.
	f, err := os.OpenFile(path+".journal", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XX"), journalHdr+5); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.Cluster("a"); got.Members[0].Fenced || got.Rev != 0 {
		t.Fatalf("a torn journal entry was applied: %+v", got)
	}
	if st, err := os.Stat(path + ".journal"); err != nil || st.Size() != journalSize {
		t.Fatalf("journal size: %v %v", st, err)
	}
}
