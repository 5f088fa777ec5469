package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestLimits: a flood of idle sockets does not lock a real client out, the per-endpoint cap
// answers 53300, held clients are bounded, and a client stuck in authentication is dropped.
func TestLimits(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	hba := "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(srv.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Exec("postgres", "SELECT pg_reload_conf()")
	srv.Exec("postgres", "CREATE ROLE alice LOGIN PASSWORD 'wonderland'")
	backends := &staticBackends{writer: fmt.Sprintf("127.0.0.1:%d", srv.Port)}
	ctx := context.Background()

	t.Run("IdleSocketFlood", func(t *testing.T) {
		const maxStartups, flood = 16, 200
		r, addr, _ := startRouter(t, Config{Name: "flood", Backends: backends, MaxStartups: maxStartups, StartupTimeout: time.Minute})
		// In waves, as a flood goes on: sockets younger than half a second are not dropped.
		var idle []net.Conn
		for i := range flood {
			if i > 0 && i%maxStartups == 0 {
				time.Sleep(600 * time.Millisecond)
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, c)
		}
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		// The router accepts them all, keeping at most maxStartups in start-up.
		waitUntil(t, "the flood to be accepted", 30*time.Second, func() bool {
			return r.Stats()[ClusterEndpoint].Total >= flood
		})
		time.Sleep(600 * time.Millisecond) // the last wave ages too
		if l := r.Limits(); l.Starting > maxStartups || l.Evicted < flood-2*maxStartups {
			t.Fatalf("after %d idle sockets: %+v, want at most %d starting and %d evicted", flood, l, maxStartups, flood-2*maxStartups)
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		c, err := pgx.Connect(cctx, dsn(addr, "alice", "wonderland", ""))
		if err != nil {
			t.Fatalf("a real client during the flood: %v", err)
		}
		var one int
		if err := c.QueryRow(cctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatal(err)
		}
		c.Close(cctx)
		t.Logf("real client connected and queried in %s behind %d idle sockets; %+v", time.Since(start), flood, r.Limits())
		// The oldest idle sockets were closed by the router.
		idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := idle[0].Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("oldest idle socket: %v, want EOF", err)
		}
	})

	t.Run("MaxClients", func(t *testing.T) {
		_, addr, _ := startRouter(t, Config{Name: "capped", Backends: backends, MaxClients: 2})
		for range 2 {
			connect(t, dsn(addr, "postgres", "", ""))
		}
		_, err := pgx.Connect(ctx, dsn(addr, "postgres", "", ""))
		if code := pgCode(err); code != "53300" || !strings.Contains(err.Error(), "limit 2") {
			t.Fatalf("third client: %v (code %q), want 53300 naming the limit", err, code)
		}
	})

	t.Run("MaxHeld", func(t *testing.T) {
		r, addr, _ := startRouter(t, Config{Name: "held", Backends: backends, MaxHeld: 2, HoldTimeout: time.Minute})
		r.Hold("test hold")
		defer r.Release()
		var conns []net.Conn
		for range 2 {
			c := sendStartup(t, addr, "postgres")
			conns = append(conns, c)
		}
		waitUntil(t, "two held clients", 20*time.Second, func() bool { return r.Limits().Held == 2 })
		c := sendStartup(t, addr, "postgres")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, _ := io.ReadAll(c)
		if !strings.Contains(string(reply), "53300") || !strings.Contains(string(reply), "waiting") {
			t.Fatalf("third held client got %q, want 53300", reply)
		}
		for _, c := range conns {
			c.Close()
		}
	})

	t.Run("AuthTimeout", func(t *testing.T) {
		_, addr, _ := startRouter(t, Config{Name: "auth", Backends: backends, AuthTimeout: time.Second})
		c := sendStartup(t, addr, "alice") // the server asks for SCRAM; the client never answers
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		_, err := io.Copy(io.Discard, c)
		if err != nil || time.Since(start) > 15*time.Second {
			t.Fatalf("a client stuck in authentication: %v after %s, want EOF after about 1 s", err, time.Since(start))
		}
	})
}

// sendStartup opens a raw connection and sends a StartupMessage for user.
func sendStartup(t *testing.T, addr, user string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	buf, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": user, "database": "postgres"}}).Encode(nil)
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitUntil(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
