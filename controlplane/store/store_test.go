package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestClustersAndEventsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c := Cluster{Name: "alpha", Port: 6000, ReaderPort: 6001, Status: "available",
		Scaling: Scaling{MinCapacity: 1, MaxCapacity: 8, TimeoutAction: "RollbackCapacityChange"},
		Members: []Member{{ID: "alpha-1", Writer: true, Port: 7000, Created: true}}}
	if err := s.CreateCluster(c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCluster(c); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate create: %v", err)
	}
	for _, typ := range []string{"a", "b", "c"} {
		if _, err := s.AppendEvent(Event{Cluster: "alpha", Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendEvent(Event{Cluster: "beta", Type: "d"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Cluster("alpha")
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 6000 || len(got.Members) != 1 || !got.Members[0].Writer || got.Scaling.MaxCapacity != 8 {
		t.Fatalf("reopened cluster differs: %+v", got)
	}
	all, _ := s.Events("", 0)
	if len(all) != 4 || all[0].Type != "a" || all[3].Type != "d" || all[0].Seq >= all[3].Seq {
		t.Fatalf("events out of order: %+v", all)
	}
	alpha, _ := s.Events("alpha", 2)
	if len(alpha) != 2 || alpha[0].Type != "b" || alpha[1].Type != "c" {
		t.Fatalf("filtered newest 2: %+v", alpha)
	}
	if err := s.DeleteCluster("alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cluster("alpha"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted cluster: %v", err)
	}
	if list, _ := s.Clusters(); len(list) != 0 {
		t.Fatalf("list after delete: %+v", list)
	}
}

func TestSecondOpenIsRefusedWithAHint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "locked by another control plane") {
		t.Fatalf("second open: %v", err)
	}
}
