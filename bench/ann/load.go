package ann

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/bench/dataset"
)

// table is the one table a run creates (and replaces) in the target database.
const table = "bench_items"

// loadTable (re)creates the table and fills it with binary COPY: pgvector-go encodes each
// vector in pgvector's binary format, so no float is ever formatted as text.
func loadTable(ctx context.Context, conn *pgx.Conn, d *dataset.Dataset, logf func(string, ...any)) error {
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id int4 NOT NULL, cat int4 NOT NULL DEFAULT 999, embedding %s NOT NULL)", table, columnType(d))); err != nil {
		return fmt.Errorf("creating %s: %w", table, err)
	}
	src := &rowSource{d: d, step: max(1, d.N()/20), logf: logf, gate: throttle(2 * time.Second)}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "cat", "embedding"}, src)
	if err != nil {
		return fmt.Errorf("COPY into %s: %w", table, err)
	}
	if int(n) != d.N() {
		return fmt.Errorf("COPY into %s wrote %d rows of %d", table, n, d.N())
	}
	// Statistics for the planner and hint bits set now, so the sweep's first queries do not
	// pay for them.
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+table); err != nil {
		return err
	}
	return nil
}

// rowSource feeds COPY one base vector at a time and reports progress every tenth.
type rowSource struct {
	d    *dataset.Dataset
	next int
	step int
	logf func(string, ...any)
	gate func(bool) bool
}

func (s *rowSource) Next() bool {
	if s.next > 0 && s.next%s.step == 0 && s.gate(false) {
		s.logf("load: %d/%d rows (%d%%)", s.next, s.d.N(), 100*s.next/s.d.N())
	}
	s.next++
	return s.next <= s.d.N()
}

func (s *rowSource) Values() ([]any, error) {
	i := s.next - 1
	return []any{int32(i), catOf(i), rowValue(s.d, i)}, nil
}

func (s *rowSource) Err() error { return nil }
