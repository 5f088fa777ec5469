package router

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestRawWait drives sessions hard enough for the event loop to wait raw, holding its P
// (rawwait.go), and checks what that must not break: every query answered right while the
// runtime stops the world for GCs and preempts the loop, the P given back after a quiet
// spell (and taken again when busy), and no raw wait at all with one P or with
// Config.SchedulerWait.
func TestRawWait(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := filepath.Join(srv.SocketDir, fmt.Sprintf(".s.PGSQL.%d", srv.Port))
	// The raw wait needs a spare P; give the test two even on a 1-CPU machine.
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}

	// busy runs SELECT i through 4 sessions of r for d, checking every answer, with a GC
	// forced every 50 ms meanwhile; it returns the queries answered.
	busy := func(t *testing.T, addr string, d time.Duration) int {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		errs := make(chan error, 4)
		var conns []*pgx.Conn
		for range 4 {
			conns = append(conns, connect(t, dsn(addr, "postgres", "", "sslmode=disable")))
		}
		end := time.Now().Add(d)
		for c, conn := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				for i := c * 1_000_000; time.Now().Before(end); i++ {
					var got int
					if err := conn.QueryRow(ctx, "SELECT $1::int", i).Scan(&got); err != nil || got != i {
						errs <- fmt.Errorf("query %d: got %d, %v", i, got, err)
						return
					}
					n++
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		gcs := 0
		for time.Now().Before(end) {
			runtime.GC() // stops the world while the loop may sit in a raw wait
			gcs++
			time.Sleep(50 * time.Millisecond)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if gcs == 0 {
			t.Fatal("no GC ran while the sessions were busy")
		}
		return total
	}

	t.Run("HoldsPWhileBusy", func(t *testing.T) {
		r, addr, _ := startRouter(t, Config{Name: "raw", Backends: &staticBackends{writer: sock}})
		n := busy(t, addr, 3*time.Second)
		l := r.eventLoop()
		spells := l.rawSpells.Load()
		if spells == 0 {
			t.Fatalf("%d queries through the loop and it never waited raw", n)
		}
		// Quiet now: the loop gives its P back after rawWaitIdle.
		waitUntil(t, "the quiet loop to wait through the scheduler", 30*time.Second, func() bool { return !l.rawNow.Load() })
		if got := rawLoops.Load(); got != 0 {
			t.Fatalf("%d loops counted as waiting raw after the only one stopped", got)
		}
		// Busy again: the loop takes the P again (as long as no other loop of the process
		// holds the only spare one).
		waitUntil(t, "no loop of the process waiting raw", 30*time.Second, func() bool { return rawLoops.Load() == 0 })
		busy(t, addr, time.Second)
		if l.rawSpells.Load() == spells {
			t.Fatal("busy again, and the loop did not wait raw again")
		}
		t.Logf("%d queries, %d raw spells", n, l.rawSpells.Load())
	})
	t.Run("SchedulerWait", func(t *testing.T) {
		r, addr, _ := startRouter(t, Config{Name: "sched", Backends: &staticBackends{writer: sock}, SchedulerWait: true})
		busy(t, addr, time.Second)
		if got := r.eventLoop().rawSpells.Load(); got != 0 {
			t.Fatalf("SchedulerWait, and the loop waited raw %d times", got)
		}
	})
	t.Run("OneP", func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		r, addr, _ := startRouter(t, Config{Name: "onep", Backends: &staticBackends{writer: sock}})
		busy(t, addr, time.Second)
		if got := r.eventLoop().rawSpells.Load(); got != 0 {
			t.Fatalf("GOMAXPROCS=1, and the loop waited raw %d times (holding the only P)", got)
		}
	})
}
