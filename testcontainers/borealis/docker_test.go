//go:build docker

// The integration suite of the module and the image: `make test-docker` (part of `make test`)
// builds the image and runs it with BOREALIS_IMAGE=borealis:dev.
package borealis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"

	"github.com/borealisdb/borealis/testcontainers/borealis"
)

var (
	image  = envOr("BOREALIS_IMAGE", "borealis:dev")
	shared *borealis.Container
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	// Ryuk, testcontainers' reaper, is an image from a registry; the suite terminates its own
	// containers instead, so it runs where no registry is reachable.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	// A machine image built from a container keeps /.dockerenv, and testcontainers then takes the
	// default gateway (another host) for the Docker host. The daemon here is local.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && os.Getenv("DOCKER_HOST") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	ctx := context.Background()
	start := time.Now()
	var err error
	shared, err = borealis.Run(ctx, image,
		borealis.WithDatabase("app"),
		borealis.WithUsername("alice"),
		borealis.WithPassword("s3cret-pass!"),
		borealis.WithReaders(1),
		borealis.WithCapacity(0.5, 4),
		borealis.WithInitScripts(filepath.Join("testdata", "001-schema.sql")),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the shared borealis container from %s: %v\n", image, err)
		if shared != nil {
			testcontainers.TerminateContainer(shared)
		}
		os.Exit(1)
	}
	fmt.Printf("borealis container %s available in %s\n", image, time.Since(start).Round(100*time.Millisecond))
	code := m.Run()
	if err := testcontainers.TerminateContainer(shared); err != nil {
		fmt.Fprintf(os.Stderr, "terminating the shared container: %v\n", err)
	}
	os.Exit(code)
}

func connect(t *testing.T, uri string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect %s: %v", uri, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func writer(t *testing.T, c *borealis.Container) *pgx.Conn {
	t.Helper()
	uri, err := c.ConnectionString(context.Background(), "sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	return connect(t, uri)
}

func reader(t *testing.T, c *borealis.Container) *pgx.Conn {
	t.Helper()
	uri, err := c.ReaderConnectionString(context.Background(), "sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	return connect(t, uri)
}

// seed loads the seed workload through the cluster endpoint: n items in 8 categories with
// deterministic 16-dimension embeddings.
func seed(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	_, err := conn.Exec(context.Background(), `
		INSERT INTO items (id, category, embedding)
		SELECT i, i % 8,
		       (SELECT array_agg(sin(i * 0.37 + d * 1.3) + (i % 8))::vector(16) FROM generate_series(1, 16) d)
		FROM generate_series(1, $1) i
		ON CONFLICT (id) DO NOTHING`, n)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
}

// workloadQuery is the seed workload's query: per-category counts and the ids nearest a probe.
const workloadQuery = `
	SELECT (SELECT string_agg(category || ':' || n, ',' ORDER BY category)
	          FROM (SELECT category, count(*) n FROM items GROUP BY category) c),
	       (SELECT string_agg(id::text, ',' ORDER BY d, id)
	          FROM (SELECT id, embedding <-> (SELECT embedding FROM items WHERE id = 42) d
	                  FROM items ORDER BY d, id LIMIT 5) nn)`

func runWorkload(ctx context.Context, conn *pgx.Conn) (string, error) {
	var counts, nearest *string
	if err := conn.QueryRow(ctx, workloadQuery).Scan(&counts, &nearest); err != nil {
		return "", err
	}
	if counts == nil || nearest == nil {
		return "", errors.New("no rows")
	}
	return *counts + " | " + *nearest, nil
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var err error
	for {
		if err = f(ctx); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, d, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestSeedWorkloadThroughBothEndpoints(t *testing.T) {
	ctx := context.Background()
	w := writer(t, shared)
	seed(t, w, 2000)
	var inRecovery bool
	if err := w.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("cluster endpoint reached a server in recovery=%v (err %v): want the writer", inRecovery, err)
	}
	want, err := runWorkload(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(want, "0:250,1:250,") {
		t.Fatalf("workload on the writer = %q, want 250 items per category", want)
	}
	r := reader(t, shared)
	if err := r.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("reader endpoint reached a server in recovery=%v (err %v): want a reader", inRecovery, err)
	}
	eventually(t, time.Minute, "the reader endpoint returns the writer's answer", func(ctx context.Context) error {
		got, err := runWorkload(ctx, r)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("reader %q, writer %q", got, want)
		}
		return nil
	})
	if _, err := r.Exec(ctx, "INSERT INTO items VALUES (999999, 0, array_fill(0, ARRAY[16])::vector)"); err == nil {
		t.Fatal("an INSERT through the reader endpoint succeeded; readers must be read-only")
	}
}

func TestHNSWIndexBuiltAndUsed(t *testing.T) {
	ctx := context.Background()
	w := writer(t, shared)
	if _, err := w.Exec(ctx, `CREATE TABLE IF NOT EXISTS docs (id int PRIMARY KEY, embedding vector(8));
		INSERT INTO docs SELECT i, (SELECT array_agg(cos(i * 0.11 * d))::vector(8) FROM generate_series(1, 8) d)
		  FROM generate_series(1, 3000) i ON CONFLICT DO NOTHING;
		CREATE INDEX IF NOT EXISTS docs_hnsw ON docs USING borealis_hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64);
		ANALYZE docs`); err != nil {
		t.Fatalf("building the borealis_hnsw index: %v", err)
	}
	const q = `SELECT id FROM docs ORDER BY embedding <-> (SELECT embedding FROM docs WHERE id = 1234) LIMIT 5`
	check := func(ctx context.Context, conn *pgx.Conn) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		// Make the planner's choice deterministic on a small table.
		if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return err
		}
		var plan strings.Builder
		rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+q)
		if err != nil {
			return err
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			plan.WriteString(line + "\n")
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !strings.Contains(plan.String(), "Index Scan using docs_hnsw") {
			return fmt.Errorf("plan does not use docs_hnsw:\n%s", plan.String())
		}
		var first int
		if err := tx.QueryRow(ctx, q).Scan(&first); err != nil {
			return err
		}
		if first != 1234 {
			return fmt.Errorf("nearest neighbour of row 1234's embedding is %d, want 1234", first)
		}
		return nil
	}
	if err := check(ctx, w); err != nil {
		t.Fatalf("writer: %v", err)
	}
	r := reader(t, shared)
	eventually(t, time.Minute, "the index answers on the reader", func(ctx context.Context) error { return check(ctx, r) })
}

// The two tests below run in order: the first snapshots and changes the database, the second
// restores it.
func TestSnapshotThenChange(t *testing.T) {
	ctx := context.Background()
	w := writer(t, shared)
	if _, err := w.Exec(ctx, "CREATE TABLE IF NOT EXISTS marks (v text); TRUNCATE marks; INSERT INTO marks VALUES ('before')"); err != nil {
		t.Fatal(err)
	}
	w.Close(ctx) // a template database must have no sessions
	if err := shared.Snapshot(ctx, borealis.WithSnapshotName("suite_snapshot")); err != nil {
		t.Fatal(err)
	}
	w = writer(t, shared)
	if _, err := w.Exec(ctx, "UPDATE marks SET v = 'after'; INSERT INTO marks VALUES ('extra')"); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreAfterChange(t *testing.T) {
	ctx := context.Background()
	if err := shared.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	// The restored database is read on a new connection; give the writer a moment (seen once in a
	// quiet CI run: the first connection right after Restore found no database).
	eventually(t, time.Minute, "the restored database on the writer", func(ctx context.Context) error {
		uri, err := shared.ConnectionString(ctx, "sslmode=disable")
		if err != nil {
			return err
		}
		w, err := pgx.Connect(ctx, uri)
		if err != nil {
			return err
		}
		defer w.Close(context.Background())
		var got string
		if err := w.QueryRow(ctx, "SELECT string_agg(v, ',') FROM marks").Scan(&got); err != nil {
			return err
		}
		if got != "before" {
			return fmt.Errorf("after Restore marks = %q, want %q", got, "before")
		}
		return nil
	})
	// The reader sees the recreated database only once it has replayed the CREATE DATABASE, so
	// each try opens a new connection.
	eventually(t, time.Minute, "the restored database on the reader", func(ctx context.Context) error {
		uri, err := shared.ReaderConnectionString(ctx, "sslmode=disable")
		if err != nil {
			return err
		}
		r, err := pgx.Connect(ctx, uri)
		if err != nil {
			return err
		}
		defer r.Close(context.Background())
		var got string
		if err := r.QueryRow(ctx, "SELECT string_agg(v, ',') FROM marks").Scan(&got); err != nil {
			return err
		}
		if got != "before" {
			return fmt.Errorf("reader marks = %q", got)
		}
		return nil
	})
}

func TestSnapshotNameMustDifferFromDatabase(t *testing.T) {
	// Snapshotting the database onto itself would drop it.
	c := *shared
	err := (&c).Snapshot(context.Background(), borealis.WithSnapshotName("app"))
	if err == nil || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("Snapshot named like the database: got %v, want a refusal", err)
	}
}

func TestAPIDescribeAndModifyCapacity(t *testing.T) {
	ctx := context.Background()
	api, err := shared.API(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := api.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "available" || len(d.DBClusterMembers) != 2 {
		t.Fatalf("Describe: status %s with %d members, want available with 2", d.Status, len(d.DBClusterMembers))
	}
	if d.ScalingConfigurationInfo.MinCapacity != 0.5 || d.ScalingConfigurationInfo.MaxCapacity != 4 {
		t.Fatalf("WithCapacity(0.5, 4) gave %+v", d.ScalingConfigurationInfo)
	}
	// Docker mounts /sys/fs/cgroup read-only: describe says so, not "run as root" (it is root).
	if ce := d.CapacityEnforcement; ce.Enforced || !strings.Contains(ce.Reason, "read-only, as in an unprivileged container") || strings.Contains(ce.Reason, "as root") {
		t.Fatalf("CapacityEnforcement in a container: %+v", ce)
	}
	d, err = api.ModifyCapacity(ctx, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d.ScalingConfigurationInfo.MinCapacity != 1 || d.ScalingConfigurationInfo.MaxCapacity != 2 {
		t.Fatalf("ModifyCapacity(1, 2) gave %+v", d.ScalingConfigurationInfo)
	}
	_, err = api.ModifyCapacity(ctx, 3, 1)
	var apiErr *borealis.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("ModifyCapacity(3, 1): got %v, want a 400 from the control plane", err)
	}

	// Without the token the API refuses.
	u, _ := shared.APIURL(ctx)
	if _, err := borealis.NewClient(u, "wrong-token-wrong-token-wrong-token", borealis.ClusterName).Describe(ctx); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("Describe with a wrong token: got %v, want 401", err)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
