package ann

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgproc"
)

// target is the server a run measures.
type target struct {
	dsn string
	// postmaster is the server's root process on this machine, or 0 when it is not local
	// (then memory is not measured).
	postmaster int
	stop       func()
}

// startThrowaway initialises and starts a private server for one run, with pgvector and,
// when a borealis access method is requested, the preloaded borealis module.
func startThrowaway(ctx context.Context, cfg *Config, logf func(string, ...any)) (*target, error) {
	root, err := os.MkdirTemp("", "borealis-bench-")
	if err != nil {
		return nil, err
	}
	if err := pgproc.PrepareDir(root, 0o755); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	settings := map[string]string{
		"shared_buffers":                   cfg.SharedBuffers,
		"max_parallel_maintenance_workers": strconv.Itoa(max(cfg.ParallelWorkers, 2)),
		"max_connections":                  strconv.Itoa(max(100, cfg.Clients+20)),
		"log_min_messages":                 "warning",
		"jit":                              "off",
	}
	if wantsBorealis(cfg) {
		settings["shared_preload_libraries"] = "'borealis'"
	}
	node, err := pgproc.New(pgproc.Config{DataDir: filepath.Join(root, "data"), Settings: settings, DieWithParent: true})
	if err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	logf("server: starting a throwaway PostgreSQL in %s (log %s)", node.DataDir, node.LogFile)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	stop := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = node.Stop(stopCtx)
		os.RemoveAll(root)
	}
	if err := node.Init(sctx); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	if err := node.Start(sctx); err != nil {
		stop()
		if wantsBorealis(cfg) {
			return nil, fmt.Errorf("%w\n(borealis_hnsw needs the borealis module installed: run `make install`)", err)
		}
		return nil, err
	}
	return &target{dsn: node.DSN("postgres"), postmaster: node.PID(), stop: stop}, nil
}

func wantsBorealis(cfg *Config) bool {
	for _, ix := range cfg.Indexes {
		if strings.HasPrefix(ix.AM, "borealis") {
			return true
		}
	}
	return false
}

// connectTarget uses the user's server and finds its postmaster through /proc when it runs on
// this machine.
func connectTarget(ctx context.Context, dsn string) (*target, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connecting to --dsn: %w", err)
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return nil, err
	}
	t := &target{dsn: dsn, stop: func() {}}
	if ppid, comm, err := procParent(backend); err == nil && strings.HasPrefix(comm, "postgres") {
		t.postmaster = ppid
	}
	return t, nil
}

// prepareExtensions creates pgvector (and borealis when asked for) in the database.
func prepareExtensions(ctx context.Context, conn *pgx.Conn, cfg *Config) error {
	if wantsBorealis(cfg) {
		var available bool
		if err := conn.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'borealis'").Scan(&available); err != nil {
			return err
		}
		if available {
			if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS borealis CASCADE"); err != nil {
				return fmt.Errorf("CREATE EXTENSION borealis: %w (run `make install`)", err)
			}
		}
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS vector"); err != nil {
		return fmt.Errorf("CREATE EXTENSION vector: %w (install pgvector: scripts/deps.sh)", err)
	}
	return nil
}

// checkAccessMethods returns the requested indexes whose AM the server has, and an error (or,
// with SkipMissing, a warning) for each it lacks.
func checkAccessMethods(ctx context.Context, conn *pgx.Conn, cfg *Config, logf func(string, ...any)) ([]IndexSpec, []string, error) {
	var ok []IndexSpec
	var skipped []string
	for _, ix := range cfg.Indexes {
		var present bool
		if err := conn.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_am WHERE amname = $1 AND amtype = 'i'", ix.AM).Scan(&present); err != nil {
			return nil, nil, err
		}
		if present {
			ok = append(ok, ix)
			continue
		}
		msg := fmt.Sprintf("the server has no index access method %q", ix.AM)
		if strings.HasPrefix(ix.AM, "borealis") {
			msg += " (is the borealis extension built with it and installed? `make install`)"
		}
		if !cfg.SkipMissing {
			return nil, nil, fmt.Errorf("%s; drop that --index or pass --skip-missing", msg)
		}
		logf("warning: %s: skipping index %s", msg, ix)
		skipped = append(skipped, ix.AM)
	}
	if len(ok) == 0 {
		return nil, nil, fmt.Errorf("none of the requested access methods exists on the server")
	}
	return ok, skipped, nil
}
