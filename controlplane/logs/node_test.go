package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestNodeRestartsAndCrash: a real node logs numbered lines, is restarted, is killed with -9
// and recovers, while the collector is closed and reopened in between (its own restart): the
// postgresql group has every line once, in order, across the node's new log files.
func TestNodeRestartsAndCrash(t *testing.T) {
	pgtest.RequireInstalled(t)
	node := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"logging_collector": "on",
		"log_destination": "'stderr,jsonlog'", "log_directory": "'log'", "log_filename": "'postgresql-%Y-%m-%d_%H%M%S.log'",
		"log_min_messages": "log"}})
	home := t.TempDir()
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateCluster(store.Cluster{Name: "real", LogExports: []string{TypePostgreSQL},
		Members: []store.Member{{ID: "real-1", Writer: true, DataDir: node.DataDir}}}); err != nil {
		t.Fatal(err)
	}
	open := func() *Service {
		s, err := New(Options{Home: home, Store: st, Logf: t.Logf, Poll: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		return s
	}
	mark := func(from, to int) {
		node.Exec("postgres", fmt.Sprintf("DO $$ BEGIN FOR i IN %d..%d LOOP RAISE LOG 'restartmark %%', i; END LOOP; END $$", from, to))
	}
	s := open()
	mark(1, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := node.Stop(ctx); err != nil { // a clean restart: the node starts a new file
		t.Fatal(err)
	}
	s.Close()                           // and the collector restarts while the node is down
	time.Sleep(1100 * time.Millisecond) // a new second, so a new file name
	node.Restart()
	s = open()
	mark(201, 400)
	if err := node.Kill9(); err != nil { // a crash: recovery starts another file
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	node.Restart()
	mark(401, 600)
	defer s.Close()

	group := GroupName("real", TypePostgreSQL)
	var got []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := s.Filter(FilterInput{LogGroupName: group, FilterPattern: "restartmark", Limit: 10000})
		if err == nil {
			got = got[:0]
			for _, e := range out.Events {
				var l pgLine
				if json.Unmarshal([]byte(e.Message), &l) != nil {
					t.Fatalf("stored line is not jsonlog: %s", e.Message)
				}
				if l.Message != "" && l.Severity == "LOG" && len(l.Message) > len("restartmark ") && l.Message[:12] == "restartmark " {
					got = append(got, l.Message)
				}
			}
		}
		if len(got) >= 600 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := seq("restartmark", 1, 600)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %d marker lines, want 600 once each in order; first differences: %v", len(got), firstDiff(got, want))
	}
	files, _ := filepath.Glob(filepath.Join(node.DataDir, "log", "*.json"))
	if len(files) < 3 {
		t.Fatalf("the node's restarts should have started new jsonlog files: %v", files)
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("at %d: got %q, want %q", i, g, w)
		}
	}
	return "none"
}
