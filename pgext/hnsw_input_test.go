package pgext_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// Bad input through binary COPY: NaN and infinity are refused (by pgvector's binary input,
// with the engine's own check behind it), a zero vector under cosine is refused with the
// row named, and nothing of a refused COPY reaches the table or the index.
func TestHNSWBinaryCopyRefusesBadVectors(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true})
	conn := s.Connect("postgres")
	ctx := context.Background()
	if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "CREATE TABLE docs (id int, embedding vector(3))")
	mustExec(t, conn, "CREATE INDEX docs_idx ON docs USING borealis_hnsw (embedding vector_cosine_ops)")
	copyRows := func(rows ...[]float32) error {
		src := make([][]any, len(rows))
		for i, r := range rows {
			src[i] = []any{i + 1, pgvector.NewVector(r)}
		}
		_, err := conn.CopyFrom(ctx, pgx.Identifier{"docs"}, []string{"id", "embedding"}, pgx.CopyFromRows(src))
		return err
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name string
		bad  []float32
		want string
	}{
		{"NaN", []float32{1, nan, 1}, "NaN"},
		{"infinity", []float32{inf, 1, 1}, "infinite"},
		{"zero under cosine", []float32{0, 0, 0}, "zero vector"},
	} {
		err := copyRows([]float32{1, 2, 3}, c.bad)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("binary COPY of a %s vector: want an error mentioning %q, got %v", c.name, c.want, err)
		}
		t.Logf("%s: %v", c.name, err)
	}
	if got := s.QueryValue("postgres", "SELECT count(*) FROM docs"); got != "0" {
		t.Fatalf("refused COPYs left %s rows", got)
	}
	if err := copyRows([]float32{1, 2, 3}, []float32{3, 2, 1}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "SET enable_seqscan = off")
	if ids := topK(t, conn, "docs", "<=>", []float32{1, 2, 3}, 5); len(ids) != 2 || ids[0] != 1 {
		t.Fatalf("after the good COPY: %v", ids)
	}
	requireChecked(t, s, "docs_idx")
}
