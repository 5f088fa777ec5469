package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestKilledWriterRejoinsByRewind fails a writer over after a real kill -9 with its data left
// (its restart in place cannot bind its listen address, so it is not back within the grace
// period) and checks that the old writer comes back as a reader by pg_rewind, not by a fresh
// clone: the rejoin event says pg_rewind, no rewind-stuck or rewind-failed event is raised,
// and the data directory is the same one — its PG_VERSION (which pg_rewind never rewrites,
// while a clone removes the directory and pg_basebackup writes a new one) keeps its inode and
// the modification time the test stamped on it before the kill.
func TestKilledWriterRejoinsByRewind(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManager(t, newHome(t))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	d, acks := ackedCluster(t, ctx, m, "rw", 2, 3)
	w := connectTo(t, d.Endpoint)
	// Some megabytes the reader replays into its buffers: when it is promoted, its first
	// checkpoint (spread, about 0.1 s per dirty buffer) is still running when the old writer
	// is rewound, so the new writer's control file still names the old timeline. pg_rewind
	// compares those and, unless the new writer is checkpointed first, answers "no rewind
	// required" and leaves the old writer's WAL past the fork (the bench's rewind-stuck).
	if _, err := w.Exec(ctx, "CREATE TABLE bulk AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 40000) g"); err != nil {
		t.Fatal(err)
	}
	w.Close(ctx)
	acks.write(50)

	old := writerOf(d)
	c := m.mustCluster(t, "rw")
	c.mu.Lock()
	dir := c.memberRec(old.DBInstanceIdentifier).DataDir
	c.mu.Unlock()
	sysID := systemIdentifier(t, ctx, dir)
	marker := filepath.Join(dir, "PG_VERSION")
	stamp := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(marker, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(t, marker)
	// The restart in place fails: the postmaster cannot bind this address (TEST-NET-1, on no
	// interface here). pg_rewind's crash recovery runs a single-user server, which listens on
	// nothing, and the rewind replaces postgresql.auto.conf with the new writer's.
	_, d, before := killWriterNotRestartable(t, m, "rw", "listen_addresses = '192.0.2.1'")
	acks.check(d.Endpoint)
	acks.write(20)
	waitRejoined(t, m, "rw", old.DBInstanceIdentifier, acks)

	rejoined := eventAfter(t, m, "rw", "member.rejoined", before)
	if rejoined == nil || rejoined.Member != old.DBInstanceIdentifier || !strings.Contains(rejoined.Message, "by pg_rewind") {
		t.Fatalf("rejoin event: %+v, want %s rejoined by pg_rewind", rejoined, old.DBInstanceIdentifier)
	}
	for _, typ := range []string{"member.rewind-stuck", "member.rewind-failed"} {
		if ev := eventAfter(t, m, "rw", typ, before); ev != nil {
			t.Errorf("%s: %s", typ, ev.Message)
		}
	}
	if got := systemIdentifier(t, ctx, dir); got != sysID {
		t.Errorf("system identifier %s after the rejoin, was %s", got, sysID)
	}
	st, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(stamp) || inodeOf(t, marker) != ino {
		t.Errorf("PG_VERSION was rewritten (mtime %v, inode %d; before %v, %d): the data directory was cloned, not rewound", st.ModTime(), inodeOf(t, marker), stamp, ino)
	}
	t.Logf("rejoin: %s", rejoined.Message)

	// Every member's postgresql.auto.conf sets each setting once: the rejoined old writer's
	// (its rewind copied the new writer's file, which pg_basebackup -R had written, and the
	// rejoin set its recovery settings over it), the reader re-pointed by ALTER SYSTEM, and
	// the promoted reader's; and a reader's primary_conninfo names the current writer.
	// (TestSetAutoConfKeepsOneLinePerKey re-points one file several times.)
	d = m.mustDescribe(t, "rw")
	for _, mb := range d.DBClusterMembers {
		c.mu.Lock()
		mdir := c.memberRec(mb.DBInstanceIdentifier).DataDir
		c.mu.Unlock()
		data, err := os.ReadFile(filepath.Join(mdir, "postgresql.auto.conf"))
		if err != nil {
			t.Fatal(err)
		}
		lines := map[string][]string{}
		for _, line := range strings.Split(string(data), "\n") {
			if k, _, ok := strings.Cut(line, " = "); ok {
				lines[k] = append(lines[k], line)
			}
		}
		for k, ls := range lines {
			if len(ls) > 1 {
				t.Errorf("%s's postgresql.auto.conf sets %s %d times: %q", mb.DBInstanceIdentifier, k, len(ls), ls)
			}
		}
		if !mb.IsClusterWriter {
			want := fmt.Sprintf("port=%d ", writerOf(d).Port)
			if ls := lines["primary_conninfo"]; len(ls) != 1 || !strings.Contains(ls[0], want) {
				t.Errorf("%s's primary_conninfo %q does not name the writer (%s)", mb.DBInstanceIdentifier, ls, want)
			}
		}
	}
}

// ackedCluster creates cluster name (a writer and readers readers, grace period grace
// seconds), waits until it is available, and makes the table ackLog writes, with an ackLog on
// the cluster endpoint.
func ackedCluster(t *testing.T, ctx context.Context, m *Manager, name string, readers, grace int) (Description, *ackLog) {
	t.Helper()
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: name, Readers: readers, FailoverInput: FailoverInput{FailoverGraceSeconds: grace}}); err != nil {
		t.Fatal(err)
	}
	d, err := m.WaitAvailable(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	w := connectTo(t, d.Endpoint)
	defer w.Close(ctx)
	if _, err := w.Exec(ctx, "CREATE TABLE acked (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return d, &ackLog{t: t, addr: d.Endpoint}
}

// killWriterNotRestartable appends setting to the writer's postgresql.auto.conf (one its
// restart in place cannot start with), sends the writer SIGKILL, and waits for the failover it
// causes: the old writer, the description with the new writer, and the last event before.
func killWriterNotRestartable(t *testing.T, m *Manager, name, setting string) (MemberDescription, Description, uint64) {
	t.Helper()
	old := writerOf(m.mustDescribe(t, name))
	c := m.mustCluster(t, name)
	c.mu.Lock()
	dir := c.memberRec(old.DBInstanceIdentifier).DataDir
	c.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(setting + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := lastSeq(t, m)
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d := waitNewWriter(t, m, name, old.DBInstanceIdentifier, 90*time.Second)
	ev := waitEvent(t, m, name, "cluster.failover-completed", before)
	if !strings.Contains(ev.Message, "exited and was not back after the") {
		t.Fatalf("completion event: %s", ev.Message)
	}
	return old, d, before
}

func systemIdentifier(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	cd, err := pgproc.ControlData(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	id := cd["Database system identifier"]
	if id == "" {
		t.Fatalf("no system identifier in %s's control data", dir)
	}
	return id
}

func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}
