package pgproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// ServerUser is the account PostgreSQL programs run as when the caller is root.
const ServerUser = "postgres"

var (
	serverCredOnce sync.Once
	serverCred     *syscall.Credential
	serverCredErr  error
)

// credential returns the credential PostgreSQL programs must run with, or nil when the caller
// is not root and they can simply run as the caller.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	serverCredOnce.Do(func() {
		u, err := user.Lookup(ServerUser)
		if err != nil {
			serverCredErr = fmt.Errorf("running as root, PostgreSQL must run as user %q, which does not exist: %w (create it, or install postgresql with scripts/deps.sh)", ServerUser, err)
			return
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		serverCred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	})
	return serverCred, serverCredErr
}

// Command prepares a PostgreSQL program from the server's bin directory, run as the server
// user when the caller is root.
func Command(name string, args ...string) (*exec.Cmd, error) {
	return serverUserCommand(filepath.Join(BinDir(), name), args...)
}

// serverUserCommand is Command for any program (path), run as the server user when the caller
// is root.
func serverUserCommand(path string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	// Its own process group, so a Ctrl-C aimed at the caller's terminal does not reach the
	// server directly; the caller decides how the server stops. (Start makes the server a
	// session leader instead, which also gives it its own group.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd, nil
}

// PrepareDir creates dir (and parents) and hands it to the server user, so a server run as
// "postgres" can write there even when the caller is root.
func PrepareDir(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	cred, err := credential()
	if err != nil || cred == nil {
		return err
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("handing %s to user %s: %w", dir, ServerUser, err)
	}
	return nil
}

// BinDir is where the PostgreSQL 15 programs live. BOREALIS_PG_BINDIR overrides it.
func BinDir() string {
	if d := os.Getenv("BOREALIS_PG_BINDIR"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/15/bin"
}

// ServerUID is the uid PostgreSQL programs run as, and whether that differs from the caller
// (only when the caller is root).
func ServerUID() (uid int, separate bool, err error) {
	cred, err := credential()
	if err != nil || cred == nil {
		return os.Geteuid(), false, err
	}
	return int(cred.Uid), true, nil
}
