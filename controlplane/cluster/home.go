package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/safefile"
)

// The home directory's layout. The control plane's own files (store, API token, api.json,
// secrets, certificates) sit in directories only the control plane's user can write; the
// nodes' data, sockets and logs sit in one private directory per cluster that the nodes' OS
// user owns (mode 0700). So a node's OS user — which a database superuser can act as — can
// plant nothing where the control plane, perhaps root, writes.
//
//	<home>/                      control plane user, 0711 (the nodes' user may pass through)
//	<home>/state.db, api-token   0600
//	<home>/api.json              0644
//	<home>/secrets/              0700: generated master passwords, TLS key
//	<home>/clusters/             control plane user, 0711
//	<home>/clusters/<name>/      nodes' user, 0700: data dirs, sockets, server logs
const (
	homeMode       = 0o711
	clusterDirMode = 0o700
)

// PrepareHome creates the home directory, or takes back one an earlier version handed to the
// nodes' user, and checks that no other user can write in it or above it.
func PrepareHome(home string) error {
	return claimDir(home, homeMode)
}

// SecretsDir is where generated secrets live; it is created private (0700).
func SecretsDir(home string) (string, error) {
	dir := filepath.Join(home, "secrets")
	return dir, claimDir(dir, 0o700)
}

// claimDir makes dir (mode perm) owned by this process's user. A directory owned by the nodes'
// user is taken back (earlier versions chowned the home to it); its contents are then checked
// one by one as they are opened.
func claimDir(dir string, perm os.FileMode) error {
	if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		uid, separate, err := pgproc.ServerUID()
		if err != nil {
			return err
		}
		if separate && int(fi.Sys().(*syscall.Stat_t).Uid) == uid {
			if err := os.Lchown(dir, os.Geteuid(), os.Getegid()); err != nil {
				return fmt.Errorf("taking back %s from user %s: %w", dir, pgproc.ServerUser, err)
			}
		}
	}
	return safefile.MkdirPrivate(dir, perm)
}

// clusterDir is the nodes' private directory of one cluster.
func (m *Manager) clusterDir(name string) string {
	return filepath.Join(m.opts.Home, "clusters", name)
}

// checkSocketPath refuses a cluster whose nodes' socket path would not fit sun_path: the
// control plane reaches its nodes only through those sockets.
func (m *Manager) checkSocketPath(name string) error {
	sock := filepath.Join(m.clusterDir(name), ".s.PGSQL.65535")
	if len(sock) > 107 {
		return fieldErr("Name", "the nodes' socket path %s would be %d bytes, over the 107 a Unix socket allows: use a shorter home directory (--home)", sock, len(sock))
	}
	return nil
}

// ProtectedError is a delete refused by deletion protection.
type ProtectedError struct{ msg string }

func (e *ProtectedError) Error() string { return e.msg }
