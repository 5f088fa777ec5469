package cluster

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestSynchronousWithoutReader runs a synchronous cluster of a writer and one reader through
// the policy for a missing reader (the reader's processes stopped with SIGSTOP):
//   - strict (the default): a commit waits, describe says waiting-for-reader, and commits flow
//     again once the reader is thawed;
//   - with a 2 s fallback: the commit returns after about 2 s, the writer lists no synchronous
//     standby, describe says degraded-asynchronous, and when the writer's data is then lost no
//     reader is promoted automatically (it may miss what was acknowledged meanwhile) until the
//     user accepts that loss by switching the cluster to asynchronous mode.
func TestSynchronousWithoutReader(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManager(t, newHome(t))
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "ns", Readers: 1, FailoverInput: FailoverInput{
		DurabilityMode: failover.Synchronous, FailoverGraceSeconds: 2}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "synchronous_standby_names applied", 60*time.Second, func() bool {
		d = m.mustDescribe(t, "ns")
		return d.SynchronousStandbyNames == `ANY 1 ("ns_2")` && d.DurabilityStatus == failover.SyncOK
	})
	w := connectTo(t, d.Endpoint)
	if _, err := w.Exec(ctx, "CREATE TABLE acked (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reader in the synchronous quorum", 60*time.Second, func() bool {
		var n int
		return w.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum' AND application_name = 'ns_2'").Scan(&n) == nil && n == 1
	})
	acks := &ackLog{t: t, addr: d.Endpoint}
	acks.write(5)
	reader := memberOf(d, "ns-2")
	stopped := false
	// PostgreSQL's children make themselves process-group leaders (setsid), so the reader is
	// its postmaster and the postmaster's children.
	stop := func() {
		if err := signalTree(reader.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped = true
	}
	thaw := func() {
		if stopped {
			signalTree(reader.PID, syscall.SIGCONT)
			stopped = false
		}
	}
	defer thaw()

	// Strict: the commit waits until the reader is back. (A client that cancels the wait gets
	// PostgreSQL's "canceling wait for synchronous replication" warning and a committed row,
	// so the test waits instead of cancelling.)
	before := lastSeq(t, m)
	stop()
	done := make(chan error, 1)
	go func() {
		_, err := w.Exec(ctx, "INSERT INTO acked VALUES (0)")
		done <- err
	}()
	waitFor(t, "describe to say commits wait for a reader", 60*time.Second, func() bool {
		d = m.mustDescribe(t, "ns")
		return d.DurabilityStatus == failover.SyncNoReader && d.SynchronousStandbyNames != ""
	})
	if ev := waitEvent(t, m, "ns", "cluster.durability-"+failover.SyncNoReader, before); !strings.Contains(ev.Message, "strict") {
		t.Fatalf("event: %s", ev.Message)
	}
	select {
	case err := <-done:
		t.Fatalf("strict synchronous mode acknowledged a commit with its only reader stopped (%v)", err)
	case <-time.After(time.Second):
	}
	thaw()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting commit after the thaw: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the waiting commit did not return after the reader was thawed")
	}
	acks.acks = append(acks.acks, 0)
	acks.write(5) // waits until the reader flushes again
	waitFor(t, "describe to say synchronous again", 60*time.Second, func() bool {
		return m.mustDescribe(t, "ns").DurabilityStatus == failover.SyncOK
	})

	// Fallback after 2 s.
	fb := 2
	if d, err := m.Modify("ns", ModifyInput{SynchronousFallbackSeconds: &fb}); err != nil || d.SynchronousFallbackSeconds != 2 {
		t.Fatalf("modify: %v %+v", err, d)
	}
	bad := -3
	if _, err := m.Modify("ns", ModifyInput{SynchronousFallbackSeconds: &bad}); err == nil || !strings.Contains(err.Error(), "SynchronousFallbackSeconds") {
		t.Fatalf("bad fallback: %v", err)
	}
	safe, safeMax := len(acks.acks), acks.next // acknowledged while synchronous: must survive anything
	before = lastSeq(t, m)
	stop()
	start := time.Now()
	acks.write(1) // returns once the writer falls back
	waited := time.Since(start)
	if waited < 1500*time.Millisecond {
		t.Fatalf("the commit returned after %s, before the 2 s fallback", waited)
	}
	ev := waitEvent(t, m, "ns", "cluster.durability-"+failover.SyncDegraded, before)
	t.Logf("commit waited %s; %s", waited.Round(time.Millisecond), ev.Message)
	// The writer releases the waiting commit as soon as pg_reload_conf signals it, which can be
	// before the control plane's reload call has returned and describe shows the empty list.
	ok := false
	for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		d = m.mustDescribe(t, "ns")
		ok = d.DurabilityStatus == failover.SyncDegraded && d.SynchronousStandbyNames == "" && d.DurabilityStatusSince != nil
	}
	if !ok {
		t.Fatalf("describe while degraded: status %q names %q since %v", d.DurabilityStatus, d.SynchronousStandbyNames, d.DurabilityStatusSince)
	}
	acks.write(5) // asynchronous now: no wait

	// The writer's data is lost while degraded: no automatic promotion.
	c := m.mustCluster(t, "ns")
	c.mu.Lock()
	dir := c.memberRec("ns-1").DataDir
	c.mu.Unlock()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	blocked := waitEvent(t, m, "ns", "cluster.failover-blocked", before)
	if !strings.Contains(blocked.Message, "fell back to asynchronous") || eventAfter(t, m, "ns", "cluster.failover-started", before) != nil {
		t.Fatalf("failover while degraded: %s", blocked.Message)
	}
	// The user accepts the loss: asynchronous mode, and the reader is promoted.
	thaw()
	async := failover.Asynchronous
	if _, err := m.Modify("ns", ModifyInput{DurabilityMode: &async}); err != nil {
		t.Fatal(err)
	}
	d = waitNewWriter(t, m, "ns", "ns-1", 90*time.Second)
	nw := connectTo(t, d.Endpoint)
	var n int
	if err := nw.QueryRow(ctx, "SELECT count(*) FROM acked WHERE id <= $1", safeMax).Scan(&n); err != nil || n != safe {
		t.Fatalf("ids acknowledged while synchronous: %d of %d on the new writer (%v)", n, safe, err)
	}
	if err := nw.QueryRow(ctx, "SELECT count(*) FROM acked WHERE id > $1", safeMax).Scan(&n); err == nil {
		t.Logf("acknowledged while degraded: %d of %d kept", n, len(acks.acks)-safe)
	}
}

// signalTree sends sig to a postmaster and every process under it.
func signalTree(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		return err
	}
	for _, c := range pgproc.Descendants(pid) {
		_ = syscall.Kill(c, sig)
	}
	return nil
}
