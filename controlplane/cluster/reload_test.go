package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestReloadOnTakesEffect: once reloadOn returns, a session that was idle through it sees the
// new value on its very next query. Returning at pg_reload_conf(), as applyInPlace once did,
// let that query race the postmaster's signal (the CI failure in TestModifyCurrentCapacity).
func TestReloadOnTakesEffect(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t, pgtest.Options{})
	idle := s.Connect("postgres")
	conf := filepath.Join(s.DataDir, "postgresql.auto.conf")
	base, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 1; i <= 20; i++ {
		want := fmt.Sprintf("%dMB", 1000+i)
		if err := os.WriteFile(conf, append(append([]byte{}, base...), "effective_cache_size = '"+want+"'\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := reloadOn(ctx, s.Node); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := idle.QueryRow(ctx, "SHOW effective_cache_size").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("round %d: an idle session's next query saw effective_cache_size = %s after reloadOn, want %s", i, got, want)
		}
	}
}
