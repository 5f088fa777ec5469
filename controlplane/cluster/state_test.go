package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// tryConnect connects through an endpoint and runs one query, returning the server's error.
func tryConnect(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", addr))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	var one int
	return c.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func sqlStateOf(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func memberPIDs(d Description) []int {
	var out []int
	for _, m := range d.DBClusterMembers {
		out = append(out, m.PID)
	}
	return out
}

// TestPauseResumeStopStartReboot runs one cluster (writer and one reader) through auto-pause,
// resume on connect, a failed resume, stop/start and reboot, with real servers and clients.
func TestPauseResumeStopStartReboot(t *testing.T) {
	pgtest.RequireInstalled(t)
	t.Setenv(AutoPauseFloorEnv, "3")
	m := newManager(t, newHome(t))
	if _, err := m.Create(CreateInput{Name: "nap", Readers: 1, MinCapacity: 1, MaxCapacity: 4,
		AutoPause: true, SecondsUntilAutoPause: 3}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, "nap")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.Cluster("nap")
	writerDir := c.rec.Members[0].DataDir

	// An idle-in-transaction session is a connection: no pause while it is open.
	conn := connectTo(t, d.Endpoint)
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	if st := m.mustDescribe(t, "nap").Status; st != StatusAvailable {
		t.Fatalf("with a session idle in a transaction the cluster became %s", st)
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// Idle for 3 s: paused, nodes stopped, capacity 0, Aurora's event.
	since := lastSeq(t, m)
	waitFor(t, "the cluster to pause", 60*time.Second, func() bool { return m.mustDescribe(t, "nap").Status == StatusPaused })
	d = m.mustDescribe(t, "nap")
	if d.Capacity != 0 {
		t.Fatalf("paused cluster capacity %g, want 0", d.Capacity)
	}
	for _, mb := range d.DBClusterMembers {
		if mb.Status != StatusStopped || mb.Capacity != 0 || mb.PID != 0 {
			t.Fatalf("paused member: %+v", mb)
		}
	}
	if _, err := os.Stat(filepath.Join(writerDir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("writer postmaster.pid after pause: %v", err)
	}
	waitFor(t, "a cluster.paused event with Aurora's wording", 10*time.Second, func() bool {
		evs, _ := m.Events("nap", 0)
		for _, e := range evs {
			if e.Seq > since && e.Type == "cluster.paused" && e.Message == "The DB cluster is paused." {
				return true
			}
		}
		return false
	})

	// Resume on connect: the first client is held and then served, with no error; several
	// clients at once are all served.
	since = lastSeq(t, m)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- tryConnect(d.Endpoint, 90*time.Second) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("a client connecting to the paused cluster: %v", err)
		}
	}
	waitFor(t, "a cluster.resumed event", 10*time.Second, func() bool { return hasEvent(t, m, "nap", "", "cluster.resumed", since) })
	waitFor(t, "the reader to follow and the cluster to be available", 90*time.Second, func() bool {
		return m.mustDescribe(t, "nap").Status == StatusAvailable
	})
	if d2 := m.mustDescribe(t, "nap"); d2.Capacity != 1 || d2.DBClusterMembers[1].Capacity != 1 {
		t.Fatalf("resumed at capacity %g (reader %g), want the 1 ACU it paused at", d2.Capacity, d2.DBClusterMembers[1].Capacity)
	}

	// A resume that fails: held clients get 57P03 naming the cluster and the cause; once the
	// cause is gone the control plane's retries bring the cluster back.
	waitFor(t, "the cluster to pause again", 60*time.Second, func() bool { return m.mustDescribe(t, "nap").Status == StatusPaused })
	conf := filepath.Join(writerDir, "postgresql.auto.conf")
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append(append([]byte{}, orig...), "shared_buffers = 'not-a-size'\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	err = tryConnect(d.Endpoint, 60*time.Second)
	if sqlStateOf(err) != "57P03" || !strings.Contains(err.Error(), "nap") || !strings.Contains(err.Error(), "could not resume") {
		t.Fatalf("connecting while the writer cannot start: %v, want 57P03 naming cluster nap and the cause", err)
	}
	if err := os.WriteFile(conf, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a client to get through after the cause is fixed", 90*time.Second, func() bool {
		return tryConnect(d.Endpoint, 30*time.Second) == nil
	})

	// From here on auto-pause would race the steps below.
	if _, err := m.Modify("nap", ModifyInput{AutoPause: new(bool)}); err != nil {
		t.Fatal(err)
	}

	// Stop: clients are refused at once; start: they get through again.
	if _, err := m.Stop("nap"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cluster to stop", 60*time.Second, func() bool { return m.mustDescribe(t, "nap").Status == StatusStopped })
	began := time.Now()
	err = tryConnect(d.Endpoint, 30*time.Second)
	if sqlStateOf(err) != "57P03" || !strings.Contains(err.Error(), "stopped") || time.Since(began) > 10*time.Second {
		t.Fatalf("connecting to a stopped cluster: %v after %s, want an immediate 57P03", err, time.Since(began))
	}
	if _, err := m.Stop("nap"); err == nil {
		t.Fatal("stopping a stopped cluster succeeded")
	}
	if _, err := m.Start("nap"); err != nil {
		t.Fatal(err)
	}
	if err := tryConnect(d.Endpoint, 90*time.Second); err != nil {
		t.Fatalf("connecting after start: %v", err)
	}
	waitFor(t, "the cluster to be available after start", 90*time.Second, func() bool {
		return m.mustDescribe(t, "nap").Status == StatusAvailable
	})
	if _, err := m.Start("nap"); err == nil {
		t.Fatal("starting an available cluster succeeded")
	}

	// Reboot the writer: a new postmaster, an event, and clients get through.
	before := memberPIDs(m.mustDescribe(t, "nap"))
	since = lastSeq(t, m)
	if _, err := m.Reboot("nap", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reboot("nap", "nap-99"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reboot of an unknown instance: %v", err)
	}
	waitFor(t, "the writer to reboot", 90*time.Second, func() bool { return hasEvent(t, m, "nap", "nap-1", "member.rebooted", since) })
	if err := tryConnect(d.Endpoint, 60*time.Second); err != nil {
		t.Fatalf("connecting after reboot: %v", err)
	}
	after := memberPIDs(m.mustDescribe(t, "nap"))
	if after[0] == before[0] || after[0] == 0 || after[1] != before[1] {
		t.Fatalf("PIDs before reboot %v, after %v: want a new writer, the same reader", before, after)
	}
}
