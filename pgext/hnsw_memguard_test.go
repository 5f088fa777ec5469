package pgext_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// A Go out-of-memory cannot be recovered (the runtime exits, the backend crashes and the node
// restarts), so the engine refuses allocations past borealis.engine_memory_limit instead; a
// panic, in the calling goroutine or another, comes back as an error too. Either way the
// client gets an ERROR, the backend lives on (same pid) and the server is not restarted.

// wantError runs sql on conn and checks it fails with code, its message holding each of want.
func wantError(t *testing.T, conn *pgx.Conn, code, sql string, want ...string) {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Fatalf("%s: want SQLSTATE %s, got %v", sql, code, err)
	}
	text := pgErr.Message + " " + pgErr.Detail + " " + pgErr.Hint
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Fatalf("%s: error lacks %q: %s", sql, w, text)
		}
	}
	t.Logf("%s: %s", sql, text)
}

func TestHNSWEngineOutOfMemoryAndPanicAreErrors(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	vecs := sharedTable(t, s, 3000, 32)
	start := s.QueryValue("postgres", "SELECT pg_postmaster_start_time()")
	c := indexConn(t, s)
	pid := backendPID(t, c)
	requireFound(t, c, vecs, 1)
	t.Logf("Go heap after a query: %d bytes", engineInfo(t, c, "go_heap_bytes"))
	knn := "SELECT id FROM docs ORDER BY embedding <=> '" + vectorText(vecs[7]) + "' LIMIT 10"

	// The budget is the runtime's soft limit too, applied when the setting changes.
	mustExec(t, c, "SET borealis.engine_memory_limit = '48MB'")
	requireFound(t, c, vecs, 2)
	if got := engineInfo(t, c, "go_memory_limit"); got != 48<<20 {
		t.Fatalf("go_memory_limit %d after SET borealis.engine_memory_limit = '48MB'", got)
	}

	// Below what the heap already holds: the scan is refused before it allocates.
	mustExec(t, c, "SET borealis.engine_memory_limit = '16kB'")
	wantError(t, c, "53200", knn, "out of memory in the Borealis engine", "borealis_hnsw scan", "borealis.engine_memory_limit")
	// So are a build's scratch and the connectivity pass.
	wantError(t, c, "53200", "CREATE INDEX docs_idx2 ON docs USING borealis_hnsw (embedding vector_l2_ops)",
		"out of memory in the Borealis engine", "borealis.engine_memory_limit")
	mustExec(t, c, "RESET borealis.engine_memory_limit")
	requireFound(t, c, vecs, 3, 2999)
	mustExec(t, c, "CREATE INDEX docs_idx2 ON docs USING borealis_hnsw (embedding vector_l2_ops)")

	// Panics: in the calling goroutine and in one the engine started.
	for _, where := range []string{"caller", "goroutine"} {
		mustExec(t, c, "SET borealis.debug_panic = "+where)
		wantError(t, c, "XX000", "SELECT borealis.debug_spin(0.01)", "engine panic")
	}
	mustExec(t, c, "RESET borealis.debug_panic")

	if got := backendPID(t, c); got != pid {
		t.Fatalf("backend pid %d, was %d: the backend did not survive", got, pid)
	}
	requireFound(t, c, vecs, 4)
	if got := s.QueryValue("postgres", "SELECT pg_postmaster_start_time()"); got != start {
		t.Fatalf("the server restarted (start time %s, was %s)", got, start)
	}
}
