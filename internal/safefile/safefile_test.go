package safefile

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func privateDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "home")
	if err := MkdirPrivate(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPlantedSymlinkRefused: a link planted where the control plane reads, appends or writes
// never makes it touch the link's target.
func TestPlantedSymlinkRefused(t *testing.T) {
	dir := privateDir(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "api.json")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(link, 0o600); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("ReadFile through a link: %v, want a refusal naming the link", err)
	}
	if f, err := OpenAppend(link, 0o644); err == nil {
		f.Close()
		t.Errorf("OpenAppend followed a link")
	}
	if err := WriteFile(link, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Fatalf("the link's target was overwritten: %q", data)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink != 0 || fi.Mode().Perm() != 0o644 {
		t.Fatalf("after WriteFile, %s is %v (%v), want a regular 0644 file", link, fi.Mode(), err)
	}
	// A hard link to someone else's file is refused too.
	hard := filepath.Join(dir, "hard")
	if err := os.Link(victim, hard); err == nil {
		if _, err := OpenAppend(hard, 0o644); err == nil || !strings.Contains(err.Error(), "hard links") {
			t.Errorf("OpenAppend on a hard link: %v", err)
		}
	}
	// A FIFO would block a reader forever.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(fifo, 0o600); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadFile on a FIFO: %v", err)
	}
	// A link as the directory itself.
	linkDir := filepath.Join(t.TempDir(), "linkdir")
	if err := os.Symlink(dir, linkDir); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(linkDir, "x"), nil, 0o600); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("WriteFile into a linked directory: %v", err)
	}
}

func TestModeAndOwner(t *testing.T) {
	dir := privateDir(t)
	path := filepath.Join(dir, "token")
	if err := WriteFile(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(path, 0o600); err != nil || string(data) != "secret" {
		t.Fatalf("ReadFile: %q, %v", data, err)
	}
	os.Chmod(path, 0o640)
	if _, err := ReadFile(path, 0o600); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable file: %v", err)
	}
	os.Chmod(path, 0o600)
	os.Chmod(dir, 0o770)
	if err := WriteFile(path, nil, 0o600); err == nil || !strings.Contains(err.Error(), "chmod go-w") {
		t.Errorf("group-writable directory: %v", err)
	}
	os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 {
		return
	}
	// As root: a file or directory owned by another user (the nodes' user) is refused.
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("root test needs the postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	os.Chown(path, uid, -1)
	if _, err := ReadFile(path, 0o600); err == nil || !strings.Contains(err.Error(), "owned by uid") {
		t.Errorf("file owned by postgres: %v", err)
	}
	os.Chown(dir, uid, -1)
	if err := CheckDir(dir); err == nil || !strings.Contains(err.Error(), "owned by uid") {
		t.Errorf("directory owned by postgres: %v", err)
	}
}
