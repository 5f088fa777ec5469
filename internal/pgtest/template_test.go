package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/borealisdb/borealis/internal/pgproc"
)

// TestServersFromTheTemplate: servers copied from the one template are separate clusters
// (a table made in one is not in the other), each with its own settings, and the template is
// left as it was; a copy onto an existing data directory is refused.
func TestServersFromTheTemplate(t *testing.T) {
	a := Start(t, Options{Settings: map[string]string{"work_mem": "'7MB'"}})
	b := Start(t, Options{})
	a.Exec("postgres", "CREATE TABLE only_in_a (id int)")
	if got := b.QueryValue("postgres", "SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'"); got != "0" {
		t.Fatalf("a table made on one test server is on another: %s", got)
	}
	if got, other := a.QueryValue("postgres", "SHOW work_mem"), b.QueryValue("postgres", "SHOW work_mem"); got != "7MB" || other == "7MB" {
		t.Fatalf("work_mem %s on the server that set it, %s on the other", got, other)
	}
	tmpl, err := templateDataDir(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(tmpl, "postgresql.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), "7MB") || strings.Contains(string(conf), a.SocketDir) {
		t.Fatal("a server's settings were written into the template")
	}
	if _, err := os.Stat(filepath.Join(tmpl, "postmaster.pid")); err == nil {
		t.Fatal("a server runs on the template")
	}
	n, err := pgproc.New(pgproc.Config{DataDir: b.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.InitFrom(context.Background(), tmpl); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("InitFrom onto an existing data directory: %v", err)
	}
}

// TestCheckTemplateRefusesWhatThisUserDidNotMake: a template directory others may write, a
// link, or one without a finished data directory is not used.
func TestCheckTemplateRefusesWhatThisUserDidNotMake(t *testing.T) {
	good := t.TempDir()
	if err := os.MkdirAll(filepath.Join(good, templateData), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkTemplate(good); err == nil {
		t.Fatal("a template without PG_VERSION accepted")
	}
	if err := os.WriteFile(filepath.Join(good, templateData, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(good, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkTemplate(good); err != nil {
		t.Fatalf("a finished template of this user refused: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if err := checkTemplate(link); err == nil {
		t.Fatal("a link accepted as the template")
	}
	if err := os.Chmod(good, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := checkTemplate(good); err == nil {
		t.Fatal("a template others may write accepted")
	}
}
