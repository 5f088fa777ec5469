package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// TestPassThrough runs SCRAM pass-through against a real server whose TCP pg_hba asks every
// role for scram-sha-256 (no trust): pooled and moved backends are opened over TCP with the
// ClientKey the router recovered from the client's proof; a wrong key and a verifier changed
// after login are refused with a clear error.
func TestPassThrough(t *testing.T) {
	srv := scramServer(t, "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
	node := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	sock := unixSocket(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// SQL as postgres goes over the Unix socket: TCP asks everyone for a password here.
	local := func(sql string) string { t.Helper(); return localSQL(t, srv, sql) }
	local("CREATE ROLE alice LOGIN PASSWORD 'wonderland'")
	// The postmaster's reload is asynchronous: wait until TCP asks postgres for a password.
	waitUntil(t, "the reload of pg_hba.conf", time.Minute, func() bool {
		c, err := pgx.Connect(ctx, dsn(node, "postgres", "", ""))
		if err == nil {
			c.Close(ctx)
		}
		return err != nil
	})
	r, addr, _ := startRouter(t, Config{Name: "pass", Backends: &staticBackends{writer: node},
		PrivateAddr: func(string) string { return sock }, PassThrough: true, IdleSnapshotAfter: 100 * time.Millisecond})
	alice := dsn(addr, "alice", "wonderland", "")
	// onTCP says whether the session's backend came over TCP (inet_client_addr is NULL on a
	// Unix socket), as alice (every TCP login there needs SCRAM).
	onTCP := func(t *testing.T, c *pgx.Conn) bool {
		t.Helper()
		var tcp bool
		var user string
		if err := c.QueryRow(ctx, "SELECT inet_client_addr() IS NOT NULL, current_user").Scan(&tcp, &user); err != nil {
			t.Fatal(err)
		}
		if user != "alice" {
			t.Fatalf("current_user %q, want alice", user)
		}
		return tcp
	}

	t.Run("PooledBackendOverTCP", func(t *testing.T) {
		c := connect(t, alice)
		if !onTCP(t, c) {
			t.Fatal("the pooled backend was opened on the Unix socket, want TCP with the pass-through key")
		}
		pid := backendPID(t, c)
		reused := r.BackendPool().Reused
		c.Close(ctx)
		waitIdle(t, r, 1)
		c2 := connect(t, alice)
		if got := backendPID(t, c2); got != pid || r.BackendPool().Reused != reused+1 {
			t.Fatalf("second client got backend %d (reused %d), want %d from the pool", got, r.BackendPool().Reused-reused, pid)
		}
		c2.Close(ctx)

		// The default (no PassThrough) keeps the private path.
		_, plainAddr, _ := startRouter(t, Config{Name: "plain", Backends: &staticBackends{writer: node},
			PrivateAddr: func(string) string { return sock }})
		c3 := connect(t, dsn(plainAddr, "alice", "wonderland", ""))
		if onTCP(t, c3) {
			t.Fatal("without PassThrough the pooled backend came over TCP")
		}
	})

	// alone waits until the connection just opened is the router's only session (an earlier
	// subtest's, closed at its end, may still be ending), so a Park moves just that one.
	alone := func(t *testing.T, what string, ok func(SessionInfo) bool) {
		t.Helper()
		waitUntil(t, what, time.Minute, func() bool {
			ss := r.Sessions()
			return len(ss) == 1 && ok(ss[0])
		})
	}

	t.Run("MovedBackendOverTCP", func(t *testing.T) {
		c := connect(t, alice)
		alone(t, "one session", func(SessionInfo) bool { return true })
		if _, err := c.Exec(ctx, "SET search_path = elsewhere, public"); err != nil {
			t.Fatal(err)
		}
		old := backendPID(t, c)
		p := r.Park(ctx, node, MoveOptions{Reason: "test"})
		if rep := p.Resume(ctx, node); rep.Moved != 1 || rep.Failed != 0 {
			t.Fatalf("move report %+v", rep)
		}
		if pid := backendPID(t, c); pid == old {
			t.Fatalf("still on backend %d after the move", pid)
		}
		if !onTCP(t, c) {
			t.Fatal("the moved session's backend was opened on the Unix socket")
		}
		var path string
		if err := c.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil || path != "elsewhere, public" {
			t.Fatalf("search_path after the move %q (%v)", path, err)
		}
	})

	t.Run("ReplayedBackendOverTCP", func(t *testing.T) {
		c := connect(t, alice)
		if _, err := c.Exec(ctx, "SET search_path = replayed, public"); err != nil {
			t.Fatal(err)
		}
		old := backendPID(t, c)
		alone(t, "the idle session's snapshot", func(s SessionInfo) bool { return s.Replayable })
		recovered := r.RecoveredSessions()
		local(fmt.Sprintf("SELECT pg_terminate_backend(%d)", old))
		// Idle until the router has replayed the session (a query racing the death errors).
		waitUntil(t, "the crash replay", time.Minute, func() bool { return r.RecoveredSessions() > recovered })
		if pid := backendPID(t, c); pid == old {
			t.Fatalf("still on backend %d after its termination", pid)
		}
		if !onTCP(t, c) {
			t.Fatal("the replayed session's backend was opened on the Unix socket")
		}
		var path string
		if err := c.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil || path != "replayed, public" {
			t.Fatalf("search_path after the replay %q (%v)", path, err)
		}
	})

	t.Run("WrongKey", func(t *testing.T) {
		cred, err := parseVerifier(local("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'"))
		if err != nil {
			t.Fatal(err)
		}
		salted := must(pbkdf2.Key(sha256.New, "wonderland", []byte(cred.Salt), cred.Iters, sha256.Size))
		m := hmac.New(sha256.New, salted)
		m.Write([]byte("Client Key"))
		right := m.Sum(nil)
		open := func(clientKey, serverKey []byte) error {
			var k passKey
			k.set(clientKey, scram.StoredCredentials{KeyFactors: cred.KeyFactors, ServerKey: serverKey})
			conn, err := net.Dial("tcp", node)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			_, _, err = startBackend(conn, bufio.NewReader(conn), &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
				Parameters: map[string]string{"user": "alice", "database": "postgres"}}, nil, &k)
			return err
		}
		if err := open(right, cred.ServerKey); err != nil {
			t.Fatalf("the password's own ClientKey was refused: %v", err)
		}
		wrong := make([]byte, sha256.Size)
		rand.Read(wrong)
		var se *serverError
		if err := open(wrong, cred.ServerKey); !errors.As(err, &se) || se.Code != "28P01" {
			t.Fatalf("a wrong ClientKey: %v, want the server's 28P01", err)
		}
		// The router checks the server's signature too: a server that does not hold the
		// verifier's ServerKey is not accepted.
		if err := open(right, wrong); err == nil || !strings.Contains(err.Error(), "server signature") {
			t.Fatalf("a wrong ServerKey: %v, want the server signature refused", err)
		}
	})

	t.Run("PasswordChangedAfterLogin", func(t *testing.T) {
		c := connect(t, alice)
		backendPID(t, c)
		alone(t, "one session", func(SessionInfo) bool { return true })
		local("ALTER ROLE alice PASSWORD 'looking-glass'")
		p := r.Park(ctx, node, MoveOptions{Reason: "test"})
		rep := p.Resume(ctx, node)
		if rep.Moved != 0 || rep.Failed != 1 || !strings.Contains(strings.Join(rep.Errors, ";"), "password was changed") {
			t.Fatalf("move report %+v, want one failure naming the changed password", rep)
		}
		qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
		defer qcancel()
		_, err := c.Exec(qctx, "SELECT 1")
		if code := pgCode(err); code != "57P01" || !strings.Contains(err.Error(), "retry") {
			t.Fatalf("the session whose key went stale got %v (SQLSTATE %q), want a retryable 57P01", err, code)
		}
		// The new password works, on a new TCP backend with the new key.
		c2 := connect(t, dsn(addr, "alice", "looking-glass", ""))
		if !onTCP(t, c2) {
			t.Fatal("the new login's backend is not on TCP")
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestRecoverClientKey checks the key recovered from a real client's exchange (xdg-go/scram's
// client) against the password's own ClientKey, and that zero overwrites what was kept.
func TestRecoverClientKey(t *testing.T) {
	client, err := scram.SHA256.NewClient("", "hunter2", "")
	if err != nil {
		t.Fatal(err)
	}
	kf := scram.KeyFactors{Salt: "0123456789abcdef", Iters: 4096}
	cred := client.GetStoredCredentials(kf)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		// The client side of the exchange, as libpq sends it.
		conv := client.NewConversation()
		fe := pgproto3.NewFrontend(b, b)
		for {
			msg, err := fe.Receive()
			if err != nil {
				done <- err
				return
			}
			switch m := msg.(type) {
			case *pgproto3.AuthenticationSASL:
				first, _ := conv.Step("")
				b.Write(saslInitial(scramMechanism, first))
			case *pgproto3.AuthenticationSASLContinue:
				final, err := conv.Step(string(m.Data))
				if err != nil {
					done <- err
					return
				}
				b.Write(saslResponse(final))
			case *pgproto3.AuthenticationSASLFinal:
				_, err := conv.Step(string(m.Data))
				done <- err
				return
			}
		}
	}()
	key, err := scramExchange(a, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	salted := must(pbkdf2.Key(sha256.New, "hunter2", []byte(kf.Salt), kf.Iters, sha256.Size))
	m := hmac.New(sha256.New, salted)
	m.Write([]byte("Client Key"))
	if !bytes.Equal(key, m.Sum(nil)) {
		t.Fatal("the recovered ClientKey is not the password's")
	}
	var k passKey
	k.set(key, cred)
	kept := k.clientKey
	k.zero()
	if k.held() || !bytes.Equal(kept, make([]byte, len(kept))) {
		t.Fatal("zero left the key in memory")
	}
}

// TestPassThroughEnv: BOREALIS_ROUTER_PASSTHROUGH=1 turns pass-through on for a router made
// without it; unset, a router keeps the trusted path.
func TestPassThroughEnv(t *testing.T) {
	t.Setenv("BOREALIS_ROUTER_PASSTHROUGH", "")
	r := New(Config{Name: "off"})
	r.Close()
	if r.cfg.PassThrough {
		t.Fatal("pass-through on without the setting")
	}
	t.Setenv("BOREALIS_ROUTER_PASSTHROUGH", "1")
	r = New(Config{Name: "on"})
	r.Close()
	if !r.cfg.PassThrough {
		t.Fatal("BOREALIS_ROUTER_PASSTHROUGH=1 did not turn pass-through on")
	}
}
