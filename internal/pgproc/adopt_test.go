package pgproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAdoptRunningServer starts a detached server, adopts it from a second Node as a restarted
// control plane would, and stops it through the adopted Node; a stopped server is not adoptable.
func TestAdoptRunningServer(t *testing.T) {
	root := testRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := New(Config{DataDir: filepath.Join(root, "data")})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())

	a, err := Adopt(Config{DataDir: n.DataDir, Port: n.Port})
	if err != nil {
		t.Fatal(err)
	}
	if a.PID() != n.PID() || !a.Running() {
		t.Fatalf("adopted pid %d running %v, want %d running", a.PID(), a.Running(), n.PID())
	}
	if err := a.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Adopt(Config{DataDir: n.DataDir, Port: n.Port + 1}); err == nil {
		t.Fatal("adopted with the wrong port")
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop when asked through the adopted Node")
	}
	if _, err := Adopt(Config{DataDir: n.DataDir, Port: n.Port}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("adopting a stopped server: %v, want ErrNotRunning", err)
	}
}

// testRoot is a directory the server user can enter, for a test's data directories; it is
// removed when the test ends.
func testRoot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "borealis-pgproc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := PrepareDir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}
