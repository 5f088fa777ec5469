package router

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestAsyncMessagesDuringPark parks a LISTENing session over and over (each Park stops its
// backend reader and inspects the session in its backend, as moves and crash snapshots do)
// while another session sends it a stream of NOTIFYs. A notification that arrives as the reader
// is stopped must neither end the session (a stream stopped mid-message) nor be swallowed by
// the inspection: the client gets every payload, in order, and its session still works.
func TestAsyncMessagesDuringPark(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))
	r, addr, _ := startRouter(t, Config{Name: "async", Backends: &staticBackends{writer: sock}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	listener := connect(t, dsn(addr, "postgres", "", "sslmode=disable"))
	if _, err := listener.Exec(ctx, "LISTEN ch"); err != nil {
		t.Fatal(err)
	}
	notifier := connect(t, dsn(fmt.Sprintf("127.0.0.1:%d", srv.Port), "postgres", "", "sslmode=disable"))
	// The notifier keeps sending until 50 parks are done.
	stop := make(chan struct{})
	type result struct {
		n   int
		err error
	}
	sent := make(chan result, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				sent <- result{n: i}
				return
			default:
			}
			if _, err := notifier.Exec(ctx, "SELECT pg_notify('ch', $1)", strconv.Itoa(i)); err != nil {
				sent <- result{i, err}
				return
			}
		}
	}()
	const parks = 50
	var parkErr string
	for i := range parks {
		p := r.Park(ctx, sock, MoveOptions{Reason: "test", BoundaryTimeout: 20 * time.Second})
		if p.Closed != 0 || len(p.Pinned) != 1 || p.Len() != 0 {
			parkErr = fmt.Sprintf("park %d: closed %d, pinned %+v, parked %d; want the LISTENing session pinned and left running", i, p.Closed, p.Pinned, p.Len())
			break
		}
	}
	close(stop)
	res := <-sent // the notifier is done with its connection before any failure ends the test
	if parkErr != "" {
		t.Fatal(parkErr)
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	n := res.n
	for i := range n {
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		note, err := listener.WaitForNotification(wctx)
		wcancel()
		if err != nil {
			t.Fatalf("after %d parks, notification %d of %d: %v", parks, i, n, err)
		}
		if note.Payload != strconv.Itoa(i) {
			t.Fatalf("after %d parks, notification %d has payload %q", parks, i, note.Payload)
		}
	}
	var one int
	if err := listener.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the session after %d parks: %v", parks, err)
	}
	t.Logf("%d notifications delivered across %d parks", n, parks)
}
