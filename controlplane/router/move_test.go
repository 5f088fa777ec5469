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

// TestMoveToAnotherNode moves idle sessions from one server to another (the failover and
// scaling case): the client's prepared statement and settings work on the new server, a pinned
// session stays where it is, and Cancel leaves sessions on their backend.
func TestMoveToAnotherNode(t *testing.T) {
	pgtest.RequireInstalled(t)
	a := pgtest.Start(t, pgtest.Options{})
	b := pgtest.Start(t, pgtest.Options{})
	sock := func(s *pgtest.Server) string {
		return filepath.Join(s.SocketDir, fmt.Sprintf(".s.PGSQL.%d", s.Port))
	}
	backends := &staticBackends{writer: sock(a)}
	r, addr, _ := startRouter(t, Config{Name: "mv", Backends: backends})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c := connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name=traveller"))
	if _, err := c.Prepare(ctx, "twice", "SELECT $1::int * 2"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET search_path = elsewhere, public", "SET work_mem = '7MB'", "PREPARE sqlprep AS SELECT 'sql'"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pinned := connect(t, dsn(addr, "postgres", "", ""))
	for _, q := range []string{"SELECT pg_advisory_lock(1)", "LISTEN somewhere", "DECLARE held CURSOR WITH HOLD FOR SELECT 1"} {
		if _, err := pinned.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	port := func(conn *pgx.Conn) int {
		var p int
		if err := conn.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Cancel: nothing moves.
	p := r.Park(ctx, sock(a), MoveOptions{Reason: "test"})
	if p.Len() != 1 || len(p.Pinned) != 1 || strings.Join(p.Pinned[0].Reasons, ",") != "advisory_locks,listen,held_cursors" {
		t.Fatalf("parked %d, pinned %+v", p.Len(), p.Pinned)
	}
	p.Cancel()
	if got := port(c); got != a.Port {
		t.Fatalf("after Cancel the session is on port %d, want %d", got, a.Port)
	}
	pinnedSeen := false
	for _, s := range r.Sessions() {
		pinnedSeen = pinnedSeen || strings.Join(s.Pinned, ",") == "advisory_locks,listen,held_cursors"
	}
	if !pinnedSeen {
		t.Fatalf("Sessions() does not show the pinned session's reasons: %+v", r.Sessions())
	}

	// Move to b.
	p = r.Park(ctx, sock(a), MoveOptions{Reason: "test"})
	rep := p.Resume(ctx, sock(b))
	if rep.Moved != 1 || rep.Failed != 0 || len(rep.Pinned) != 1 {
		t.Fatalf("move report %+v", rep)
	}
	if got := port(c); got != b.Port {
		t.Fatalf("after the move the session is on port %d, want %d", got, b.Port)
	}
	var twice int
	var path, mem, app, sql string
	if err := c.QueryRow(ctx, "twice", 21).Scan(&twice); err != nil || twice != 42 {
		t.Fatalf("protocol-level prepared statement after the move: %d, %v", twice, err)
	}
	if err := c.QueryRow(ctx, "SELECT current_setting('search_path'), current_setting('work_mem'), current_setting('application_name')").Scan(&path, &mem, &app); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "EXECUTE sqlprep").Scan(&sql); err != nil || sql != "sql" {
		t.Fatalf("SQL PREPARE after the move: %q, %v", sql, err)
	}
	if path != "elsewhere, public" || mem != "7MB" || app != "traveller" {
		t.Fatalf("settings after the move: search_path %q, work_mem %q, application_name %q", path, mem, app)
	}
	if got := port(pinned); got != a.Port {
		t.Fatalf("the pinned session moved to port %d", got)
	}
	if r.MovedSessions() != 1 || r.BackendConnections()[sock(b)] != 1 {
		t.Fatalf("moved %d, per node %v", r.MovedSessions(), r.BackendConnections())
	}
	// A cancel reaches the new backend.
	go func() {
		time.Sleep(300 * time.Millisecond)
		c.PgConn().CancelRequest(context.Background())
	}()
	if _, err := c.Exec(ctx, "SELECT pg_sleep(20)"); pgCode(err) != "57014" {
		t.Fatalf("cancel after the move: %v", err)
	}
}
