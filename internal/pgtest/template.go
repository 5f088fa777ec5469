package pgtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/borealisdb/borealis/internal/pgproc"
)

// Every Start copies one data directory that initdb made (pgproc.Node.InitFrom) instead of
// running initdb: initdb costs 1-4 s of a 2-core machine per server, and pgext alone starts
// about 30 servers (make test's longest package, with the control plane's). The template lives
// in the temporary directory under a name keyed by the PostgreSQL install (bin directory,
// initdb's size and time) and initdb's flags, and is shared by test processes and later runs;
// it is made in a directory of its own and renamed into place, so a reader never sees a
// half-made one.
var template struct {
	once sync.Once
	dir  string
	err  error
}

// templateDataDir returns the template's data directory, making it on first use.
func templateDataDir(ctx context.Context) (string, error) {
	template.once.Do(func() { template.dir, template.err = makeTemplate(ctx) })
	return template.dir, template.err
}

func makeTemplate(ctx context.Context) (string, error) {
	initdb := filepath.Join(pgproc.BinDir(), "initdb")
	st, err := os.Stat(initdb)
	if err != nil {
		return "", fmt.Errorf("the PostgreSQL install: %w", err)
	}
	key := sha256.Sum256(fmt.Appendf(nil, "%s %d %d %d %q", initdb, st.Size(), st.ModTime().UnixNano(), os.Geteuid(), pgproc.InitdbFlags("")))
	final := filepath.Join(os.TempDir(), fmt.Sprintf("borealis-pgtest-template-%x", key[:8]))
	if err := checkTemplate(final); err == nil {
		return filepath.Join(final, templateData), nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "borealis-pgtest-template-new-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone once renamed; the loser of a race removes its own
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	// tmp stays this user's (checkTemplate); Init hands the server user the directory between.
	node, err := pgproc.New(pgproc.Config{DataDir: filepath.Join(tmp, templateData)})
	if err != nil {
		return "", err
	}
	if err := node.Init(ctx); err != nil {
		return "", fmt.Errorf("making the test servers' template: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if checkTemplate(final) != nil {
			return "", fmt.Errorf("placing the test servers' template at %s: %w", final, err)
		}
	}
	if err := checkTemplate(final); err != nil {
		return "", err
	}
	return filepath.Join(final, templateData), nil
}

// templateData is the data directory's place in the template directory.
const templateData = "pg/data"

// checkTemplate accepts dir only if this user made it (a directory, not a link, that nobody
// else may write) and initdb finished in it: /tmp is shared, and a server copied from a
// planted directory would run someone else's configuration.
func checkTemplate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(sys.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is not a test template this user made (owner, mode %v)", dir, fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, templateData, "PG_VERSION")); err != nil {
		return fmt.Errorf("%s: no finished data directory: %w", dir, err)
	}
	return nil
}
