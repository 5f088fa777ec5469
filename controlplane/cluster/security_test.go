package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgproc"
)

// asNodeUser runs a shell command as the nodes' OS user (the same user when not root), as
// someone who took over a node — e.g. a database superuser through COPY ... TO PROGRAM — would.
func asNodeUser(t *testing.T, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if _, separate, _ := pgproc.ServerUID(); separate {
		cmd = exec.Command("runuser", "-u", pgproc.ServerUser, "--", "sh", "-c", script)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func statOf(t *testing.T, path string) (uid int, perm os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid), fi.Mode().Perm()
}

// TestControlPlaneFilesAndPlantedLinks: the home and clusters/ belong to the control plane and
// the nodes' user cannot write there; a link the nodes' user plants where the control plane
// opens a node's log is refused (the node does not start, the target is untouched), and the
// node comes back once the link is gone.
func TestControlPlaneFilesAndPlantedLinks(t *testing.T) {
	home := newHome(t)
	nodeUID, _, err := pgproc.ServerUID()
	if err != nil {
		t.Fatal(err)
	}
	// Earlier versions handed the home to the nodes' user: PrepareHome takes it back.
	if err := os.Chown(home, nodeUID, -1); err != nil {
		t.Fatal(err)
	}
	if err := PrepareHome(home); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, home)
	for _, dir := range []string{home, filepath.Join(home, "clusters")} {
		if uid, perm := statOf(t, dir); uid != os.Geteuid() || perm != 0o711 {
			t.Errorf("%s: uid %d mode %04o, want uid %d mode 0711", dir, uid, perm, os.Geteuid())
		}
	}
	if out, err := asNodeUser(t, "touch "+filepath.Join(home, "planted")+" || exit 3; exit 0"); err == nil && os.Geteuid() == 0 {
		t.Errorf("the nodes' user could create a file in the home: %s", out)
	}
	if _, err := m.Create(CreateInput{Name: "linked", Readers: 0}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, "linked")
	if err != nil {
		t.Fatal(err)
	}
	cdir := m.clusterDir("linked")
	if uid, perm := statOf(t, cdir); uid != nodeUID || perm != 0o700 {
		t.Errorf("%s: uid %d mode %04o, want the nodes' uid %d and 0700", cdir, uid, perm, nodeUID)
	}
	victim := filepath.Join(home, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writer := d.DBClusterMembers[0]
	logPath := filepath.Join(cdir, writer.DBInstanceIdentifier) + ".log"
	if out, err := asNodeUser(t, "ln -sf "+victim+" "+logPath+".new && mv -f "+logPath+".new "+logPath); err != nil {
		t.Fatalf("planting the link as the nodes' user: %v: %s", err, out)
	}
	after := lastSeq(t, m)
	if err := syscall.Kill(writer.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused restart", 2*time.Minute, func() bool {
		evs, _ := m.Events("linked", 0)
		for _, e := range evs {
			if e.Seq > after && e.Type == "member.start-failed" && strings.Contains(e.Message, "symbolic link") {
				return true
			}
		}
		return false
	})
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Fatalf("the control plane wrote through the planted link: %q", data)
	}
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitAvailable(ctx, "linked"); err != nil {
		t.Fatal(err)
	}
}
