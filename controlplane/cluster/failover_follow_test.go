package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestReaderThatCannotFollowIsRepaired checks the follow watch (failover_follow.go) on one
// asynchronous cluster of a writer and two readers, with real servers:
//
//  1. a reader whose WAL receiver cannot reach the writer (its primary_conninfo leads nowhere)
//     is found not following, stopped and rejoined, and streams again;
//  2. a reader AHEAD of the promoted one: fo-2 (tier 0) stops receiving (its WAL receiver
//     frozen) while fo-3 (tier 15) receives megabytes more; fo-3 is frozen through the
//     failover, so the choice cannot read its position, and the writer's data directory is
//     removed. fo-2 is promoted; fo-3 holds WAL of the old timeline past the fork and can never
//     follow the new writer. Without the repair it stayed "available" and fell behind forever
//     (the asynchronous bench's run 2); now it is found diverged (its position read again after
//     the promotion) or not following (the watch), rewound or cloned, and replays the new
//     writer's rows.
func TestReaderThatCannotFollowIsRepaired(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManagerWith(t, newHome(t), Options{HoldTimeout: 20 * time.Second, FollowBound: 6 * time.Second})
	// A long grace period: nothing here needs the writer judged by its probes (the failover
	// below is a removed data directory, promoted at once), and a writer starved by other
	// work on the machine (the tests run at nice 19 beside benchmarks) must not be failed over
	// in the middle of the first case.
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "fw", Readers: 2, FailoverInput: FailoverInput{FailoverGraceSeconds: 20}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, "fw")
	if err != nil {
		t.Fatal(err)
	}
	w := connectTo(t, d.Endpoint)
	if _, err := w.Exec(ctx, "CREATE TABLE rows (id bigint, pad text)"); err != nil {
		t.Fatal(err)
	}
	w.Close(ctx)

	// write inserts n rows through the cluster endpoint.
	write := func(n int) {
		t.Helper()
		c := connectTo(t, m.mustDescribe(t, "fw").Endpoint)
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "INSERT INTO rows SELECT g, repeat('x', 500) FROM generate_series(1, $1) g", n); err != nil {
			t.Fatal(err)
		}
	}
	// super connects as postgres to a member over its private socket.
	super := func(id string) *pgx.Conn {
		t.Helper()
		return superConnect(t, m, "fw", memberOf(m.mustDescribe(t, "fw"), id).Port)
	}
	// waitRepaired waits until id streams the writer's timeline as an unfenced, available
	// reader and holds every row the writer has.
	waitRepaired := func(id string) {
		t.Helper()
		// A wait for real state, as long as a rejoin may take while it makes progress (at load
		// 50 a rewind, the start and the first streaming took more than 3 minutes).
		waitFor(t, id+" to rejoin as an available reader", 5*time.Minute, func() bool {
			mb := memberOf(m.mustDescribe(t, "fw"), id)
			return !mb.IsClusterWriter && !mb.Fenced && mb.Status == StatusAvailable && mb.PID != 0
		})
		write(10)
		wc := connectTo(t, m.mustDescribe(t, "fw").Endpoint)
		var want int
		var tli int64
		if err := wc.QueryRow(ctx, "SELECT count(*), ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint FROM rows").Scan(&want, &tli); err != nil {
			t.Fatal(err)
		}
		rc := super(id)
		waitFor(t, fmt.Sprintf("%s to stream timeline %d and replay the writer's %d rows", id, tli, want), 2*time.Minute, func() bool {
			var n int
			var status *string
			var rtli *int64
			err := rc.QueryRow(ctx, "SELECT (SELECT count(*) FROM rows), (SELECT status FROM pg_stat_wal_receiver), (SELECT received_tli::bigint FROM pg_stat_wal_receiver)").Scan(&n, &status, &rtli)
			return err == nil && n == want && status != nil && *status == "streaming" && rtli != nil && *rtli == tli
		})
	}
	write(100)

	t.Run("WALReceiverCannotConnect", func(t *testing.T) {
		before := lastSeq(t, m)
		r := super("fw-3")
		// Port 1: nothing listens there. The reader's server runs and answers; only its WAL
		// receiver fails, again and again.
		for _, q := range []string{"ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres application_name=fw_3 connect_timeout=2'", "SELECT pg_reload_conf()"} {
			if _, err := r.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		r.Close(ctx)
		var ev *store.Event
		waitFor(t, "a member.not-following event for fw-3", 4*time.Minute, func() bool {
			ev = eventAfter(t, m, "fw", "member.not-following", before)
			return ev != nil
		})
		if ev.Member != "fw-3" || !strings.Contains(ev.Message, "not following the writer") || !strings.Contains(ev.Message, "rejoins by pg_rewind") {
			t.Fatalf("event: %+v", ev)
		}
		t.Logf("event: %s", ev.Message)
		waitRepaired("fw-3")
		if eventAfter(t, m, "fw", "member.rejoined", before) == nil {
			t.Fatal("no member.rejoined event")
		}
	})

	t.Run("ReaderAheadOfThePromotedOne", func(t *testing.T) {
		for id, tier := range map[string]int{"fw-2": 0, "fw-3": 15} {
			if _, err := m.ModifyMember("fw", id, ModifyMemberInput{PromotionTier: &tier}); err != nil {
				t.Fatal(err)
			}
		}
		d := m.mustDescribe(t, "fw")
		old := writerOf(d)
		if old.DBInstanceIdentifier != "fw-1" {
			t.Fatalf("writer %s, want fw-1", old.DBInstanceIdentifier)
		}
		a, b := memberOf(d, "fw-2"), memberOf(d, "fw-3")
		// fw-2 stops receiving: its WAL receiver is frozen (pg_stat_wal_receiver still says
		// streaming, so nothing notices).
		ac := super("fw-2")
		var rcvPID int
		if err := ac.QueryRow(ctx, "SELECT pid FROM pg_stat_wal_receiver").Scan(&rcvPID); err != nil {
			t.Fatal(err)
		}
		ac.Close(ctx)
		if err := syscall.Kill(rcvPID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		thawA := func() { syscall.Kill(rcvPID, syscall.SIGCONT) }
		defer thawA()
		write(20000) // about 12 MB of WAL that fw-3 receives and fw-2 does not
		wc := connectTo(t, d.Endpoint)
		var end string
		if err := wc.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&end); err != nil {
			t.Fatal(err)
		}
		wc.Close(ctx)
		bc := super("fw-3")
		waitFor(t, "fw-3 to receive everything", time.Minute, func() bool {
			var ok bool
			return bc.QueryRow(ctx, "SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn", end).Scan(&ok) == nil && ok
		})
		bc.Close(ctx)
		// fw-3 is frozen through the failover: the choice cannot read where it is.
		if err := signalTree(b.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		thawB := func() { signalTree(b.PID, syscall.SIGCONT) }
		defer thawB()
		before := lastSeq(t, m)
		dir, err := m.mustCluster(t, "fw").DataDir("fw-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		// The old writer is killed before the failover-started event: only then may fw-2
		// receive again (it would otherwise catch up from the live writer), and it must, for
		// its promotion stops its WAL receiver.
		waitEvent(t, m, "fw", "cluster.failover-started", before)
		thawA()
		time.Sleep(8 * time.Second) // the choice and the fresh positions give up on fw-3 after 3 s each
		thawB()
		nd := waitNewWriter(t, m, "fw", "fw-1", 2*time.Minute)
		if got := writerOf(nd).DBInstanceIdentifier; got != a.DBInstanceIdentifier {
			t.Fatalf("promoted %s, want fw-2 (tier 0)", got)
		}
		var how *store.Event
		waitFor(t, "fw-3 found diverged or not following", 2*time.Minute, func() bool {
			for _, typ := range []string{"member.diverged", "member.not-following"} {
				if ev := eventAfter(t, m, "fw", typ, before); ev != nil && ev.Member == "fw-3" {
					how = ev
					return true
				}
			}
			return false
		})
		t.Logf("%s: %s", how.Type, how.Message)
		waitRepaired("fw-3")
		waitRepaired("fw-1")
	})
}
