package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgproc"
)

func init() {
	commands["up"] = command{summary: "start a local dev node in the foreground until Ctrl-C", run: runUp}
}

func runUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	port := fs.Int("port", 5433, "TCP port of the dev node on 127.0.0.1")
	home := fs.String("home", envOr("BOREALIS_HOME", ".borealis"), "directory for the dev node's data and log")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *port <= 0 || *port > 65535 {
		return usagef("--port must be between 1 and 65535, got %d", *port)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return upDevNode(ctx, *home, *port, stdout)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// upDevNode starts a fresh single PostgreSQL node with borealis preloaded and the extension
// created in database "borealis", prints how to reach it, and stops it cleanly when ctx ends.
func upDevNode(ctx context.Context, home string, port int, stdout io.Writer) error {
	home, err := filepath.Abs(home)
	if err != nil {
		return err
	}
	dataDir := filepath.Join(home, "dev", "data")
	if err := os.RemoveAll(filepath.Dir(dataDir)); err != nil {
		return fmt.Errorf("clearing the previous dev node in %s: %w", filepath.Dir(dataDir), err)
	}
	if err := pgproc.PrepareDir(home, 0o755); err != nil {
		return err
	}
	node, err := pgproc.New(pgproc.Config{
		DataDir:       dataDir,
		Port:          port,
		DieWithParent: true,
		Settings: map[string]string{
			"shared_preload_libraries": "'borealis'",
			"wal_level":                "replica",
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "borealis: initialising a fresh dev node in %s\n", dataDir)
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := node.Init(startCtx); err != nil {
		return err
	}
	if err := node.Start(startCtx); err != nil {
		return fmt.Errorf("%w (is port %d free? choose another with PORT=...)", err, port)
	}
	stopNode := func() error {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		return node.Stop(sctx)
	}
	if err := createDevDatabase(startCtx, node); err != nil {
		_ = stopNode()
		return err
	}
	uri := node.DSN("borealis")
	fmt.Fprintf(stdout, "\nBorealis dev node is up (PostgreSQL on 127.0.0.1:%d, log %s)\n", port, node.LogFile)
	fmt.Fprintf(stdout, "  URI:  %s\n", uri)
	fmt.Fprintf(stdout, "  psql: psql '%s'\n", uri)
	fmt.Fprintf(stdout, "Press Ctrl-C to stop it.\n")

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nborealis: stopping the dev node")
		if err := stopNode(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "borealis: stopped cleanly")
		return nil
	case <-node.Exited():
		return fmt.Errorf("the dev node exited on its own (%v); log %s ends with:\n%s", node.ExitErr(), node.LogFile, node.LogTail(20))
	}
}

func createDevDatabase(ctx context.Context, node *pgproc.Node) error {
	conn, err := pgx.Connect(ctx, node.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE borealis"); err != nil {
		return fmt.Errorf("creating database borealis: %w", err)
	}
	db, err := pgx.Connect(ctx, node.DSN("borealis"))
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, "CREATE EXTENSION borealis CASCADE"); err != nil {
		return fmt.Errorf("creating the borealis extension (run `make install` first): %w", err)
	}
	return nil
}
