package pgext_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/hnsw/hnswtest"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// The shared graph: one file per index per node, mapped by every backend (not copied into
// each), derived from the pages and never trusted when stale, torn or carried over; REINDEX,
// TRUNCATE and DROP free it; an unwritable directory falls back to a private copy.

const graphDirName = "pgsql_tmp_borealis_graph"

// graphFiles lists the graph files of s (the default directory), temporary ones excluded.
func graphFiles(t *testing.T, s *pgtest.Server) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.DataDir, graphDirName, "*.graph"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func onlyGraphFile(t *testing.T, s *pgtest.Server) string {
	t.Helper()
	files := graphFiles(t, s)
	if len(files) != 1 {
		t.Fatalf("want one graph file in %s, found %v", filepath.Join(s.DataDir, graphDirName), files)
	}
	return files[0]
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// smapsOf returns the Rss and Pss (kB) of pid's mapping of path; ok is false when pid does not map it.
func smapsOf(t *testing.T, pid int, path string) (rss, pss int, ok bool) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			if in {
				ok = true
			}
			continue
		}
		if !in || len(fields) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Rss:":
			rss += n
		case "Pss:":
			pss += n
		}
	}
	return rss, pss, ok
}

func engineInfo(t *testing.T, conn *pgx.Conn, key string) int64 {
	t.Helper()
	var v int64
	if err := conn.QueryRow(context.Background(), "SELECT (borealis_engine_info()->>$1)::bigint", key).Scan(&v); err != nil {
		t.Fatalf("borealis_engine_info()->>%s: %v", key, err)
	}
	return v
}

// sharedTable makes docs (n × dims, cosine) with a borealis_hnsw index and returns the vectors.
func sharedTable(t *testing.T, s *pgtest.Server, n, dims int) [][]float32 {
	t.Helper()
	conn := s.Connect("postgres")
	vecs := hnswtest.Clustered(n+20, dims, 16, 11)
	loadVectors(t, conn, "docs", dims, vecs[:n], 0)
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_cosine_ops)")
	return vecs
}

func indexConn(t *testing.T, s *pgtest.Server) *pgx.Conn {
	t.Helper()
	c := s.Connect("postgres")
	mustExec(t, c, "SET enable_seqscan = off")
	mustExec(t, c, "SET borealis.ef_search = 80")
	return c
}

// requireFound checks that the index finds each of vecs[ids] as its own nearest neighbour.
func requireFound(t *testing.T, conn *pgx.Conn, vecs [][]float32, ids ...int) {
	t.Helper()
	for _, id := range ids {
		got := topK(t, conn, "docs", "<=>", vecs[id], 1)
		if len(got) != 1 || got[0] != id {
			t.Fatalf("nearest neighbour of row %d's own vector: %v", id, got)
		}
	}
}

func TestHNSWSharedGraphAcrossBackends(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	vecs := sharedTable(t, s, 6000, 64)
	conns := []*pgx.Conn{indexConn(t, s), indexConn(t, s), indexConn(t, s)}
	for _, c := range conns {
		for q := 0; q < 30; q++ {
			topK(t, c, "docs", "<=>", vecs[6000+q%20], 10)
		}
		requireFound(t, c, vecs, 5, 500, 5000)
	}
	path := onlyGraphFile(t, s)
	ino := inode(t, path)

	// One file, mapped by all three; the two that did not build it share every page they
	// touched with the one that did, so PSS charges each at most half of what it maps.
	for i, c := range conns {
		pid := backendPID(t, c)
		rss, pss, ok := smapsOf(t, pid, path)
		if !ok {
			t.Fatalf("backend %d (pid %d) does not map %s", i, pid, path)
		}
		t.Logf("backend %d: %s mapped, Rss %d kB, Pss %d kB", i, filepath.Base(path), rss, pss)
		if i > 0 && (rss == 0 || 2*pss > rss+8) {
			t.Fatalf("backend %d: Pss %d kB of Rss %d kB: the mapping's pages are not shared", i, pss, rss)
		}
		if got := engineInfo(t, c, "heap_graphs"); got != 0 {
			t.Fatalf("backend %d holds %d graphs in its Go heap, want 0", i, got)
		}
		if got := engineInfo(t, c, "shared_graph_bytes"); got <= 0 {
			t.Fatalf("backend %d: shared_graph_bytes %d", i, got)
		}
		if heap := engineInfo(t, c, "go_heap_bytes"); heap > 32<<20 {
			t.Fatalf("backend %d: Go heap of %d bytes; the graph should not be in it", i, heap)
		}
	}

	// An insert through one backend is in the shared graph for the others at once: the file
	// was changed in place (same inode), not rebuilt.
	mustExec(t, conns[0], "INSERT INTO docs VALUES (6000, $1::vector)", vectorText(vecs[6000]))
	requireFound(t, conns[1], vecs, 6000)
	requireFound(t, conns[2], vecs, 6000)
	if got := inode(t, onlyGraphFile(t, s)); got != ino {
		t.Fatalf("graph file replaced after an insert (inode %d -> %d); want it changed in place", ino, got)
	}
	// A fresh connection maps the file: it does not rebuild it.
	requireFound(t, indexConn(t, s), vecs, 6000, 17)
	if got := inode(t, onlyGraphFile(t, s)); got != ino {
		t.Fatalf("a new connection rebuilt the graph file (inode %d -> %d)", ino, got)
	}
	// A fresh connection's first INSERT maps the graph (no load under the meta page's lock),
	// and VACUUM changes the graph in place: the file stays, and the other backends keep
	// using it.
	fresh := indexConn(t, s)
	mustExec(t, fresh, "INSERT INTO docs VALUES (6001, $1::vector)", vectorText(vecs[6001]))
	if heap := engineInfo(t, fresh, "go_heap_bytes"); heap > 32<<20 {
		t.Fatalf("first INSERT of a fresh connection: Go heap of %d bytes; the graph was loaded into it", heap)
	}
	mustExec(t, conns[0], "DELETE FROM docs WHERE id = 500")
	mustExec(t, conns[0], "VACUUM docs")
	if got := inode(t, onlyGraphFile(t, s)); got != ino {
		t.Fatalf("graph file replaced by INSERT or VACUUM (inode %d -> %d)", ino, got)
	}
	for _, c := range conns[1:] {
		requireFound(t, c, vecs, 6001, 501)
	}
	requireChecked(t, s, "docs_idx")
}

func stopServer(t *testing.T, s *pgtest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// Header offsets of BhnswGraphHeader (pgext/src/hnsw.h).
const (
	hdrBuildID   = 20
	hdrWriterPID = 128
)

func TestHNSWGraphFileSurvivesRestartButNotDamage(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	vecs := sharedTable(t, s, 3000, 32)
	requireFound(t, indexConn(t, s), vecs, 1, 2999)
	path := onlyGraphFile(t, s)
	ino := inode(t, path)

	// A clean restart keeps the file, and the first query maps it as it is.
	stopServer(t, s)
	s.Restart()
	requireFound(t, indexConn(t, s), vecs, 3, 2000)
	if got := inode(t, onlyGraphFile(t, s)); got != ino {
		t.Fatalf("graph file rebuilt after a clean restart (inode %d -> %d)", ino, got)
	}

	// With the file gone, the prewarm worker builds it at start, before any query.
	stopServer(t, s)
	if err := os.Remove(onlyGraphFile(t, s)); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	deadline := time.Now().Add(60 * time.Second)
	for len(graphFiles(t, s)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("borealis.prewarm did not build the graph within 60 s of start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if log, _ := os.ReadFile(s.LogFile); !strings.Contains(string(log), `borealis prewarm: graph of index "docs_idx" mapped`) {
		t.Fatal("server log does not show the prewarm of docs_idx")
	}
	if got := s.QueryValue("postgres", "SELECT borealis_hnsw_prewarm('docs_idx') > 0"); got != "true" {
		t.Fatalf("borealis_hnsw_prewarm: %s", got)
	}
	ino = inode(t, onlyGraphFile(t, s))
	requireFound(t, indexConn(t, s), vecs, 4, 2001)
	if got := inode(t, onlyGraphFile(t, s)); got != ino {
		t.Fatalf("the first query rebuilt the prewarmed graph (inode %d -> %d)", ino, got)
	}

	damage := graphFileDamages()
	for i, d := range damage {
		stopServer(t, s)
		path := onlyGraphFile(t, s)
		before := inode(t, path)
		if err := d.do(path); err != nil {
			t.Fatal(err)
		}
		s.Restart()
		c := indexConn(t, s)
		requireFound(t, c, vecs, 10+i, 1500+i, 2990-i)
		after := onlyGraphFile(t, s)
		if inode(t, after) == before {
			t.Fatalf("%s graph file was trusted (not rebuilt)", d.name)
		}
		st, _ := os.Stat(after)
		t.Logf("%s file: rebuilt, %d bytes", d.name, st.Size())
	}
	requireChecked(t, s, "docs_idx")
}

// graphFileDamage is one way a graph file can be left untrustworthy: every test that checks a
// damaged file is rebuilt, never trusted, runs the same list.
type graphFileDamage struct {
	name string
	do   func(path string) error
}

func graphFileDamages() []graphFileDamage {
	return []graphFileDamage{
		{"truncated", func(p string) error { return os.Truncate(p, 10000) }},
		{"header byte flipped", func(p string) error { return flipByte(p, hdrBuildID) }},
		{"writer that died", func(p string) error { // as a kill -9 in the middle of an insert leaves it
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], 4194000) // no such process
			_, err = f.WriteAt(b[:], hdrWriterPID)
			return err
		}},
	}
}

func flipByte(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return err
	}
	b[0] ^= 0x5a
	_, err = f.WriteAt(b[:], off)
	return err
}

func mapsFile(t *testing.T, pid int, path string) bool {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(maps), path)
}

func TestHNSWReindexTruncateDropFreeTheGraph(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	vecs := sharedTable(t, s, 2000, 16)
	a, b := indexConn(t, s), indexConn(t, s)
	bpid := backendPID(t, b)
	requireFound(t, a, vecs, 7)
	requireFound(t, b, vecs, 8)
	old := onlyGraphFile(t, s)
	if !mapsFile(t, bpid, old) {
		t.Fatalf("backend %d does not map %s", bpid, old)
	}

	for _, step := range []struct{ sql, what string }{
		{"REINDEX INDEX docs_idx", "REINDEX"},
		{"TRUNCATE docs", "TRUNCATE"},
		{"DROP INDEX docs_idx", "DROP INDEX"},
	} {
		mustExec(t, a, step.sql)
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Fatalf("%s left the old graph file %s (stat: %v)", step.what, old, err)
		}
		mustExec(t, b, "SELECT 1") // takes the invalidation
		if mapsFile(t, bpid, old) {
			t.Fatalf("after %s, backend %d still maps %s", step.what, bpid, old)
		}
		if step.what == "DROP INDEX" {
			if files := graphFiles(t, s); len(files) != 0 {
				t.Fatalf("after DROP INDEX graph files remain: %v", files)
			}
			break
		}
		if step.what == "REINDEX" {
			requireFound(t, b, vecs, 9)
		} else {
			mustExec(t, a, "INSERT INTO docs VALUES (1, $1::vector)", vectorText(vecs[1]))
			requireFound(t, b, vecs, 1)
		}
		old = onlyGraphFile(t, s)
		if !mapsFile(t, bpid, old) {
			t.Fatalf("after %s, backend %d does not map the new graph %s", step.what, bpid, old)
		}
	}
}

func TestHNSWUnwritableGraphDirectoryFallsBackToPrivateCopy(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	vecs := sharedTable(t, s, 2000, 16)
	cfg, err := pgx.ParseConfig(s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message+" / "+n.Hint) }
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	mustExec(t, conn, "SET enable_seqscan = off")
	mustExec(t, conn, "SET borealis.graph_directory = '/proc/borealis-cannot-create-this'")
	requireFound(t, conn, vecs, 3, 1999)
	if len(notices) == 0 || !strings.Contains(notices[0], "could not create the shared graph file") ||
		!strings.Contains(notices[0], "borealis.graph_directory") {
		t.Fatalf("want a warning naming the file and borealis.graph_directory, got %q", notices)
	}
	t.Logf("warning: %s", notices[0])
	// The private copy follows inserts made by another backend (through the change ring).
	other := indexConn(t, s)
	mustExec(t, other, "INSERT INTO docs VALUES (2000, $1::vector)", vectorText(vecs[2000]))
	requireFound(t, conn, vecs, 2000)
	mustExec(t, conn, "INSERT INTO docs VALUES (2001, $1::vector)", vectorText(vecs[2001]))
	requireFound(t, other, vecs, 2001)
	if got := engineInfo(t, conn, "shared_graph_bytes"); got != 0 {
		t.Fatalf("shared_graph_bytes %d for a private copy", got)
	}
	requireChecked(t, s, "docs_idx")
}

func TestHNSWScanEndingInErrorFreesItsIterator(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	vecs := sharedTable(t, s, 1000, 16)
	conn := indexConn(t, s)
	// The division fails on the row found first, in the middle of the index scan.
	_, err := conn.Exec(context.Background(),
		"SELECT id, 1 / (id - $2) FROM docs ORDER BY embedding <=> $1::vector LIMIT 20", vectorText(vecs[42]), 42)
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("want division by zero, got %v", err)
	}
	if n := engineInfo(t, conn, "open_scans"); n != 0 {
		t.Fatalf("%d Go iterators left open after the scan failed", n)
	}
	requireFound(t, conn, vecs, 42)
}
