//go:build docker

package borealis_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"

	"github.com/borealisdb/borealis/testcontainers/borealis"
)

func TestRefusesToStartWithoutPassword(t *testing.T) {
	ctx := context.Background()
	c, err := borealis.Run(ctx, image, borealis.WithPassword(""))
	if c != nil {
		defer testcontainers.TerminateContainer(c)
	}
	if err == nil || !strings.Contains(err.Error(), "BOREALIS_MASTER_PASSWORD is not set") {
		t.Fatalf("Run without a password: got %v, want the entrypoint's refusal", err)
	}
}

// TestRefusesBadCapacityAtOnce: a serverless setting out of range stops the container before
// any node is created, naming the variable; it used to be found only after the whole cluster
// was up (a minute or more), and named only the flag.
func TestRefusesBadCapacityAtOnce(t *testing.T) {
	ctx := context.Background()
	began := time.Now()
	c, err := borealis.Run(ctx, image, borealis.WithCapacity(0.3, 4))
	if c != nil {
		defer testcontainers.TerminateContainer(c)
	}
	if err == nil || !strings.Contains(err.Error(), "--min-capacity: 0.3 ACU is not allowed") || !strings.Contains(err.Error(), "--min-capacity BOREALIS_MIN_CAPACITY") {
		t.Fatalf("Run with MinCapacity 0.3: got %v, want the refusal naming BOREALIS_MIN_CAPACITY", err)
	}
	if strings.Contains(err.Error(), "member.created") {
		t.Fatalf("nodes were created before the refusal: %v", err)
	}
	t.Logf("refused after %s", time.Since(began).Round(time.Millisecond))

	// A short auto-pause without the dev floor: the refusal names the setting that allows it.
	c, err = borealis.Run(ctx, image, testcontainers.WithEnv(map[string]string{"BOREALIS_SECONDS_UNTIL_AUTO_PAUSE": "5"}))
	if c != nil {
		defer testcontainers.TerminateContainer(c)
	}
	if err == nil || !strings.Contains(err.Error(), "BOREALIS_SECONDS_UNTIL_AUTO_PAUSE") || !strings.Contains(err.Error(), "BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS=5") {
		t.Fatalf("Run with a 5 s auto-pause and no dev floor: got %v, want the refusal naming the dev floor", err)
	}
}

// TestLifecycle runs one cluster through pause and resume, stop and start through the API, and a
// docker stop and start that must bring the same cluster back with its data.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	c, err := borealis.Run(ctx, image, borealis.WithDatabase("life"), borealis.WithUsername("bob"),
		borealis.WithPassword("bob-pass-123"), borealis.WithReaders(1), borealis.WithAutoPause(3))
	if c != nil {
		t.Cleanup(func() { testcontainers.TerminateContainer(c) })
	}
	if err != nil {
		t.Fatal(err)
	}
	api, err := c.API(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := api.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	query := func(ctx context.Context, sql string) (string, error) {
		uri, err := c.ConnectionString(ctx, "sslmode=disable")
		if err != nil {
			return "", err
		}
		conn, err := pgx.Connect(ctx, uri)
		if err != nil {
			return "", err
		}
		defer conn.Close(context.Background())
		var s string
		if !strings.HasPrefix(sql, "SELECT") {
			_, err = conn.Exec(ctx, sql)
			return "", err
		}
		err = conn.QueryRow(ctx, sql).Scan(&s)
		return s, err
	}
	wait := func(t *testing.T, status string, d time.Duration) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		if _, err := api.WaitStatus(wctx, status); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("healthcheck", func(t *testing.T) {
		eventually(t, time.Minute, "docker reports the container healthy", func(ctx context.Context) error {
			inspect, err := c.Inspect(ctx)
			if err != nil {
				return err
			}
			if h := inspect.State.Health; h == nil || h.Status != "healthy" {
				return errorf("health %+v", h)
			}
			return nil
		})
	})

	t.Run("pause and resume on connect", func(t *testing.T) {
		if _, err := query(ctx, "CREATE TABLE kept AS SELECT 'kept'::text AS v"); err != nil {
			t.Fatal(err)
		}
		wait(t, "paused", 2*time.Minute) // no connections for 3 s
		qctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		got, err := query(qctx, "SELECT v FROM kept") // held at the router while the cluster resumes
		if err != nil || got != "kept" {
			t.Fatalf("query on a paused cluster: %q, %v; want it resumed and answering", got, err)
		}
		// Run's wait strategy on a paused cluster (a restarted container with a short
		// auto-pause can pause before the strategy looks): it logs in, which resumes it, rather
		// than waiting for "available" until its timeout.
		wait(t, "paused", 2*time.Minute)
		if err := borealis.ForCluster().WithStartupTimeout(2*time.Minute).WaitUntilReady(ctx, c); err != nil {
			t.Fatalf("the wait strategy on a paused cluster: %v", err)
		}
		off := false
		if _, err := api.Modify(ctx, borealis.ModifyInput{AutoPause: &off}); err != nil {
			t.Fatal(err)
		}
		wait(t, "available", time.Minute)
	})

	t.Run("stop and start through the API", func(t *testing.T) {
		if _, err := api.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		wait(t, "stopped", 2*time.Minute)
		if _, err := api.Start(ctx); err != nil {
			t.Fatal(err)
		}
		wait(t, "available", 2*time.Minute)
		eventually(t, time.Minute, "data after start", func(ctx context.Context) error {
			got, err := query(ctx, "SELECT v FROM kept")
			if err == nil && got != "kept" {
				return errorf("got %q", got)
			}
			return err
		})
	})

	t.Run("failover through the API while a client keeps writing", func(t *testing.T) {
		before, err := api.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oldWriter := writerOf(before)
		if _, err := query(ctx, "CREATE TABLE ticks (id int PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		uri, err := c.ConnectionString(ctx, "sslmode=disable", "connect_timeout=10")
		if err != nil {
			t.Fatal(err)
		}
		// The writing client: one row per transaction, reconnecting after an error; acked holds the
		// rows whose COMMIT succeeded.
		var (
			mu       sync.Mutex
			acked    []int
			failures int
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.Background())
				}
			}()
			for id := 1; ; id++ {
				select {
				case <-stop:
					return
				default:
				}
				wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				if conn == nil {
					conn, err = pgx.Connect(wctx, uri)
				}
				if err == nil {
					_, err = conn.Exec(wctx, "INSERT INTO ticks VALUES ($1)", id)
				}
				cancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, id)
				} else {
					failures++
					if conn != nil {
						conn.Close(context.Background())
						conn = nil
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
		eventually(t, time.Minute, "the client writes before the failover", func(context.Context) error {
			if count() < 20 {
				return errorf("%d rows acknowledged", count())
			}
			return nil
		})
		start := time.Now()
		after, err := api.Failover(ctx, "")
		if err != nil {
			close(stop)
			<-done
			t.Fatal(err)
		}
		t.Logf("failover answered in %s", time.Since(start).Round(10*time.Millisecond))
		if w := writerOf(after); w == "" || w == oldWriter {
			t.Errorf("after failover the writer is %q, before %q: want another member", w, oldWriter)
		}
		atFailover := count()
		eventually(t, 2*time.Minute, "the client writes again after the failover", func(context.Context) error {
			if count() < atFailover+20 {
				return errorf("%d rows acknowledged, %d at the failover", count(), atFailover)
			}
			return nil
		})
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%d rows acknowledged, %d failed attempts during the failover", len(acked), failures)
		uri2, _ := c.ConnectionString(ctx, "sslmode=disable")
		conn := connect(t, uri2)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM ticks WHERE id = ANY($1)", acked).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(acked) {
			t.Fatalf("%d of %d acknowledged rows are on the new writer: acknowledged writes were lost", n, len(acked))
		}
	})

	t.Run("docker stop is clean within 10 s and docker start brings the cluster back", func(t *testing.T) {
		timeout := 10 * time.Second
		start := time.Now()
		if err := c.Stop(ctx, &timeout); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		inspect, err := c.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("docker stop took %s (client side, docker's own overhead included), exit code %d", took.Round(10*time.Millisecond), inspect.State.ExitCode)
		// Docker sends SIGKILL when the 10 s are up (exit code 137): exit code 0 means the
		// entrypoint and borealis up finished their clean stop within them.
		if inspect.State.ExitCode != 0 || inspect.State.OOMKilled {
			t.Fatalf("docker stop: exit code %d after %s; want 0: stopped cleanly, not killed after %s", inspect.State.ExitCode, took, timeout)
		}
		logs, err := c.Logs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := io.ReadAll(logs)
		logs.Close()
		if !strings.Contains(string(all), "borealis: stopped cleanly") {
			t.Fatalf("the container log does not say the cluster stopped cleanly")
		}
		start = time.Now()
		if err := c.Start(ctx); err != nil { // waits for the cluster again
			t.Fatal(err)
		}
		t.Logf("restarted container available in %s", time.Since(start).Round(100*time.Millisecond))
		api, err = c.API(ctx) // the API's host port changed
		if err != nil {
			t.Fatal(err)
		}
		d, err := api.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !d.ClusterCreateTime.Equal(first.ClusterCreateTime) {
			t.Fatalf("after docker start the cluster was created at %s, before at %s: want the same cluster", d.ClusterCreateTime, first.ClusterCreateTime)
		}
		got, err := query(ctx, "SELECT v FROM kept")
		if err != nil || got != "kept" {
			t.Fatalf("after docker start: %q, %v", got, err)
		}
	})
}

func writerOf(d borealis.Description) string {
	for _, m := range d.DBClusterMembers {
		if m.IsClusterWriter {
			return m.DBInstanceIdentifier
		}
	}
	return ""
}
