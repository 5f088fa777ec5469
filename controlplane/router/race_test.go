package router

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestSessionsWhileConnecting reads Sessions and BackendConnections while clients start up and
// end, so `go test -race` sees every field they read being written by the sessions.
func TestSessionsWhileConnecting(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	backends := &staticBackends{writer: fmt.Sprintf("127.0.0.1:%d", srv.Port)}
	r, clusterAddr, _ := startRouter(t, Config{Name: "race", Backends: backends})
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, s := range r.Sessions() {
				_ = s.User + s.Database + s.Backend
			}
			_ = r.BackendConnections()
			time.Sleep(time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, dsn(clusterAddr, "postgres", "", ""))
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			var one int
			if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Errorf("client %d: %v", i, err)
			}
			c.Close(ctx)
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
}
