package router

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestRelayModels sends large results and a large COPY through both relays — the event loop
// (whose writes to a full socket wait in the session, with reading paused until it drains)
// and the goroutine relay — checking every byte arrived, and that idle sessions sit in the
// loop and come back to it after a move.
// ioModels are the router's three I/O models, for tests that run in each; inIOModel sets a
// Config to one of them.
var ioModels = []string{"IOURing", "Epoll", "Goroutines"}

func inIOModel(cfg Config, model string) Config {
	cfg.GoroutineRelay = model == "Goroutines"
	cfg.NoIOURing = model == "Epoll"
	return cfg
}

func TestRelayModels(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))
	for _, model := range ioModels {
		goroutines := model == "Goroutines"
		t.Run(model, func(t *testing.T) {
			r, addr, _ := startRouter(t, inIOModel(Config{Name: "relay", Backends: &staticBackends{writer: sock}}, model))
			want := map[string]string{"IOURing": "io_uring", "Epoll": "epoll", "Goroutines": ""}[model]
			if got := r.EventLoopIO(); got != want {
				// io_uring is the router's default I/O path, so only an explicit opt-out
				// excuses it; a ring the kernel refuses fails here, naming why.
				if model == "IOURing" && got == "epoll" && iouDisabledByEnv() {
					t.Skip("BOREALIS_ROUTER_IOURING=off is set: the loop runs on epoll, tested by Epoll")
				}
				if model == "IOURing" && !uringUsable() {
					t.Fatalf("event loop I/O %q, want io_uring: this kernel refuses io_uring (before 6.1, seccomp or kernel.io_uring_disabled), so the router's default path cannot be tested here", got)
				}
				t.Fatalf("event loop I/O %q, want %q", got, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := connect(t, dsn(addr, "postgres", "", "sslmode=disable"))
			inLoop := func() int64 {
				if goroutines {
					return 1
				}
				return r.EventLoopSessions()
			}
			waitUntil(t, "the session in the event loop", 30*time.Second, func() bool { return inLoop() == 1 })
			if goroutines && r.EventLoopSessions() != 0 {
				t.Fatalf("%d sessions in the event loop with GoroutineRelay", r.EventLoopSessions())
			}

			// About 24 MB back: far more than the sockets hold while pgx reads row by row.
			rows, err := c.Query(ctx, "SELECT i, repeat(md5(i::text), 24) FROM generate_series(1, 30000) i")
			if err != nil {
				t.Fatal(err)
			}
			n, bytes := 0, 0
			for rows.Next() {
				var i int
				var s string
				if err := rows.Scan(&i, &s); err != nil {
					t.Fatal(err)
				}
				n++
				bytes += len(s)
				if i != n || len(s) != 768 {
					t.Fatalf("row %d: %d, %d bytes", n, i, len(s))
				}
				if n == 1 || n%5000 == 0 {
					time.Sleep(300 * time.Millisecond) // a slow reader: the router's writes wait
				}
			}
			if rows.Err() != nil || n != 30000 {
				t.Fatalf("%d rows, %v", n, rows.Err())
			}

			// About 16 MB the other way.
			sink := "sink_" + strings.ToLower(model)
			if _, err := c.Exec(ctx, "CREATE TABLE "+sink+" (i int, s text)"); err != nil {
				t.Fatal(err)
			}
			src := make([][]any, 20000)
			for i := range src {
				src[i] = []any{i, strings.Repeat(fmt.Sprintf("%08d", i), 100)}
			}
			copied, err := c.CopyFrom(ctx, pgx.Identifier{sink}, []string{"i", "s"}, pgx.CopyFromRows(src))
			if err != nil || copied != 20000 {
				t.Fatalf("COPY: %d, %v", copied, err)
			}
			var cnt, total int
			if err := c.QueryRow(ctx, "SELECT count(*), sum(length(s)) FROM "+sink).Scan(&cnt, &total); err != nil || cnt != 20000 || total != 20000*800 {
				t.Fatalf("sink: %d rows, %d bytes, %v", cnt, total, err)
			}

			// A move takes the session out of the loop and it comes back after.
			p := r.Park(ctx, sock, MoveOptions{Reason: "test"})
			if p.Len() != 1 {
				t.Fatalf("parked %d, pinned %+v", p.Len(), p.Pinned)
			}
			rep := p.Resume(ctx, sock)
			if rep.Moved != 1 {
				t.Fatalf("move report %+v", rep)
			}
			var one int
			if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("after the move: %v", err)
			}
			waitUntil(t, "the moved session back in the event loop", 30*time.Second, func() bool { return inLoop() == 1 })
		})
	}
}

// TestEventLoopIOSwitchedOff: BOREALIS_ROUTER_IOURING=off (and any failure to set up a ring:
// an old kernel, seccomp, kernel.io_uring_disabled) leaves the loop on epoll, which carries
// sessions as before.
func TestEventLoopIOSwitchedOff(t *testing.T) {
	pgtest.RequireInstalled(t)
	t.Setenv("BOREALIS_ROUTER_IOURING", "off")
	if uringUsable() {
		t.Fatal("a ring was set up with BOREALIS_ROUTER_IOURING=off")
	}
	srv := pgtest.Start(t, pgtest.Options{})
	sock := filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))
	r, addr, _ := startRouter(t, Config{Name: "epoll", Backends: &staticBackends{writer: sock}})
	if got := r.EventLoopIO(); got != "epoll" {
		t.Fatalf("event loop I/O %q with io_uring switched off, want epoll", got)
	}
	c := connect(t, dsn(addr, "postgres", "", "sslmode=disable"))
	waitUntil(t, "the session in the event loop", 30*time.Second, func() bool { return r.EventLoopSessions() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 200 {
		var got int
		if err := c.QueryRow(ctx, "SELECT $1::int + 1", i).Scan(&got); err != nil || got != i+1 {
			t.Fatalf("query %d through the epoll loop: %d, %v", i, got, err)
		}
	}
}
