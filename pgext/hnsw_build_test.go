package pgext_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// A cancel stops a build within a second in every phase it reports: loading tuples, building
// graph and writing pages. The writing phase holds two buffer content locks, under which
// CHECK_FOR_INTERRUPTS does nothing (interrupts are held off), so the build must let go of
// them to take the cancel; borealis.debug_build_delay_us makes the loading and writing phases
// last (a sleep per row, inside the locks while writing, as a slow disk would be). After every
// cancel no index, no temporary graph file and no spill file is left, and the server still
// builds the index.
func TestHNSWBuildCancelInEveryPhase(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	setup := s.Connect("postgres")
	const n, dims = 3000, 32
	loadVectors(t, setup, "docs", dims, hnswtest.Clustered(n, dims, 10, 8), 1)

	for _, tc := range []struct {
		phase   string
		delayUS int
		with    string
	}{
		{"building index: loading tuples", 2000, ""},
		// No delay: a graph slow to build (high m and ef_construction, one goroutine).
		{"building index: building graph", 0, "WITH (m = 48, ef_construction = 800)"},
		{"building index: writing pages", 2000, ""},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			conn := s.Connect("postgres")
			mustExec(t, conn, "SET borealis.build_threads = 1")
			mustExec(t, conn, "SET borealis.debug_build_delay_us = "+strconv.Itoa(tc.delayUS))
			pid := backendPID(t, conn)
			done := runInBackground(conn, "CREATE INDEX cancelled_idx ON docs USING borealis_hnsw (embedding vector_l2_ops) "+tc.with)
			deadline := time.Now().Add(120 * time.Second)
			for {
				var phase string
				var tuples int64
				err := setup.QueryRow(context.Background(),
					"SELECT phase, tuples_done FROM pg_stat_progress_create_index WHERE pid = $1", pid).Scan(&phase, &tuples)
				// tuples_done > 0: the phase is under way (the writing phase starts at 0).
				if err == nil && phase == tc.phase && tuples > 0 {
					t.Logf("progress: %s, %d tuples done", phase, tuples)
					break
				}
				select {
				case e := <-done:
					t.Fatalf("the build ended before reaching %q: %v", tc.phase, e.err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("the build never reported %q (last: %q %d, %v)", tc.phase, phase, tuples, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			from := cancelBackend(t, setup, pid)
			requireCancelled(t, "pg_cancel_backend while "+tc.phase, <-done, setup, pid, from)
			if got := s.QueryValue("postgres", "SELECT count(*) FROM pg_class WHERE relname = 'cancelled_idx'"); got != "0" {
				t.Fatalf("a cancelled build left an index behind")
			}
			if got := s.QueryValue("postgres",
				"SELECT count(*) FROM pg_ls_dir('pgsql_tmp_borealis_graph', true, false) f WHERE f LIKE '%.tmp%'"); got != "0" {
				t.Fatalf("a cancelled build left %s temporary graph files", got)
			}
			if got := s.QueryValue("postgres", "SELECT count(*) FROM pg_ls_dir('base/pgsql_tmp', true, false)"); got != "0" {
				t.Fatalf("a cancelled build left %s temporary (spill) files", got)
			}
		})
	}

	mustExec(t, setup, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_l2_ops)")
	requireChecked(t, s, "docs_idx")
	if got := s.QueryValue("postgres", "SELECT count(*) FROM pg_ls_dir('pgsql_tmp_borealis_graph', true, false) f WHERE f LIKE '%.graph'"); got != "1" {
		t.Fatalf("want the built index's graph file, found %s", got)
	}
}
