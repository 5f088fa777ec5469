//go:build docker

// A test to copy: a Borealis cluster in a container for the length of a test, a vector table
// with a borealis_hnsw index written through the cluster endpoint and searched through the
// reader endpoint. Run it with `go test -tags docker ./examples/` after `make image`.
package examples_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"

	"github.com/borealisdb/borealis/testcontainers/borealis"
)

func TestNearestDocuments(t *testing.T) {
	// Where Docker Hub is out of reach, testcontainers' reaper image cannot be pulled.
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	if os.Getenv("DOCKER_HOST") == "" {
		t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1") // the daemon is on this machine
	}
	ctx := context.Background()

	ctr, err := borealis.Run(ctx, "borealis:dev",
		borealis.WithDatabase("docs"),
		borealis.WithUsername("app"),
		borealis.WithPassword("app-secret"),
		borealis.WithReaders(1),
	)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}

	writerURI, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	w, err := pgx.Connect(ctx, writerURI)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	_, err = w.Exec(ctx, `
		CREATE TABLE docs (id int PRIMARY KEY, embedding vector(3));
		INSERT INTO docs VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]');
		CREATE INDEX ON docs USING borealis_hnsw (embedding vector_cosine_ops);`)
	if err != nil {
		t.Fatal(err)
	}

	readerURI, err := ctr.ReaderConnectionString(ctx, "sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pgx.Connect(ctx, readerURI)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	// The reader replays the writer's WAL; give it a moment.
	var nearest int
	deadline := time.Now().Add(time.Minute)
	for {
		err = r.QueryRow(ctx, `SELECT id FROM docs ORDER BY embedding <=> '[1,0.05,0]' LIMIT 1`).Scan(&nearest)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if nearest != 1 {
		t.Fatalf("nearest document to [1,0.05,0] is %d, want 1", nearest)
	}
}
