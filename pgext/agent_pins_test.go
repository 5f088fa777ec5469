package pgext_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// The reasons that pin a session to its backend and were added after the first four: session
// advisory locks, WITH HOLD cursors and prepared transactions. Each is made with a real session
// and must clear by the means a client has (unlock, CLOSE, COMMIT PREPARED, disconnect).

// pinCounts are the columns node_status() gained with these reasons.
type pinCounts struct{ Advisory, Held, Prepared int32 }

func readPins(t *testing.T, conn *pgx.Conn) pinCounts {
	t.Helper()
	var p pinCounts
	if err := conn.QueryRow(context.Background(), `SELECT advisory_lock_sessions, held_cursor_sessions,
		prepared_transactions FROM borealis.node_status()`).Scan(&p.Advisory, &p.Held, &p.Prepared); err != nil {
		t.Fatalf("node_status() pin columns: %v", err)
	}
	return p
}

func TestNodeStatusSessionPins(t *testing.T) {
	requireAgentInstalled(t)
	s := pgtest.Start(t, pgtest.Options{Preload: true, Extension: true, Settings: map[string]string{
		"borealis.agent_interval_ms":       "200",
		"borealis.scaling_query_threshold": "'1s'",
		"max_prepared_transactions":        "4",
	}})
	ctx := context.Background()
	obs := s.Connect("postgres")
	s.Exec("postgres", "CREATE TABLE agent_pin_target (i int)")
	waitStatus(t, obs, time.Now(), "a scaling point on a quiet server", scalingPoint)
	exec := func(t *testing.T, conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	t.Run("advisory_locks", func(t *testing.T) {
		conn, _ := session(t, s)
		// A transaction-level advisory lock is gone at commit and pins nothing.
		exec(t, conn, "SELECT pg_advisory_xact_lock(7)")
		waitStatus(t, obs, time.Now(), "no pin after pg_advisory_xact_lock", scalingPoint)
		// A session-level one outlives the statement.
		exec(t, conn, "SELECT pg_advisory_lock(42)")
		waitStatus(t, obs, time.Now(), "advisory_locks", blockedBy("advisory_locks"))
		if p := readPins(t, obs); p.Advisory != 1 {
			t.Fatalf("one session with an advisory lock: %+v", p)
		}
		exec(t, conn, "SELECT pg_advisory_unlock(42)")
		waitStatus(t, obs, time.Now(), "advisory locks clear after unlock", scalingPoint)
		// Shared session locks pin too, and go with the session.
		other, _ := session(t, s)
		exec(t, other, "SELECT pg_advisory_lock_shared(1, 2)")
		waitStatus(t, obs, time.Now(), "advisory_locks (shared)", blockedBy("advisory_locks"))
		other.Close(ctx)
		waitStatus(t, obs, time.Now(), "advisory locks clear after disconnect", scalingPoint)
	})

	t.Run("held_cursors", func(t *testing.T) {
		conn, _ := session(t, s)
		// Outside a transaction block: its implicit transaction commits and the cursor stays.
		exec(t, conn, "DECLARE c1 CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 10) g")
		waitStatus(t, obs, time.Now(), "held_cursors", blockedBy("held_cursors"))
		if p := readPins(t, obs); p.Held != 1 {
			t.Fatalf("one session with a WITH HOLD cursor: %+v", p)
		}
		var v int
		if err := conn.QueryRow(ctx, "FETCH 1 FROM c1").Scan(&v); err != nil || v != 1 {
			t.Fatalf("FETCH from the held cursor: %d, %v", v, err)
		}
		exec(t, conn, "CLOSE c1")
		waitStatus(t, obs, time.Now(), "held cursors clear after CLOSE", scalingPoint)

		// Declared in a block that rolls back, it never existed.
		exec(t, conn, "BEGIN")
		exec(t, conn, "DECLARE c2 CURSOR WITH HOLD FOR SELECT 1")
		exec(t, conn, "ROLLBACK")
		waitStatus(t, obs, time.Now(), "no pin after a rolled-back DECLARE", scalingPoint)

		// Committed in a block it is held; DISCARD ALL drops it.
		exec(t, conn, "BEGIN")
		exec(t, conn, "DECLARE c3 CURSOR WITH HOLD FOR SELECT 1")
		exec(t, conn, "COMMIT")
		waitStatus(t, obs, time.Now(), "held_cursors after COMMIT", blockedBy("held_cursors"))
		exec(t, conn, "DISCARD ALL")
		waitStatus(t, obs, time.Now(), "held cursors clear after DISCARD ALL", scalingPoint)

		// A cursor without HOLD dies with its transaction and pins nothing beyond it.
		exec(t, conn, "BEGIN")
		exec(t, conn, "DECLARE c4 CURSOR FOR SELECT 1")
		exec(t, conn, "COMMIT")
		waitStatus(t, obs, time.Now(), "no pin for a cursor without HOLD", scalingPoint)
	})

	t.Run("prepared_transactions", func(t *testing.T) {
		conn, _ := session(t, s)
		exec(t, conn, "BEGIN")
		exec(t, conn, "INSERT INTO agent_pin_target VALUES (1)")
		exec(t, conn, "PREPARE TRANSACTION 'agent_pin_1'")
		// It belongs to no session: closing the one that prepared it changes nothing.
		conn.Close(ctx)
		waitStatus(t, obs, time.Now(), "prepared_transactions", blockedBy("prepared_transactions"))
		if p := readPins(t, obs); p.Prepared != 1 {
			t.Fatalf("one prepared transaction: %+v", p)
		}
		// A second one, with a subtransaction's xid as well, counts once more, not twice.
		other, _ := session(t, s)
		exec(t, other, "BEGIN")
		exec(t, other, "INSERT INTO agent_pin_target VALUES (2)")
		exec(t, other, "SAVEPOINT a")
		exec(t, other, "INSERT INTO agent_pin_target VALUES (3)")
		exec(t, other, "PREPARE TRANSACTION 'agent_pin_2'")
		waitStatus(t, obs, time.Now(), "two prepared transactions", func(st nodeStatus) bool {
			return readPins(t, obs).Prepared == 2
		})
		s.Exec("postgres", "COMMIT PREPARED 'agent_pin_1'")
		s.Exec("postgres", "ROLLBACK PREPARED 'agent_pin_2'")
		waitStatus(t, obs, time.Now(), "prepared transactions clear", scalingPoint)
		if n := s.QueryValue("postgres", "SELECT count(*) FROM agent_pin_target"); n != "1" {
			t.Fatalf("rows after COMMIT PREPARED and ROLLBACK PREPARED: %s, want 1", n)
		}
	})
}
