package sql_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestRegress runs every test/sql/*.sql with pg_regress, installcheck style, against a
// throwaway preloaded server and compares with test/expected/.
func TestRegress(t *testing.T) {
	pgtest.RequireInstalled(t)
	s := pgtest.Start(t, pgtest.Options{Preload: true})

	files, err := filepath.Glob("test/sql/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no regression tests in test/sql: %v", err)
	}
	var tests []string
	for _, f := range files {
		tests = append(tests, strings.TrimSuffix(filepath.Base(f), ".sql"))
	}
	// Results land in test/results (git-ignored) so a failed run can be inspected and, once
	// reviewed, copied to test/expected.
	out, err := filepath.Abs("test")
	if err != nil {
		t.Fatal(err)
	}
	regress := filepath.Join(pgtest.PgConfig(t, "--pkglibdir"), "pgxs/src/test/regress/pg_regress")
	args := append([]string{
		"--inputdir=test", "--outputdir=" + out, "--bindir=" + pgtest.PgConfig(t, "--bindir"),
		"--host=127.0.0.1", "--port=" + strconv.Itoa(s.Port), "--user=postgres",
		"--dbname=borealis_regress",
	}, tests...)
	cmd := exec.Command(regress, args...)
	output, err := cmd.CombinedOutput()
	t.Logf("pg_regress:\n%s", output)
	if err != nil {
		diffs, _ := os.ReadFile(filepath.Join(out, "regression.diffs"))
		t.Fatalf("pg_regress failed: %v\n%s", err, diffs)
	}
}
