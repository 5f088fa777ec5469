package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestUpDevNode starts the dev node the way `make up` does, uses the printed URI, and stops it
// the way Ctrl-C does.
func TestUpDevNode(t *testing.T) {
	pgtest.RequireInstalled(t)
	port, err := pgproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parent is private to root, and the node runs as postgres.
	home, err := os.MkdirTemp("", "borealis-up-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	if err := pgproc.PrepareDir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- upDevNode(ctx, home, port, pw)
		pw.Close()
	}()

	uri := ""
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(lines.Text()), "URI:"); ok {
			uri = strings.TrimSpace(u)
			break
		}
	}
	if uri == "" {
		t.Fatalf("up printed no URI: %v", <-done)
	}
	go io.Copy(io.Discard, pr)

	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	conn, err := pgx.Connect(cctx, uri)
	if err != nil {
		t.Fatalf("connecting to the printed URI %s: %v", uri, err)
	}
	var path string
	if err := conn.QueryRow(cctx, "SELECT borealis_engine_info()->'simd'->>'path'").Scan(&path); err != nil || path == "" {
		t.Fatalf("borealis_engine_info() on the dev node: %q, %v", path, err)
	}
	conn.Close(cctx)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up did not stop cleanly: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("up did not stop within 60s of Ctrl-C")
	}
	if c, err := pgx.Connect(context.Background(), uri); err == nil {
		c.Close(context.Background())
		t.Fatal("the dev node still accepts connections after stop")
	}
}
