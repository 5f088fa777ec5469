package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// newHome makes a control-plane home the nodes' user can pass through, removed after the test.
func newHome(t *testing.T) string {
	t.Helper()
	home, err := os.MkdirTemp("", "borealis-cp-")
	if err != nil {
		t.Fatal(err)
	}
	if err := PrepareHome(home); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	return home
}

// newManager opens a store and a Manager in home; both are closed (nodes stopped) after the test.
func newManager(t *testing.T, home string) *Manager {
	t.Helper()
	return newManagerHolding(t, home, 20*time.Second)
}

// newManagerHolding is newManager with the routers' hold timeout: how long a new client, or an
// idle session whose backend died (crash replay), waits for a node.
func newManagerHolding(t *testing.T, home string, hold time.Duration) *Manager {
	t.Helper()
	return newManagerWith(t, home, Options{HoldTimeout: hold})
}

// newManagerWith is newManager with opts (its Home, Store and Logf are filled in).
func newManagerWith(t *testing.T, home string, opts Options) *Manager {
	t.Helper()
	m, st := openManager(t, home, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.Close(ctx, true)
		st.Close()
	})
	return m
}

// openManager opens a store and a Manager in home with opts (its Home, Store and Logf filled
// in); closing both is the caller's.
func openManager(t *testing.T, home string, opts Options) (*Manager, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Home, opts.Store, opts.Logf = home, st, t.Logf
	m, err := NewManager(opts)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return m, st
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testMaster is the master user of the tests' clusters: nodes ask every TCP client for a
// SCRAM password, endpoints and nodes' own ports alike.
var testMaster = MasterUserInput{MasterUserPassword: testPassword}

const testPassword = "test-master-pw"

// testDSN connects as the tests' master user through addr (an endpoint or a node's port).
func testDSN(addr string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", DefaultMasterUsername, testPassword, addr)
}

// superConnect connects as the superuser postgres through a node's private socket, the control
// plane's own path (TCP asks every role for a password).
func superConnect(t *testing.T, m *Manager, cluster string, port int) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", m.clusterDir(cluster), port))
	if err != nil {
		t.Fatalf("connecting as postgres to port %d's socket: %v", port, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func connectTo(t *testing.T, addr string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, testDSN(addr))
	if err != nil {
		t.Fatalf("connecting to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func hasEvent(t *testing.T, m *Manager, cluster, member, typ string, after uint64) bool {
	evs, err := m.Events(cluster, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Seq > after && e.Type == typ && (member == "" || e.Member == member) {
			return true
		}
	}
	return false
}

func lastSeq(t *testing.T, m *Manager) uint64 {
	evs, _ := m.Events("", 1)
	if len(evs) == 0 {
		return 0
	}
	return evs[0].Seq
}

// TestClusterOfThree brings up 1 writer + 2 readers once and checks, on it: replication
// through the two endpoints, the reader spread, kill -9 of a reader, and the node agent.
func TestClusterOfThree(t *testing.T) {
	pgtest.RequireInstalled(t)
	// The writer's kill -9 below checks the restart in place and the crash replay of an idle
	// session, not a failover: the grace period covers a restart on a loaded machine
	// (restartTestGrace), and the router holds the idle session for as long.
	m := newManagerHolding(t, newHome(t), restartTestWait)
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "trio", Readers: 2, MinCapacity: 1, MaxCapacity: 8,
		FailoverInput: FailoverInput{FailoverGraceSeconds: restartTestGrace}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, "trio")
	if err != nil {
		t.Fatal(err)
	}
	ctx = context.Background()

	t.Run("Members", func(t *testing.T) {
		if len(d.DBClusterMembers) != 3 {
			t.Fatalf("members: %+v", d.DBClusterMembers)
		}
		writers := 0
		for _, mb := range d.DBClusterMembers {
			if mb.Status != StatusAvailable || mb.PID == 0 || mb.Capacity != 1 {
				t.Errorf("member %+v", mb)
			}
			if mb.IsClusterWriter {
				writers++
				if mb.PromotionTier != 0 {
					t.Errorf("writer tier %d", mb.PromotionTier)
				}
			}
		}
		if writers != 1 || d.Capacity != 1 || d.ScalingConfigurationInfo.MaxCapacity != 8 ||
			d.ScalingConfigurationInfo.SecondsBeforeTimeout != 300 || d.ScalingConfigurationInfo.TimeoutAction != RollbackCapacityChange {
			t.Fatalf("description: %+v", d)
		}
		// Nodes run as the server user with the required settings.
		w := connectTo(t, d.Endpoint)
		for setting, want := range map[string]string{"shared_preload_libraries": "borealis", "wal_level": "replica",
			"logging_collector": "on", "log_destination": "stderr,jsonlog"} {
			var got string
			w.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got)
			if got != want {
				t.Errorf("%s = %q, want %q", setting, got, want)
			}
		}
		var ext string
		w.QueryRow(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'borealis'").Scan(&ext)
		if ext == "" {
			t.Error("the borealis extension is not created in the writer")
		}
	})

	t.Run("WriteThroughClusterReadThroughReader", func(t *testing.T) {
		w := connectTo(t, d.Endpoint)
		var recovery bool
		w.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery)
		if recovery {
			t.Fatal("the cluster endpoint reached a standby")
		}
		if _, err := w.Exec(ctx, "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'hello from the writer')"); err != nil {
			t.Fatal(err)
		}
		r := connectTo(t, d.ReaderEndpoint)
		var body string
		waitFor(t, "the row on the reader endpoint", 30*time.Second, func() bool {
			return r.QueryRow(ctx, "SELECT body FROM notes WHERE id = 1").Scan(&body) == nil
		})
		r.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery)
		if body != "hello from the writer" || !recovery {
			t.Fatalf("reader endpoint: body %q, in recovery %v", body, recovery)
		}
	})

	t.Run("ReaderEndpointSpreadsOverReaders", func(t *testing.T) {
		readerPorts := map[int]bool{}
		for _, mb := range d.DBClusterMembers {
			if !mb.IsClusterWriter {
				readerPorts[mb.Port] = true
			}
		}
		seen := map[int]bool{}
		for range 2 {
			c := connectTo(t, d.ReaderEndpoint)
			var port int
			c.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port)
			seen[port] = true
		}
		for p := range seen {
			if !readerPorts[p] {
				t.Fatalf("reader endpoint reached port %d, not a reader (%v)", p, readerPorts)
			}
		}
		if len(seen) < 2 {
			t.Fatalf("two concurrent reader connections both went to %v", seen)
		}
	})

	t.Run("NodeAgent", func(t *testing.T) {
		waitFor(t, "node_status() samples from every member", 30*time.Second, func() bool {
			for _, mb := range m.mustDescribe(t, "trio").DBClusterMembers {
				if mb.Agent == nil || mb.Agent.AgentPID == nil || *mb.Agent.AgentPID <= 0 || mb.Agent.ScalingPoint == nil {
					return false
				}
			}
			return true
		})
	})

	t.Run("OpenTransactionBlocksScalingPoint", func(t *testing.T) {
		// A transaction left open through the cluster endpoint: the router sees 'T', and the
		// writer's node agent reports it as the reason there is no scaling point.
		c := connectTo(t, d.Endpoint)
		if _, err := c.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
			t.Fatal(err)
		}
		inTx := false
		for _, s := range m.Clusters()[0].Router().Sessions() {
			inTx = inTx || s.TxStatus == 'T'
		}
		if !inTx {
			t.Fatalf("no router session in state T: %+v", m.Clusters()[0].Router().Sessions())
		}
		writerBlocked := func(want bool) func() bool {
			return func() bool {
				a := m.mustDescribe(t, "trio").DBClusterMembers[0].Agent
				if a == nil || a.ScalingPoint == nil {
					return false
				}
				blocked := !*a.ScalingPoint && strings.Contains(strings.Join(a.Blockers, ","), "open_transaction")
				return blocked == want
			}
		}
		waitFor(t, "open_transaction in the writer's blockers", 30*time.Second, writerBlocked(true))
		if _, err := c.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the writer's scaling point after COMMIT", 30*time.Second, writerBlocked(false))
	})

	t.Run("ReaderKill9ComesBackAndCatchesUp", func(t *testing.T) {
		before := lastSeq(t, m)
		victim := d.DBClusterMembers[2]
		if victim.IsClusterWriter {
			t.Fatal("member 3 should be a reader")
		}
		if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		w := connectTo(t, d.Endpoint)
		if _, err := w.Exec(ctx, "INSERT INTO notes SELECT g, 'written while a reader was down' FROM generate_series(2, 1000) g"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reader's death and restart events", 90*time.Second, func() bool {
			return hasEvent(t, m, "trio", victim.DBInstanceIdentifier, "member.died", before) &&
				hasEvent(t, m, "trio", victim.DBInstanceIdentifier, "member.restarted", before)
		})
		var now MemberDescription
		waitFor(t, "the reader available again", 60*time.Second, func() bool {
			now = m.mustDescribe(t, "trio").DBClusterMembers[2]
			return now.Status == StatusAvailable && now.PID != 0
		})
		if now.PID == victim.PID {
			t.Fatalf("pid %d unchanged after kill -9", now.PID)
		}
		direct := connectTo(t, fmt.Sprintf("127.0.0.1:%d", now.Port))
		var n int
		waitFor(t, "the restarted reader to catch up", 60*time.Second, func() bool {
			return direct.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n) == nil && n == 1000
		})
		waitFor(t, "replica lag reported for the reader", 30*time.Second, func() bool {
			mb := m.mustDescribe(t, "trio").DBClusterMembers[2]
			return mb.ReplicaLagBytes != nil && mb.ReplicaLagSeconds != nil
		})
		if d := m.mustDescribe(t, "trio"); d.Status != StatusAvailable {
			t.Fatalf("cluster status %s after the reader came back", d.Status)
		}
	})

	t.Run("WriterKill9ComesBackAndServesWrites", func(t *testing.T) {
		before := lastSeq(t, m)
		victim := d.DBClusterMembers[0]
		if !victim.IsClusterWriter {
			t.Fatal("member 1 should be the writer")
		}
		// An idle session with a setting: once the router holds its snapshot, it outlives
		// the crash (crash replay).
		idle := connectTo(t, d.Endpoint)
		if _, err := idle.Exec(ctx, "SET search_path = survivor, public"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the idle session's snapshot", 30*time.Second, func() bool {
			ss := m.Clusters()[0].Router().Sessions() // oldest first: the last is idle's
			return len(ss) > 0 && ss[len(ss)-1].Replayable
		})
		if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the writer's death and restart events", restartTestWait, func() bool {
			return hasEvent(t, m, "trio", victim.DBInstanceIdentifier, "member.died", before) &&
				hasEvent(t, m, "trio", victim.DBInstanceIdentifier, "member.restarted", before)
		})
		if ev := eventAfter(t, m, "trio", "cluster.failover-started", before); ev != nil {
			t.Fatalf("the writer's kill -9 with its data intact started a failover: %s", ev.Message)
		}
		var now MemberDescription
		waitFor(t, "the writer available again", 60*time.Second, func() bool {
			now = m.mustDescribe(t, "trio").DBClusterMembers[0]
			return now.Status == StatusAvailable && now.PID != 0
		})
		if now.PID == victim.PID {
			t.Fatalf("writer pid %d unchanged after kill -9", now.PID)
		}
		var path string
		if err := idle.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&path); err != nil || path != "survivor, public" {
			t.Fatalf("the idle session after the writer's crash: search_path %q, %v (want it kept, no error)", path, err)
		}
		if m.mustDescribe(t, "trio").RecoveredSessions < 1 {
			t.Fatal("describe does not count the recovered session")
		}
		// Crash recovery kept what was committed, and the cluster endpoint takes writes again.
		w := connectTo(t, d.Endpoint)
		var n int
		if err := w.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil || n != 1000 {
			t.Fatalf("after the writer's crash: %d rows (%v), want the 1000 committed", n, err)
		}
		if _, err := w.Exec(ctx, "INSERT INTO notes VALUES (1001, 'written after the writer came back')"); err != nil {
			t.Fatal(err)
		}
		// The readers reconnect to the restarted writer and stream again.
		reader := connectTo(t, fmt.Sprintf("127.0.0.1:%d", m.mustDescribe(t, "trio").DBClusterMembers[1].Port))
		waitFor(t, "a reader to replay the write made after the writer's restart", 60*time.Second, func() bool {
			return reader.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n) == nil && n == 1001
		})
	})

	t.Run("EventsRecorded", func(t *testing.T) {
		evs, _ := m.Events("trio", 0)
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		joined := strings.Join(types, " ")
		for _, want := range []string{"cluster.creating", "member.created", "cluster.available"} {
			if !strings.Contains(joined, want) {
				t.Errorf("no %s event in %v", want, types)
			}
		}
	})
}

func (m *Manager) mustDescribe(t *testing.T, name string) Description {
	t.Helper()
	d, err := m.Describe(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRestartedManagerAdoptsRunningNodes closes a Manager without stopping its nodes, as a
// crashed control plane would leave them, and checks a new Manager adopts them (same pids, no
// duplicate cluster), then restarts a node that died while no Manager ran, on a new port
// because another process took its own meanwhile; then, all nodes stopped, the writer's port
// is taken: the writer moves and its reader follows it to the new port.
func TestRestartedManagerAdoptsRunningNodes(t *testing.T) {
	pgtest.RequireInstalled(t)
	home := newHome(t)
	first, st := openManager(t, home, Options{})
	if _, err := first.Create(CreateInput{MasterUserInput: testMaster, Name: "solo", Readers: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before, err := first.WaitAvailable(ctx, "solo")
	if err != nil {
		t.Fatal(err)
	}
	first.Close(ctx, false)
	st.Close()
	// The reader dies while no control plane runs.
	reader := before.DBClusterMembers[1]
	if err := syscall.Kill(reader.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// kill(2) returns before the process is gone: wait until it is a zombie or reaped, or the
	// second manager may find it still running and adopt it (seen on a busy CI machine).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", reader.PID))
		if err != nil {
			break
		}
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader pid %d still alive 10 s after SIGKILL", reader.PID)
		}
	}

	// Another process takes the reader's port while no control plane runs (as a client's
	// connection or another test's server may): its restart moves it to a free port.
	held, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(reader.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	second, st2 := openManager(t, home, Options{})
	closeSecond := sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		second.Close(ctx, true)
		st2.Close()
	})
	t.Cleanup(closeSecond)
	after, err := second.WaitAvailable(ctx, "solo")
	if err != nil {
		t.Fatal(err)
	}
	if moved := after.DBClusterMembers[1].Port; moved == reader.Port {
		t.Fatalf("the reader came up on port %d, which the test's listener holds", moved)
	}
	evs, err := second.Events("solo", 0)
	if err != nil {
		t.Fatal(err)
	}
	var moves []string
	for _, e := range evs {
		if e.Type == "member.port-changed" && e.Member == reader.DBInstanceIdentifier {
			moves = append(moves, e.Message)
		}
	}
	if len(moves) != 1 || !strings.Contains(moves[0], "FATAL: could not create any TCP/IP sockets") ||
		!strings.Contains(moves[0], fmt.Sprintf("port %d is taken", reader.Port)) {
		t.Fatalf("member.port-changed events of the reader: %q, want one naming port %d and PostgreSQL's FATAL", moves, reader.Port)
	}
	if list := second.List(); len(list) != 1 {
		t.Fatalf("clusters after restart: %d", len(list))
	}
	if after.DBClusterMembers[0].PID != before.DBClusterMembers[0].PID {
		t.Fatalf("writer pid %d -> %d: not adopted", before.DBClusterMembers[0].PID, after.DBClusterMembers[0].PID)
	}
	if after.DBClusterMembers[1].PID == reader.PID {
		t.Fatal("the killed reader kept its pid")
	}
	if !hasEvent(t, second, "solo", before.DBClusterMembers[0].DBInstanceIdentifier, "member.adopted", 0) ||
		!hasEvent(t, second, "solo", reader.DBInstanceIdentifier, "member.started", 0) {
		t.Fatal("missing member.adopted for the writer or member.started for the reader")
	}
	c := connectTo(t, after.ReaderEndpoint)
	var recovery bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil || !recovery {
		t.Fatalf("reader endpoint after restart: %v, in recovery %v", err, recovery)
	}

	// The writer's port is taken while every node is stopped: it moves, and the reader, which
	// streams from the writer's port, is pointed at the new one and keeps replicating.
	seq := lastSeq(t, second)
	closeSecond()
	writer := after.DBClusterMembers[0]
	heldW, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(writer.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer heldW.Close()
	third := newManager(t, home)
	ctx3, cancel3 := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel3()
	final, err := third.WaitAvailable(ctx3, "solo")
	if err != nil {
		t.Fatal(err)
	}
	if p := final.DBClusterMembers[0].Port; p == writer.Port {
		t.Fatalf("the writer came up on port %d, which the test's listener holds", p)
	}
	if !hasEvent(t, third, "solo", writer.DBInstanceIdentifier, "member.port-changed", seq) {
		t.Fatal("no member.port-changed for the writer")
	}
	w := connectTo(t, final.Endpoint)
	if _, err := w.Exec(ctx3, "CREATE TABLE moved_port AS SELECT 42 AS v"); err != nil {
		t.Fatal(err)
	}
	r := connectTo(t, final.ReaderEndpoint)
	waitFor(t, "the reader to replay a write made on the writer's new port", 2*time.Minute, func() bool {
		var v int
		var recovery bool
		return r.QueryRow(ctx3, "SELECT v, pg_is_in_recovery() FROM moved_port").Scan(&v, &recovery) == nil && v == 42 && recovery
	})
}
