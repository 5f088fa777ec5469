// Package pgtest starts throwaway PostgreSQL 15 servers for tests: a fresh cluster (a copy of
// one initdb's, template.go) on a free port per call, stopped and removed when the test ends,
// with the server log printed when the test failed. Standbys streaming from a test server, and kill -9, are one call each.
//
// Tests that need the Borealis extension require `make install` first (`make test` does it);
// Start fails with that hint otherwise rather than skipping, because a skipped core path is
// not a passed one.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgproc"
)

// Options tune a test server.
type Options struct {
	// Preload puts borealis in shared_preload_libraries.
	Preload bool
	// Extension creates the borealis extension (and pgvector by CASCADE) in database postgres.
	Extension bool
	// Settings are extra postgresql.conf lines.
	Settings map[string]string
}

// Server is a running test server.
type Server struct {
	*pgproc.Node
	t testing.TB
}

// StartupTimeout bounds initdb plus start-up on a loaded 2-core machine. It only bounds a
// wait for real state (the server ready), so it is generous: at nice 19 beside nice-0 work
// (load 40, one busy loop) initdb and start-up took more than the 90 s it used to be, and
// TestRouter failed before it tested anything.
const StartupTimeout = 5 * time.Minute

// Start initialises and starts a server for the test t.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	root := tempRoot(t)
	settings := map[string]string{
		"wal_level":             "replica",
		"max_wal_senders":       "10",
		"max_replication_slots": "10",
		"shared_buffers":        "128MB",
		"log_min_messages":      "warning",
		"log_line_prefix":       "'%m [%p] '",
	}
	if opts.Preload {
		settings["shared_preload_libraries"] = "'borealis'"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	node, err := pgproc.New(pgproc.Config{DataDir: filepath.Join(root, "primary"), Settings: settings, DieWithParent: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Node: node, t: t}
	ctx, cancel := context.WithTimeout(context.Background(), StartupTimeout)
	defer cancel()
	tmpl, err := templateDataDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.InitFrom(ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	s.start(ctx)
	if opts.Extension {
		s.Exec("postgres", "CREATE EXTENSION borealis CASCADE")
	}
	return s
}

func (s *Server) start(ctx context.Context) {
	s.t.Helper()
	if err := s.Node.Start(ctx); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if s.t.Failed() {
			s.t.Logf("server log %s (last 40 lines):\n%s", s.LogFile, s.LogTail(40))
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Stop(stopCtx)
	})
}

// Restart starts the server again after a Stop or Kill9 (crash recovery runs after Kill9).
func (s *Server) Restart() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartupTimeout)
	defer cancel()
	s.start(ctx)
}

// StartStandby makes a hot standby of s with pg_basebackup and a replication slot, starts it
// and returns it once it accepts connections.
func (s *Server) StartStandby(name string) *Server {
	s.t.Helper()
	node, err := pgproc.New(pgproc.Config{DataDir: filepath.Join(filepath.Dir(s.DataDir), name), DieWithParent: true})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartupTimeout)
	defer cancel()
	if err := pgproc.BaseBackup(ctx, s.Node, node, strings.ReplaceAll(name, "-", "_")); err != nil {
		s.t.Fatal(err)
	}
	standby := &Server{Node: node, t: s.t}
	standby.start(ctx)
	return standby
}

// Connect opens a connection to database db, closed when the test ends.
func (s *Server) Connect(db string) *pgx.Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		s.t.Fatalf("connecting to %s: %v", s.DSN(db), err)
	}
	s.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql in database db on a fresh connection and fails the test on error.
func (s *Server) Exec(db, sql string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		s.t.Fatalf("connecting to %s: %v", s.DSN(db), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// tempRoot makes a directory the server user can use, removed after the test. t.TempDir is
// not used because it is private to the caller, and the server may run as "postgres".
func tempRoot(t testing.TB) string {
	t.Helper()
	root, err := os.MkdirTemp("", "borealis-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := pgproc.PrepareDir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("BOREALIS_KEEP_FAILED") != "" {
			t.Logf("kept %s", root)
			return
		}
		os.RemoveAll(root)
	})
	return root
}

// RequireInstalled fails the test with a clear hint when the extension is not installed in
// the PostgreSQL the harness runs.
func RequireInstalled(t testing.TB) {
	t.Helper()
	pkglib, share := pgConfig(t, "--pkglibdir"), pgConfig(t, "--sharedir")
	for _, f := range []string{
		filepath.Join(pkglib, "borealis.so"),
		filepath.Join(pkglib, "borealis_engine.so"),
		filepath.Join(share, "extension", "borealis.control"),
	} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the Borealis extension is not installed (%v): run `make install` (or `make test`, which does it)", err)
		}
	}
}

// pgConfig asks the server's pg_config for one directory.
func pgConfig(t testing.TB, flag string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(pgproc.BinDir(), "pg_config"), flag).Output()
	if err != nil {
		t.Fatalf("pg_config %s: %v (install postgresql-server-dev-15: scripts/deps.sh)", flag, err)
	}
	return strings.TrimSpace(string(out))
}

// PgConfig is pg_config's answer for flag (e.g. "--pkglibdir").
func PgConfig(t testing.TB, flag string) string { return pgConfig(t, flag) }

// QueryValue runs a one-value query in database db and returns the value as text.
func (s *Server) QueryValue(db, sql string, args ...any) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		s.t.Fatalf("connecting to %s: %v", s.DSN(db), err)
	}
	defer conn.Close(ctx)
	var v any
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	return fmt.Sprint(v)
}
