package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// maxRead bounds ReadFile: every file this package guards is small.
const maxRead = 1 << 20

// CheckDir verifies that dir is a real directory (not a symbolic link) owned by this process's
// user or root and writable by no one else, and that the same holds for every ancestor, except
// that a sticky ancestor writable by others (such as /tmp) is fine: nobody else can rename
// entries in it. Anything else would let another user swap the directory or its files.
func CheckDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	euid := uint32(os.Geteuid())
	for p, first := abs, true; ; p, first = filepath.Dir(p), false {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.Mode()&os.ModeSymlink != 0 && first:
			return fmt.Errorf("%s is a symbolic link: the control plane's directory must be a real directory", p)
		case fi.Mode()&os.ModeSymlink != 0:
			// A link above the directory is followed by everyone: check what it points to.
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return err
			}
			if err := CheckDir(real); err != nil {
				return fmt.Errorf("%s (through the link %s): %w", real, p, err)
			}
			return nil
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", p)
		case st.Uid != euid && st.Uid != 0:
			return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d) or root: another user could replace the control plane's files (chown it, or choose another --home)", p, st.Uid, euid)
		case first && fi.Mode().Perm()&0o022 != 0:
			return fmt.Errorf("%s has mode %04o: other users can create files in it (chmod go-w %s)", p, fi.Mode().Perm(), p)
		case !first && fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0:
			return fmt.Errorf("%s has mode %04o: other users can rename the directories in it (chmod go-w %s, or choose another --home)", p, fi.Mode().Perm(), p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// MkdirPrivate creates dir (mode perm, owned by this user) if it is missing, fixes its mode,
// and checks it with CheckDir.
func MkdirPrivate(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink == 0 && fi.IsDir() && fi.Sys().(*syscall.Stat_t).Uid == uint32(os.Geteuid()) {
		if err := os.Chmod(dir, perm); err != nil {
			return err
		}
	}
	return CheckDir(dir)
}

// open opens path without following a final symbolic link and without blocking on a FIFO,
// then checks that it is a regular file with one link.
func open(path string, flag int, perm os.FileMode) (*os.File, *syscall.Stat_t, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%s is a symbolic link: refused (remove it)", path)
		}
		return nil, nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, nil, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file: refused", path)
	}
	if st.Nlink != 1 {
		f.Close()
		return nil, nil, fmt.Errorf("%s has %d hard links: refused (a link could point at another file)", path, st.Nlink)
	}
	return f, &st, nil
}

// Open opens a regular file for reading in a directory another user may write (a node's data
// directory): a symbolic link, a hard link, a FIFO or a device there is refused. It does not
// check the owner.
func Open(path string) (*os.File, error) {
	f, _, err := open(path, os.O_RDONLY, 0)
	return f, err
}

// ReadFile reads a file the control plane owns: no symbolic link, a regular file owned by this
// process's user (or root when root is allowed), with no permission bits outside maxPerm.
func ReadFile(path string, maxPerm os.FileMode) ([]byte, error) {
	f, st, err := open(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if euid := uint32(os.Geteuid()); st.Uid != euid && st.Uid != 0 {
		return nil, fmt.Errorf("%s is owned by uid %d, not by this user (uid %d) or root: refused", path, st.Uid, euid)
	}
	if perm := os.FileMode(st.Mode) & os.ModePerm; perm&^maxPerm != 0 {
		return nil, fmt.Errorf("%s has mode %04o: other users can read or change it (chmod %o %s)", path, perm, maxPerm, path)
	}
	return io.ReadAll(io.LimitReader(f, maxRead))
}

// WriteFile replaces path with data (mode perm) atomically: the data goes to a new file created
// exclusively in the same directory, which is synced and renamed over path. A symbolic link at
// path is replaced, never followed. The directory must pass CheckDir.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := CheckDir(dir); err != nil {
		return err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	return Replace(path, filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(rnd[:])), data, perm, nil)
}

// Replace is WriteFile's replacement through the temporary name tmp (in path's directory), in
// a directory another user may write (a node's data directory, where the server expects its
// own temporary names): the new file is created exclusively, so a link planted at tmp makes it
// fail rather than be followed; owner, when not nil, chowns it before it is renamed over path.
func Replace(path, tmp string, data []byte, perm os.FileMode, owner *syscall.Credential) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, perm)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil { // umask may have narrowed it
		return err
	}
	if owner != nil {
		if err := f.Chown(int(owner.Uid), int(owner.Gid)); err != nil {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// OpenAppend opens a log file for appending, creating it with perm, in a directory another
// user may write (a node's): a symbolic link, a hard link or anything but a regular file there
// is refused rather than followed.
func OpenAppend(path string, perm os.FileMode) (*os.File, error) {
	// O_NONBLOCK only guards the open against a FIFO: open's f.Fd() makes the file blocking.
	f, _, err := open(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
	return f, err
}
