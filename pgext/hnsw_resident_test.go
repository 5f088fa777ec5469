package pgext_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// The prewarm worker stays alive and keeps every graph file mapped (src/hnswresident.c), so
// the node's graph pages count once, in that worker, and a new connection adds only its
// private memory. It follows a rebuilt file, lets go of a removed one, and survives a file
// truncated under its mapping (which, touched naively, would be SIGBUS and a node restart).

// prewarmPID is the pid of the long-lived borealis prewarm worker.
func prewarmPID(t *testing.T, s *pgtest.Server) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := s.QueryValue("postgres", "SELECT coalesce(min(pid), 0) FROM pg_stat_activity WHERE backend_type = 'borealis prewarm'")
		if pid, _ := strconv.Atoi(v); pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatal("no borealis prewarm worker in pg_stat_activity within 60 s of start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond every 100 ms for up to 30 s (the worker passes once a second).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHNSWPrewarmWorkerKeepsGraphFilesMapped(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	keeper := prewarmPID(t, s)
	started := s.QueryValue("postgres", "SELECT pg_postmaster_start_time()")
	vecs := sharedTable(t, s, 4000, 32)
	path := onlyGraphFile(t, s)

	// Everything the build wrote is mapped by the worker: at least what a searching backend maps.
	c := indexConn(t, s)
	for q := range 20 {
		topK(t, c, "docs", "<=>", vecs[4000+q%20], 10)
	}
	backendRss, _, ok := smapsOf(t, backendPID(t, c), path)
	if !ok || backendRss == 0 {
		t.Fatalf("the searching backend does not map %s", path)
	}
	waitFor(t, "the prewarm worker maps the new graph file", func() bool {
		rss, _, ok := smapsOf(t, keeper, path)
		return ok && rss >= backendRss
	})
	rss, pss, _ := smapsOf(t, keeper, path)
	t.Logf("prewarm worker: %s Rss %d kB, Pss %d kB; searching backend Rss %d kB", path, rss, pss, backendRss)

	// A rebuilt file replaces the old one in the worker; the removed one is let go.
	s.Exec("postgres", "REINDEX INDEX docs_idx")
	next := onlyGraphFile(t, s)
	waitFor(t, "the worker follows REINDEX", func() bool {
		rss, _, ok := smapsOf(t, keeper, next)
		return ok && rss > 0 && !mapsFile(t, keeper, path+" (deleted)")
	})

	// A file truncated under the worker's mapping: no SIGBUS (the node would restart), the
	// worker maps the file at its new size, and the next query rebuilds the graph.
	if err := os.Truncate(next, 10000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker remaps the truncated file", func() bool {
		rss, _, ok := smapsOf(t, keeper, next)
		return ok && rss <= 12
	})
	requireFound(t, indexConn(t, s), vecs, 3, 3999)
	final := onlyGraphFile(t, s)
	waitFor(t, "the worker maps the rebuilt file", func() bool {
		rss, _, ok := smapsOf(t, keeper, final)
		return ok && rss > 12
	})
	if pid := prewarmPID(t, s); pid != keeper {
		t.Fatalf("prewarm worker pid %d, was %d", pid, keeper)
	}
	if got := s.QueryValue("postgres", "SELECT pg_postmaster_start_time()"); got != started {
		t.Fatalf("the server restarted (start time %s, was %s)", got, started)
	}

	// DROP INDEX: the worker maps no graph file (a deleted one would hold its blocks).
	s.Exec("postgres", "DROP INDEX docs_idx")
	waitFor(t, "the worker lets go of the dropped index's file", func() bool {
		return !mapsFile(t, keeper, graphDirName)
	})
}
