package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// clientLeavingWhileParked (a subtest of TestRouter, on its server at node): a client that hangs
// up while its session is parked for a move (pgbench exiting during a reboot did) ends its
// session; the backend the move opens for it is closed too, and the router's Close returns.
// Before the fix the move stored the new backend after the session's close had run, the relay
// read it for ever, and Close waited for that relay (a control plane that never stopped).
func clientLeavingWhileParked(t *testing.T, srv *pgtest.Server, node string) {
	r, addr, _ := startRouter(t, Config{Name: "leave", Backends: &staticBackends{writer: node}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const app = "leaves-while-parked"
	c := connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name="+app))
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	backends := func() string {
		return srv.QueryValue("postgres", fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", app))
	}
	p := r.Park(ctx, node, MoveOptions{Reason: "test"})
	if p.Len() != 1 {
		t.Fatalf("parked %d sessions, want 1", p.Len())
	}
	// The client hangs up without a Terminate, as a process that exits does.
	c.PgConn().Conn().Close()
	waitUntil(t, "the client's departure to close its session", time.Minute, func() bool { return sessionClosed(r) })
	rep := p.Resume(ctx, node)
	t.Logf("move report after the client left: %+v", rep)
	waitUntil(t, "the router to have no session left", time.Minute, func() bool { return len(r.Sessions()) == 0 })
	waitUntil(t, "no backend left for the departed client", time.Minute, func() bool { return backends() == "0" })
	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the router's Close did not return within 30 s")
	}
}

// sessionClosed reports whether every session of r has been closed (its relay may still run).
func sessionClosed(r *Router) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.sessions {
		if !s.closed.Load() {
			return false
		}
	}
	return true
}
