package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/pgtest"
)

func writerOf(d Description) MemberDescription {
	for _, mb := range d.DBClusterMembers {
		if mb.IsClusterWriter {
			return mb
		}
	}
	return MemberDescription{}
}

func memberOf(d Description, id string) MemberDescription {
	for _, mb := range d.DBClusterMembers {
		if mb.DBInstanceIdentifier == id {
			return mb
		}
	}
	return MemberDescription{}
}

func eventAfter(t *testing.T, m *Manager, cluster, typ string, after uint64) *store.Event {
	evs, err := m.Events(cluster, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if evs[i].Seq > after && evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

// ackLog writes unique ids through the cluster endpoint and remembers the acknowledged ones.
type ackLog struct {
	t    *testing.T
	addr string
	next int
	acks []int
}

func (a *ackLog) write(n int) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, testDSN(a.addr))
	if err != nil {
		a.t.Fatalf("connecting to the cluster endpoint: %v", err)
	}
	defer c.Close(context.Background())
	for i := 0; i < n; i++ {
		a.next++
		if _, err := c.Exec(ctx, "INSERT INTO acked VALUES ($1)", a.next); err != nil {
			a.t.Fatalf("insert %d: %v", a.next, err)
		}
		a.acks = append(a.acks, a.next)
	}
}

// check asserts every acknowledged id is on the node at addr exactly once.
func (a *ackLog) check(addr string) {
	a.t.Helper()
	c := connectTo(a.t, addr)
	var n, distinct, maxID int
	if err := c.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT id), coalesce(max(id), 0) FROM acked").Scan(&n, &distinct, &maxID); err != nil {
		a.t.Fatal(err)
	}
	if n != len(a.acks) || distinct != n || maxID != a.next {
		a.t.Fatalf("on %s: %d rows (%d distinct, max %d), want the %d acknowledged ids up to %d", addr, n, distinct, maxID, len(a.acks), a.next)
	}
}

func waitEvent(t *testing.T, m *Manager, cluster, typ string, after uint64) *store.Event {
	t.Helper()
	var ev *store.Event
	waitFor(t, "a "+typ+" event", 30*time.Second, func() bool {
		ev = eventAfter(t, m, cluster, typ, after)
		return ev != nil
	})
	return ev
}

// waitNewWriter waits for a completed failover away from old and returns the description.
func waitNewWriter(t *testing.T, m *Manager, name, old string, timeout time.Duration) Description {
	t.Helper()
	var d Description
	waitFor(t, "a new writer", timeout, func() bool {
		d = m.mustDescribe(t, name)
		w := writerOf(d)
		return w.DBInstanceIdentifier != "" && w.DBInstanceIdentifier != old && w.Status == StatusAvailable && d.Status == StatusAvailable
	})
	return d
}

// waitRejoined waits until id is an available, unfenced reader in recovery that has replayed
// every acknowledged id.
func waitRejoined(t *testing.T, m *Manager, name, id string, acks *ackLog) {
	t.Helper()
	// A wait for real state, as long as a rejoin may take while it makes progress.
	waitFor(t, id+" to rejoin as a reader", 5*time.Minute, func() bool {
		mb := memberOf(m.mustDescribe(t, name), id)
		return !mb.IsClusterWriter && !mb.Fenced && mb.Status == StatusAvailable
	})
	mb := memberOf(m.mustDescribe(t, name), id)
	c := connectTo(t, fmt.Sprintf("127.0.0.1:%d", mb.Port))
	var inRecovery bool
	if err := c.QueryRow(context.Background(), "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("%s after rejoining: in recovery %v (%v)", id, inRecovery, err)
	}
	waitFor(t, id+" to replay every acknowledged id", 60*time.Second, func() bool {
		var n int
		return c.QueryRow(context.Background(), "SELECT count(*) FROM acked").Scan(&n) == nil && n == len(acks.acks)
	})
}

// TestFailover runs one cluster of a writer and two readers (grace period 3 s) through bad
// requests, a switchover, a frozen writer that is thawed after the failover, a writer whose
// data directory is removed, and a writer killed with its data intact (restarted in place).
// After each, every acknowledged id must be on the new writer and the readers must follow.
func TestFailover(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManager(t, newHome(t))
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "fo", Readers: 2, FailoverInput: FailoverInput{FailoverGraceSeconds: 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "solo", Readers: 0}); err != nil {
		t.Fatal(err)
	}
	// ctx bounds every query of the subtests, which run one after the other for about 6 min
	// under -race at load 30 (a single 4 min bound expired in DataDirectoryRemovedPromotes);
	// each wait for an event or state has its own bound.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	avail, cancelAvail := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelAvail()
	d, err := m.WaitAvailable(avail, "fo")
	if err != nil {
		t.Fatal(err)
	}
	if d.DurabilityMode != "asynchronous" || d.FailoverGraceSeconds != 3 {
		t.Fatalf("describe: mode %q grace %d", d.DurabilityMode, d.FailoverGraceSeconds)
	}
	w := connectTo(t, d.Endpoint)
	if _, err := w.Exec(ctx, "CREATE TABLE acked (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w.Close(ctx)
	acks := &ackLog{t: t, addr: d.Endpoint}
	acks.write(50)
	ids := []string{"fo-1", "fo-2", "fo-3"}

	t.Run("BadInput", func(t *testing.T) {
		before := m.mustDescribe(t, "fo")
		var fe *FailoverError
		for target, want := range map[string]string{
			"fo-9": `"fo-9" is not a member`,
			"fo-1": "already the writer",
		} {
			if _, err := m.Failover(ctx, "fo", target); !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
				t.Errorf("failover to %s: %v, want %q", target, err, want)
			}
		}
		if _, err := m.Failover(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown cluster: %v", err)
		}
		if _, err := m.WaitAvailable(avail, "solo"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Failover(ctx, "solo", ""); !errors.As(err, &fe) || !strings.Contains(err.Error(), "no available reader") {
			t.Errorf("failover without a reader: %v", err)
		}
		if writerOf(m.mustDescribe(t, "solo")).DBInstanceIdentifier != "solo-1" {
			t.Error("the solo cluster changed")
		}
		for _, tier := range []int{-1, 16} {
			if _, err := m.ModifyMember("fo", "fo-2", ModifyMemberInput{PromotionTier: &tier}); err == nil || !strings.Contains(err.Error(), "use 0") {
				t.Errorf("tier %d: %v", tier, err)
			}
		}
		tier := 0
		if _, err := m.ModifyMember("fo", "fo-7", ModifyMemberInput{PromotionTier: &tier}); !errors.Is(err, ErrMemberNotFound) {
			t.Errorf("unknown member: %v", err)
		}
		mode := "quorum"
		if _, err := m.Modify("fo", ModifyInput{DurabilityMode: &mode}); err == nil || !strings.Contains(err.Error(), "not a durability mode") {
			t.Errorf("bad mode: %v", err)
		}
		after := m.mustDescribe(t, "fo")
		if writerOf(after).DBInstanceIdentifier != writerOf(before).DBInstanceIdentifier || after.DurabilityMode != "asynchronous" ||
			memberOf(after, "fo-2").PromotionTier != 1 {
			t.Fatalf("a refused request changed the cluster: %+v", after)
		}
	})

	t.Run("SwitchoverByTier", func(t *testing.T) {
		tier := 0
		if _, err := m.ModifyMember("fo", "fo-3", ModifyMemberInput{PromotionTier: &tier}); err != nil {
			t.Fatal(err)
		}
		// An idle session with session state, through the cluster endpoint, and one in a
		// transaction.
		idle := connectTo(t, m.mustDescribe(t, "fo").Endpoint)
		if _, err := idle.Exec(ctx, "SET application_name = 'moved-by-failover'"); err != nil {
			t.Fatal(err)
		}
		if _, err := idle.Prepare(ctx, "count_acked", "SELECT count(*) FROM acked"); err != nil {
			t.Fatal(err)
		}
		inTx := connectTo(t, m.mustDescribe(t, "fo").Endpoint)
		if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		before := lastSeq(t, m)
		d, err := m.Failover(ctx, "fo", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := writerOf(d).DBInstanceIdentifier; got != "fo-3" {
			t.Fatalf("switchover chose %s, want fo-3 (tier 0)", got)
		}
		ev := eventAfter(t, m, "fo", "cluster.failover-completed", before)
		// The choice compared positions on the cluster's history: everyone on timeline 1.
		if ev == nil || !strings.Contains(ev.Message, "Completed failover of DB cluster fo to DB instance fo-3") || !strings.Contains(ev.Message, "downtime") ||
			!strings.Contains(ev.Message, "on timeline 1 of the cluster's timeline 1") {
			t.Fatalf("completion event: %+v", ev)
		}
		if eventAfter(t, m, "fo", "cluster.failover-started", before) == nil {
			t.Fatal("no failover-started event")
		}
		acks.check(d.Endpoint)
		// The idle session moved to the new writer with its state; the one in a transaction got
		// a retryable error.
		var app string
		var port, n int
		var inRecovery bool
		if err := idle.QueryRow(ctx, "SELECT current_setting('application_name'), current_setting('port')::int, pg_is_in_recovery()").Scan(&app, &port, &inRecovery); err != nil ||
			app != "moved-by-failover" || port != writerOf(d).Port || inRecovery {
			t.Fatalf("idle session after the switchover: %q port %d (writer %d) in recovery %v: %v", app, port, writerOf(d).Port, inRecovery, err)
		}
		if err := idle.QueryRow(ctx, "count_acked").Scan(&n); err != nil || n != len(acks.acks) {
			t.Fatalf("prepared statement after the move: %d, %v", n, err)
		}
		if _, err := inTx.Exec(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "57P01") {
			t.Fatalf("session in a transaction: %v, want a retryable 57P01", err)
		}
		acks.write(20)
		acks.check(d.Endpoint)
		waitRejoined(t, m, "fo", "fo-1", acks)
		waitRejoined(t, m, "fo", "fo-2", acks)
	})

	t.Run("FrozenWriterFencedAndThawedTakesNoWrite", func(t *testing.T) {
		d := m.mustDescribe(t, "fo")
		old := writerOf(d)
		// A session opened straight to the writer before it freezes.
		direct := connectTo(t, fmt.Sprintf("127.0.0.1:%d", old.Port))
		acks.write(10)
		for _, id := range ids {
			if id != old.DBInstanceIdentifier {
				waitRejoined(t, m, "fo", id, acks)
			}
		}
		before := lastSeq(t, m)
		frozen := time.Now()
		// The whole server freezes: the postmaster and every process under it (PostgreSQL's
		// children are their own process groups).
		// The postmaster first, so that it forks nothing more while its children are listed
		// (a backend forked in between would go on serving the prober); a child may end
		// between its listing and its stop (a probe's backend lives for a moment).
		if err := syscall.Kill(old.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		tree := []int{old.PID}
		for _, pid := range pgproc.Descendants(old.PID) {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err == nil {
				tree = append(tree, pid)
			} else if !errors.Is(err, syscall.ESRCH) {
				t.Fatal(err)
			}
		}
		thawed := false
		thaw := func() {
			for _, pid := range tree {
				syscall.Kill(pid, syscall.SIGCONT)
			}
			thawed = true
		}
		defer func() {
			if !thawed {
				thaw()
			}
		}()
		d = waitNewWriter(t, m, "fo", old.DBInstanceIdentifier, 60*time.Second)
		waitEvent(t, m, "fo", "cluster.failover-completed", before)
		detected := eventAfter(t, m, "fo", "cluster.failover-started", before)
		// A stopped postmaster (state T) is certain: promoted after half the grace period from
		// the first failed probe's start. That probe may have been in flight when the server
		// froze, so it started up to one probe timeout before (not one probe interval: under
		// load a probe lasts longer than the interval, and one began 0.29 s before the freeze).
		if detected == nil || detected.Time.Sub(frozen) < 1500*time.Millisecond-writerProbeTimeout(3*time.Second) {
			t.Fatalf("failover started %v after the freeze, before half the 3 s grace period: %+v", detected.Time.Sub(frozen), detected)
		}
		ev := eventAfter(t, m, "fo", "cluster.failover-completed", before)
		// The promoted reader followed the switchover's timeline 2, and the writer's probe
		// told the choice the cluster was on it.
		if ev == nil || !strings.Contains(ev.Message, "probes failing") || !strings.Contains(ev.Message, "stopped (state T): frozen") ||
			!strings.Contains(ev.Message, "on timeline 2 of the cluster's timeline 2") {
			t.Fatalf("completion event: %+v", ev)
		}
		t.Logf("frozen writer: %s", ev.Message)
		if f := eventAfter(t, m, "fo", "member.fenced", before); f == nil || f.Seq > ev.Seq {
			t.Fatalf("fenced event %+v must precede the completion %+v", f, ev)
		}
		// Fencing killed every frozen process, backends included: none can finish a commit
		// when thawed.
		for _, pid := range tree {
			if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(data), ") Z ") {
				t.Errorf("process %d of the fenced writer is still alive: %s", pid, data)
			}
		}
		thaw()
		// The thawed old writer's session must not take a write.
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := direct.Exec(wctx, "INSERT INTO acked VALUES (-1)")
		wcancel()
		if err == nil {
			t.Fatal("the thawed old writer accepted a write")
		}
		acks.check(d.Endpoint)
		acks.write(10)
		waitRejoined(t, m, "fo", old.DBInstanceIdentifier, acks)
		// Not even through a new session: it is a reader now.
		c := connectTo(t, fmt.Sprintf("127.0.0.1:%d", old.Port))
		if _, err := c.Exec(ctx, "INSERT INTO acked VALUES (-2)"); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("write on the rejoined old writer: %v", err)
		}
	})

	t.Run("DataDirectoryRemovedPromotes", func(t *testing.T) {
		d := m.mustDescribe(t, "fo")
		old := writerOf(d)
		// An idle session with state, and one in a transaction, through the cluster endpoint.
		idle := connectTo(t, d.Endpoint)
		if _, err := idle.Exec(ctx, "SET application_name = 'kept-by-failover'"); err != nil {
			t.Fatal(err)
		}
		inTx := connectTo(t, d.Endpoint)
		if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := inTx.Exec(ctx, "INSERT INTO acked VALUES (-3)"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond) // idle past the router's snapshot interval (1 s)
		before := lastSeq(t, m)
		dir := ""
		m.mustCluster(t, "fo").mu.Lock()
		dir = m.mustCluster(t, "fo").memberRec(old.DBInstanceIdentifier).DataDir
		m.mustCluster(t, "fo").mu.Unlock()
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		d = waitNewWriter(t, m, "fo", old.DBInstanceIdentifier, 60*time.Second)
		ev := waitEvent(t, m, "fo", "cluster.failover-completed", before)
		if !strings.Contains(ev.Message, "data directory") {
			t.Fatalf("completion event: %+v", ev)
		}
		acks.check(d.Endpoint)
		// The idle session carries on on the new writer with its settings (the router's crash
		// replay); the one in a transaction gets a retryable connection error saying why.
		var app string
		var port int
		var inRecovery bool
		if err := idle.QueryRow(ctx, "SELECT current_setting('application_name'), current_setting('port')::int, pg_is_in_recovery()").Scan(&app, &port, &inRecovery); err != nil ||
			app != "kept-by-failover" || port != writerOf(d).Port || inRecovery {
			t.Fatalf("idle session after the automatic failover: %q port %d (writer %d) in recovery %v: %v", app, port, writerOf(d).Port, inRecovery, err)
		}
		_, err := inTx.Exec(ctx, "COMMIT")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "08006" || !strings.Contains(pe.Message, "unknown outcome") {
			t.Fatalf("session in a transaction after the automatic failover: %v, want 08006 saying the outcome is unknown", err)
		}
		acks.write(10)
		waitRejoined(t, m, "fo", old.DBInstanceIdentifier, acks)
		if eventAfter(t, m, "fo", "member.rewind-failed", before) == nil {
			t.Error("the old writer without data should have been cloned afresh")
		}
	})

	t.Run("Kill9NotRestartableWithinGracePromotes", func(t *testing.T) {
		// kill -9 with the data left, but the server cannot come back (a setting it refuses
		// to start with): the restart in place fails within the grace period, so a reader is
		// promoted, and the old writer rejoins (its rewind starts it too, so it is cloned).
		old, d, before := killWriterNotRestartable(t, m, "fo", "shared_buffers = 'not-a-size'")
		if eventAfter(t, m, "fo", "member.start-failed", before) == nil {
			t.Error("no restart in place was tried before the promotion")
		}
		acks.check(d.Endpoint)
		acks.write(10)
		waitRejoined(t, m, "fo", old.DBInstanceIdentifier, acks)
	})

	t.Run("Kill9WithDataRestartsInPlace", func(t *testing.T) {
		// Crash recovery on a loaded machine can take more than 3 s: a grace period that covers
		// it keeps the restart in place (the restart is bounded by the grace period). At load
		// 35-40 under -race, a niced writer's crash recovery was still running after 30 s.
		g := 120
		if d, err := m.Modify("fo", ModifyInput{FailoverGraceSeconds: &g}); err != nil || d.FailoverGraceSeconds != g {
			t.Fatalf("modify grace: %v %+v", err, d)
		}
		d := m.mustDescribe(t, "fo")
		old := writerOf(d)
		before := lastSeq(t, m)
		if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the writer restarted in place", time.Duration(g+60)*time.Second, func() bool {
			return hasEvent(t, m, "fo", old.DBInstanceIdentifier, "member.restarted", before) &&
				writerOf(m.mustDescribe(t, "fo")).Status == StatusAvailable
		})
		if got := writerOf(m.mustDescribe(t, "fo")).DBInstanceIdentifier; got != old.DBInstanceIdentifier {
			t.Fatalf("kill -9 with intact data failed over to %s instead of restarting %s", got, old.DBInstanceIdentifier)
		}
		if eventAfter(t, m, "fo", "cluster.failover-started", before) != nil {
			t.Fatal("a failover started for a writer that only needed a restart")
		}
		acks.write(10)
		acks.check(d.Endpoint)
	})
}

func (m *Manager) mustCluster(t *testing.T, name string) *Cluster {
	c, err := m.Cluster(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSynchronousFailoverKeepsEveryAcknowledgedCommit runs a synchronous cluster whose
// preferred reader (tier 0) has stopped receiving WAL: commits are still acknowledged (the other
// reader flushes them), and when the writer's data is lost the failover must pass over the
// tier-0 reader, which misses acknowledged commits, for the one that has them all.
func TestSynchronousFailoverKeepsEveryAcknowledgedCommit(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManager(t, newHome(t))
	tier := 1
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "sy", Readers: 2, FailoverInput: FailoverInput{
		DurabilityMode: "synchronous", FailoverGraceSeconds: 3, PromotionTier: &tier}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, "sy")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "synchronous_standby_names applied", 30*time.Second, func() bool {
		return m.mustDescribe(t, "sy").SynchronousStandbyNames == `ANY 1 ("sy_2", "sy_3")`
	})
	d = m.mustDescribe(t, "sy")
	if d.DurabilityMode != "synchronous" {
		t.Fatalf("describe: %+v", d)
	}
	w := connectTo(t, d.Endpoint)
	waitFor(t, "both readers in the synchronous quorum", 30*time.Second, func() bool {
		var n int
		return w.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum' AND application_name IN ('sy_2', 'sy_3')").Scan(&n) == nil && n == 2
	})
	if _, err := w.Exec(ctx, "CREATE TABLE acked (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w.Close(ctx)
	acks := &ackLog{t: t, addr: d.Endpoint}
	acks.write(20)

	// sy-2 becomes the preferred reader, then stops receiving.
	zero := 0
	if _, err := m.ModifyMember("sy", "sy-2", ModifyMemberInput{PromotionTier: &zero}); err != nil {
		t.Fatal(err)
	}
	r2 := superConnect(t, m, "sy", memberOf(d, "sy-2").Port) // ALTER SYSTEM below
	waitFor(t, "sy-2 to replay the first ids", 30*time.Second, func() bool {
		var n int
		return r2.QueryRow(ctx, "SELECT count(*) FROM acked").Scan(&n) == nil && n == 20
	})
	for _, q := range []string{"ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()"} {
		if _, err := r2.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "sy-2's WAL receiver to stop", 30*time.Second, func() bool {
		var n int
		return r2.QueryRow(ctx, "SELECT count(*) FROM pg_stat_wal_receiver").Scan(&n) == nil && n == 0
	})
	acks.write(30) // acknowledged: sy-3 flushed them

	before := lastSeq(t, m)
	c := m.mustCluster(t, "sy")
	c.mu.Lock()
	dir := c.memberRec("sy-1").DataDir
	c.mu.Unlock()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	d = waitNewWriter(t, m, "sy", "sy-1", 60*time.Second)
	ev := waitEvent(t, m, "sy", "cluster.failover-completed", before)
	if got := writerOf(d).DBInstanceIdentifier; got != "sy-3" {
		t.Fatalf("synchronous failover promoted %s (tier 0, missing commits), want sy-3: %s", got, ev.Message)
	}
	if !strings.Contains(ev.Message, "sy-2 (synchronous mode and") {
		t.Errorf("the event should say why sy-2 was passed over: %s", ev.Message)
	}
	acks.check(d.Endpoint)
	// sy-2 follows the new writer (its primary_conninfo is set again) and catches up.
	waitFor(t, "sy-2 to follow the new writer and replay every id", 90*time.Second, func() bool {
		var n int
		return r2.QueryRow(ctx, "SELECT count(*) FROM acked").Scan(&n) == nil && n == len(acks.acks)
	})
	waitFor(t, "synchronous_standby_names on the new writer", 30*time.Second, func() bool {
		return m.mustDescribe(t, "sy").SynchronousStandbyNames == `ANY 1 ("sy_1", "sy_2")`
	})
	acks.write(5)
	waitRejoined(t, m, "sy", "sy-1", acks)

	// A switchover in synchronous mode loses nothing either.
	d, err = m.Failover(ctx, "sy", "sy-1")
	if err != nil || writerOf(d).DBInstanceIdentifier != "sy-1" {
		t.Fatalf("switchover to sy-1: %v (writer %s)", err, writerOf(d).DBInstanceIdentifier)
	}
	acks.check(d.Endpoint)
	acks.write(5)
	acks.check(d.Endpoint)
}
