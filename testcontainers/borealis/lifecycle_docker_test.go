//go:build docker

package borealis_test

import (
	"context"
	"strings"
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

// TestLifecycle runs one cluster through pause and resume, stop and start through the API, and a
// docker stop and start that must bring the same cluster back with its data.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	c, err := borealis.Run(ctx, image, borealis.WithDatabase("life"), borealis.WithReaders(1), borealis.WithAutoPause(3))
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
		t.Logf("docker stop took %s, exit code %d", took.Round(10*time.Millisecond), inspect.State.ExitCode)
		if inspect.State.ExitCode != 0 || took >= timeout {
			t.Fatalf("docker stop: exit code %d after %s; want 0 (stopped cleanly, not killed) within %s", inspect.State.ExitCode, took, timeout)
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
