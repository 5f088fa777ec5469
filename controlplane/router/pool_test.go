package router

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/borealisdb/borealis/internal/pgtest"
)

// trustInRouter stands in for authenticateInRouter in these tests: every client counts as
// authenticated by the router (so its backend can be pooled), except roles named in relayed.
func trustInRouter(relayed ...string) func(context.Context, net.Conn, string, *pgproto3.StartupMessage) (bool, error) {
	return func(_ context.Context, _ net.Conn, _ string, startup *pgproto3.StartupMessage) (bool, error) {
		for _, u := range relayed {
			if startup.Parameters["user"] == u {
				return false, nil
			}
		}
		return true, nil
	}
}

func unixSocket(s *pgtest.Server) string {
	return filepath.Join(s.SocketDir, fmt.Sprintf(".s.PGSQL.%d", s.Port))
}

// backendPID asks the session's backend for its process id.
func backendPID(t *testing.T, c *pgx.Conn) int {
	t.Helper()
	var pid int
	if err := c.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// visit connects, returns the backend's pid and leaves cleanly (Terminate).
func visit(t *testing.T, addr, extra string) int {
	t.Helper()
	c := connect(t, dsn(addr, "postgres", "", extra))
	pid := backendPID(t, c)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pid
}

func waitIdle(t *testing.T, r *Router, n int64) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d idle pooled backends", n), 30*time.Second, func() bool { return r.BackendPool().Idle == n })
}

func backendGone(t *testing.T, srv *pgtest.Server, pid int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("backend %d to exit", pid), 30*time.Second, func() bool {
		return srv.QueryValue("postgres", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == "0"
	})
}

// TestBackendPool checks the warm pool with real clients on one real server.
func TestBackendPool(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := unixSocket(srv)
	r, addr, _ := startRouter(t, Config{Name: "pool", Backends: &staticBackends{writer: sock}, HoldTimeout: 5 * time.Second,
		PoolMaxIdlePerKey: 2, authenticate: trustInRouter("relayed")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv.Exec("postgres", "CREATE ROLE relayed LOGIN SUPERUSER")
	srv.Exec("postgres", "CREATE TABLE kept (v int)")

	t.Run("ReuseAndReset", func(t *testing.T) {
		c := connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name=first"))
		pid := backendPID(t, c)
		for _, q := range []string{"SET work_mem = '7MB'", "CREATE TEMP TABLE scratch (v int)", "PREPARE p AS SELECT 1",
			"SELECT pg_advisory_lock(42)", "LISTEN somewhere", "DECLARE held CURSOR WITH HOLD FOR SELECT 1"} {
			if _, err := c.Exec(ctx, q); err != nil {
				t.Fatal(q, err)
			}
		}
		if _, err := c.Prepare(ctx, "proto", "SELECT $1::int"); err != nil {
			t.Fatal(err)
		}
		reused := r.BackendPool().Reused
		c.Close(ctx)
		waitIdle(t, r, 1)

		c2 := connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name=second"))
		if got := backendPID(t, c2); got != pid {
			t.Fatalf("the second client got backend %d, want the first one's %d back from the pool", got, pid)
		}
		if st := r.BackendPool(); st.Reused != reused+1 || st.Idle != 0 || st.InUse != 1 {
			t.Fatalf("pool stats %+v after a reuse", st)
		}
		var mem, app string
		var temp, preps, locks, chans, cursors int
		if err := c2.QueryRow(ctx, `SELECT current_setting('work_mem'), current_setting('application_name'),
			(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
			(SELECT count(*) FROM pg_prepared_statements WHERE name IN ('p', 'proto')),
			(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
			(SELECT count(*) FROM pg_listening_channels()),
			(SELECT count(*) FROM pg_cursors WHERE name = 'held')`).Scan(&mem, &app, &temp, &preps, &locks, &chans, &cursors); err != nil {
			t.Fatal(err)
		}
		if mem != "4MB" || temp != 0 || preps != 0 || locks != 0 || chans != 0 || cursors != 0 {
			t.Fatalf("the first client's state leaked: work_mem %s, temp tables %d, prepared %d, advisory locks %d, channels %d, cursors %d",
				mem, temp, preps, locks, chans, cursors)
		}
		if app != "second" || c2.PgConn().ParameterStatus("application_name") != "second" {
			t.Fatalf("application_name %q (reported %q), want the second client's", app, c2.PgConn().ParameterStatus("application_name"))
		}
		if c2.PgConn().ParameterStatus("server_version") == "" || c2.PgConn().ParameterStatus("client_encoding") != "UTF8" {
			t.Fatalf("the reused backend's parameters were not sent: %v", c2.PgConn().ParameterStatus("server_version"))
		}
		// A cancel reaches the reused backend.
		go func() {
			time.Sleep(300 * time.Millisecond)
			c2.PgConn().CancelRequest(context.Background())
		}()
		if _, err := c2.Exec(ctx, "SELECT pg_sleep(20)"); pgCode(err) != "57014" {
			t.Fatalf("cancel on a reused backend: %v", err)
		}
		c2.Close(ctx)
		waitIdle(t, r, 1)
	})

	t.Run("NotReusedAfterATransaction", func(t *testing.T) {
		r.pool.evict("", closedDrain)
		c := connect(t, dsn(addr, "postgres", "", ""))
		pid := backendPID(t, c)
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO kept VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx) // leaves inside the transaction
		backendGone(t, srv, pid)
		if n := srv.QueryValue("postgres", "SELECT count(*) FROM kept"); n != "0" {
			t.Fatalf("%s rows after a client left inside its transaction, want it rolled back", n)
		}
		if got := visit(t, addr, ""); got == pid {
			t.Fatal("a backend left in a transaction was reused")
		}
		waitIdle(t, r, 1)
	})

	t.Run("RelayedRolesAreNotPooled", func(t *testing.T) {
		r.pool.evict("", closedDrain)
		a := connect(t, dsn(addr, "relayed", "", ""))
		pa := backendPID(t, a)
		a.Close(ctx)
		backendGone(t, srv, pa)
		if st := r.BackendPool(); st.Idle != 0 {
			t.Fatalf("a relayed role's backend was pooled: %+v", st)
		}
	})

	t.Run("StaleBackendsAreReplaced", func(t *testing.T) {
		r.pool.evict("", closedDrain)
		pid := visit(t, addr, "")
		waitIdle(t, r, 1)
		srv.Exec("postgres", "SELECT pg_terminate_backend($1)", pid)
		backendGone(t, srv, pid)
		stale := r.BackendPool().Stale
		if got := visit(t, addr, ""); got == pid {
			t.Fatal("a terminated backend was handed out")
		}
		if r.BackendPool().Stale != stale+1 && r.BackendPool().Stale != stale {
			t.Fatalf("stale count %d", r.BackendPool().Stale)
		}
		// kill -9 of a pooled backend: the server restarts its backends; once it accepts
		// connections again a client gets a new backend, without an error.
		waitIdle(t, r, 1)
		pid = visit(t, addr, "")
		waitIdle(t, r, 1)
		cp := srv.QueryValue("postgres", "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Accepting connections is not enough: the postmaster may accept one before it has
		// seen its child die, and then end it in the crash restart. A new checkpointer says the
		// restart is over.
		waitUntil(t, "the crash restart after a backend's kill -9 to end (a new checkpointer)", time.Minute, func() bool {
			c, err := pgx.Connect(ctx, srv.DSN("postgres"))
			if err != nil {
				return false
			}
			defer c.Close(ctx)
			var now string
			err = c.QueryRow(ctx, "SELECT pid::text FROM pg_stat_activity WHERE backend_type = 'checkpointer'").Scan(&now)
			return err == nil && now != cp
		})
		if got := visit(t, addr, ""); got == pid {
			t.Fatal("a killed backend was handed out")
		}
	})

	t.Run("Limits", func(t *testing.T) {
		r.pool.evict("", closedDrain)
		var cs []*pgx.Conn
		for range 3 {
			cs = append(cs, connect(t, dsn(addr, "postgres", "", "")))
		}
		for _, c := range cs {
			c.Close(ctx)
		}
		waitIdle(t, r, 2) // PoolMaxIdlePerKey
		// Another key: another database.
		c := connect(t, strings.Replace(dsn(addr, "postgres", "", ""), "/postgres?", "/template1?", 1))
		c.Close(ctx)
		waitIdle(t, r, 3)
	})

	t.Run("ParkDrainsTheNode", func(t *testing.T) {
		waitIdle(t, r, 3)
		p := r.Park(ctx, sock, MoveOptions{Reason: "test"})
		p.Cancel()
		if st := r.BackendPool(); st.Idle != 0 {
			t.Fatalf("Park left %d idle pooled backends", st.Idle)
		}
		waitUntil(t, "the drained backends to exit", 30*time.Second, func() bool {
			return srv.QueryValue("postgres", "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'") == "1"
		})
		// A backend checked out before a drain does not come back.
		c := connect(t, dsn(addr, "postgres", "", ""))
		r.Park(ctx, sock, MoveOptions{Reason: "test"}).Cancel() // c moves nowhere
		c.Close(ctx)
		time.Sleep(300 * time.Millisecond)
		if st := r.BackendPool(); st.Idle != 0 {
			t.Fatalf("a backend checked out before a drain came back to the pool: %+v", st)
		}
	})

	t.Run("RelayModels", func(t *testing.T) {
		// The Terminate that returns a backend is caught by the goroutine relay's client pump
		// and by the epoll loop as by the io_uring loop.
		for name, cfg := range map[string]Config{"goroutines": {GoroutineRelay: true}, "epoll": {NoIOURing: true}} {
			cfg.Name, cfg.Backends, cfg.authenticate = name, &staticBackends{writer: sock}, trustInRouter()
			rm, maddr, _ := startRouter(t, cfg)
			first := visit(t, maddr, "")
			waitIdle(t, rm, 1)
			c := connect(t, dsn(maddr, "postgres", "", ""))
			if got := backendPID(t, c); got != first {
				t.Fatalf("%s: the second client got backend %d, want the pooled %d", name, got, first)
			}
			if _, err := c.Exec(ctx, "SELECT pg_sleep(0.2)"); err != nil { // past the pump's hand-over
				t.Fatal(err)
			}
			c.Close(ctx)
			waitIdle(t, rm, 1)
			if got := visit(t, maddr, ""); got != first {
				t.Fatalf("%s: backend %d after a longer session, want the pooled %d", name, got, first)
			}
			rm.Close()
		}
	})

	t.Run("RouterSCRAM", func(t *testing.T) {
		// The real thing: the router authenticates alice with SCRAM itself (auth.go), on a
		// node reached over TCP with the Unix socket as its private path.
		rs, saddr := scramRouter(t, srv, "alice", "wonderland")
		pids := make([]int, 2)
		for i := range pids {
			c := connect(t, dsn(saddr, "alice", "wonderland", ""))
			pids[i] = backendPID(t, c)
			c.Close(ctx)
			waitIdle(t, rs, 1)
		}
		if pids[0] != pids[1] || rs.AuthStats().Succeeded != 2 {
			t.Fatalf("alice's backends %v (authenticated by the router %d times): want one pooled backend reused", pids, rs.AuthStats().Succeeded)
		}
		if _, err := pgx.Connect(ctx, dsn(saddr, "alice", "wrong", "")); pgCode(err) != "28P01" {
			t.Fatalf("a wrong password with a backend pooled: %v, want 28P01", err)
		}
	})

	t.Run("RealClients", func(t *testing.T) {
		r.pool.evict("", closedDrain)
		host, port := splitAddr(t, addr)
		psql := func() string {
			out, err := exec.Command("psql", "-X", "-At", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres",
				"-c", "SELECT pg_backend_pid()").CombinedOutput()
			if err != nil {
				t.Fatalf("psql: %v\n%s", err, out)
			}
			return strings.TrimSpace(string(out))
		}
		first := psql()
		waitIdle(t, r, 1)
		if second := psql(); second != first {
			t.Fatalf("psql got backend %s, then %s: not reused", second, first)
		}
		waitIdle(t, r, 1)
		py := `import psycopg2, sys
c = psycopg2.connect(host=sys.argv[1], port=sys.argv[2], user="postgres", dbname="postgres", application_name="py")
cur = c.cursor(); cur.execute("SELECT pg_backend_pid(), current_setting('application_name')"); pid, app = cur.fetchone()
c.commit(); c.close(); print(pid, app)`
		out, err := exec.Command("/usr/bin/python3", "-c", py, host, port).CombinedOutput()
		if err != nil {
			t.Fatalf("psycopg2: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != first+" py" {
			t.Fatalf("psycopg2 got %q, want the pooled backend %s with application_name py", got, first)
		}
	})
}

// scramRouter makes srv ask for SCRAM on TCP (postgres and the Unix socket stay trusted),
// creates role with password, and starts a router that reaches srv over TCP with the Unix
// socket as its private path: the router authenticates role itself (auth.go).
func scramRouter(t *testing.T, srv *pgtest.Server, role, password string) (*Router, string) {
	t.Helper()
	hba := "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(srv.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Exec("postgres", "SELECT pg_reload_conf()")
	srv.Exec("postgres", fmt.Sprintf("SET password_encryption = 'scram-sha-256'; CREATE ROLE %s LOGIN PASSWORD '%s'", role, password))
	sock := unixSocket(srv)
	r, addr, _ := startRouter(t, Config{Name: "scram-" + role, Backends: &staticBackends{writer: fmt.Sprintf("127.0.0.1:%d", srv.Port)},
		PrivateAddr: func(string) string { return sock }})
	return r, addr
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

// TestBackendPoolTimeoutsAndRestart: an idle timeout closes pooled backends; a node restart
// leaves dead ones, which no client gets; a full server (53300) evicts the pooled ones.
func TestBackendPoolTimeoutsAndRestart(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{Settings: map[string]string{
		"max_connections": "8", "superuser_reserved_connections": "0", "max_wal_senders": "0"}})
	sock := unixSocket(srv)
	r, addr, _ := startRouter(t, Config{Name: "pool2", Backends: &staticBackends{writer: sock}, HoldTimeout: 5 * time.Second,
		PoolIdleTimeout: 2 * time.Second, authenticate: trustInRouter("relayed")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv.Exec("postgres", "CREATE ROLE relayed LOGIN")

	t.Run("IdleTimeout", func(t *testing.T) {
		pid := visit(t, addr, "")
		waitIdle(t, r, 1)
		waitIdle(t, r, 0)
		backendGone(t, srv, pid)
	})

	t.Run("TooManyClientsEvicts", func(t *testing.T) {
		// Every slot holds a pooled backend of another key: a client still gets in, whether
		// the router authenticated it or relayed its authentication to a new backend.
		for _, who := range []string{"template1", "relayed"} {
			cs := make([]*pgx.Conn, 8)
			for i := range cs {
				cs[i] = connect(t, dsn(addr, "postgres", "", ""))
			}
			for _, c := range cs {
				c.Close(ctx)
			}
			waitIdle(t, r, 8)
			d := dsn(addr, who, "", "")
			if who == "template1" {
				d = strings.Replace(dsn(addr, "postgres", "", ""), "/postgres?", "/template1?", 1)
			}
			c := connect(t, d)
			backendPID(t, c)
			c.Close(ctx)
		}
		r.pool.evict("", closedDrain)
	})

	t.Run("Restart", func(t *testing.T) {
		pid := visit(t, addr, "")
		waitIdle(t, r, 1)
		if err := srv.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		srv.Restart()
		if got := visit(t, addr, ""); got == pid {
			t.Fatal("a backend of the stopped server was handed out")
		}
	})
}

// TestPoolRoleSettings: after ALTER ROLE/DATABASE ... SET, through the router or directly on
// the node, a new client gets a backend with the new settings, never a pooled one that
// started before (poolsettings.go); the pool keeps working after.
func TestPoolRoleSettings(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	r, addr := scramRouter(t, srv, "app", "secret")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// visit returns the backend pid and work_mem a new client of app gets, and leaves.
	visit := func(stmts ...string) (int, string) {
		t.Helper()
		c := connect(t, dsn(addr, "app", "secret", ""))
		var pid int
		var mem string
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('work_mem')").Scan(&pid, &mem); err != nil {
			t.Fatal(err)
		}
		for _, q := range stmts {
			if _, err := c.Exec(ctx, q); err != nil {
				t.Fatal(q, err)
			}
		}
		idle := r.BackendPool().Idle
		c.Close(ctx)
		waitUntil(t, "the backend back in the pool", 30*time.Second, func() bool { return r.BackendPool().Idle == idle+1 })
		return pid, mem
	}
	first, mem := visit()
	if again, _ := visit(); again != first || mem != "4MB" {
		t.Fatalf("backends %d then %d, work_mem %s: want one pooled backend with the default", first, again, mem)
	}

	// Through the router: a role may set its own defaults. The backend it ran on went back to
	// the pool under the old settings; the next login closes it at once (not at the 5-minute
	// idle timeout) and counts a settings miss.
	if st := r.BackendPool(); st.SettingsMisses != 0 || st.Closed[closedSettings] != 0 {
		t.Fatalf("pool %+v before any settings change", st)
	}
	visit("ALTER ROLE app SET work_mem = '64MB'")
	pid, mem := visit()
	if mem != "64MB" || pid == first {
		t.Fatalf("after ALTER ROLE app SET work_mem through the router: backend %d (the old one: %d), work_mem %s, want 64MB", pid, first, mem)
	}
	backendGone(t, srv, first)
	if st := r.BackendPool(); st.SettingsMisses != 1 || st.Closed[closedSettings] != 1 || st.Idle != 1 {
		t.Fatalf("pool %+v after one login under new settings: want 1 settings miss, 1 closed for settings, 1 idle", st)
	}
	if again, mem := visit(); again != pid || mem != "64MB" {
		t.Fatalf("the pool stopped reusing after the change: backend %d then %d (work_mem %s)", pid, again, mem)
	}

	// Directly on the node, for the database this time, and read by psql.
	srv.Exec("postgres", "ALTER ROLE app IN DATABASE postgres SET work_mem = '32MB'")
	host, port := splitAddr(t, addr)
	cmd := exec.Command("psql", "-X", "-At", "-h", host, "-p", port, "-U", "app", "-d", "postgres",
		"-c", "SELECT pg_backend_pid(), current_setting('work_mem')")
	cmd.Env = append(os.Environ(), "PGPASSWORD=secret")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got == fmt.Sprintf("%d|64MB", pid) || !strings.HasSuffix(got, "|32MB") {
		t.Fatalf("psql after ALTER ROLE ... IN DATABASE SET on the node got %q, want a new backend with 32MB", got)
	}
	backendGone(t, srv, pid) // the 64MB one, closed by psql's login
	if st := r.BackendPool(); st.SettingsMisses != 2 || st.Closed[closedSettings] != 2 {
		t.Fatalf("pool %+v after psql's login under the node's change: want 2 settings misses", st)
	}
	srv.Exec("postgres", "ALTER ROLE app IN DATABASE postgres RESET ALL; ALTER ROLE app RESET ALL")
	if _, mem := visit(); mem != "4MB" {
		t.Fatalf("after RESET ALL on the node: work_mem %s, want the default", mem)
	}

	// A backend in use across a change is closed when its client leaves, not pooled.
	held := connect(t, dsn(addr, "app", "secret", ""))
	heldPID := backendPID(t, held)
	srv.Exec("postgres", "ALTER ROLE app SET work_mem = '16MB'")
	if _, mem := visit(); mem != "16MB" {
		t.Fatalf("after ALTER ROLE app SET work_mem = '16MB' on the node: work_mem %s", mem)
	}
	closed := r.BackendPool().Closed[closedSettings]
	held.Close(ctx)
	backendGone(t, srv, heldPID)
	if st := r.BackendPool(); st.Closed[closedSettings] != closed+1 || st.Idle != 1 {
		t.Fatalf("pool %+v after a client of the old settings left: want its backend closed for settings, 1 idle", st)
	}
}

// TestPoolAfterMoveAndReplay: a session moved by a reboot (Park, restart, Resume) or replayed
// after its backend died returns its new backend to the pool when the client leaves, and the
// next client gets that backend (same pid), reset.
func TestPoolAfterMoveAndReplay(t *testing.T) {
	pgtest.RequireInstalled(t)
	srv := pgtest.Start(t, pgtest.Options{})
	sock := unixSocket(srv)
	r, addr, _ := startRouter(t, Config{Name: "poolmove", Backends: &staticBackends{writer: sock}, HoldTimeout: 90 * time.Second,
		IdleSnapshotAfter: 100 * time.Millisecond, authenticate: trustInRouter()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := func(app string) *pgx.Conn {
		return connect(t, dsn(addr, "postgres", "", "sslmode=disable&application_name="+app))
	}
	// leave closes c and waits for its backend to be back in the pool.
	leave := func(c *pgx.Conn) {
		t.Helper()
		idle := r.BackendPool().Idle
		c.Close(ctx)
		waitIdle(t, r, idle+1)
	}
	// reused checks that a new client gets backend pid, reset and with its own application_name.
	reused := func(pid int, app string) *pgx.Conn {
		t.Helper()
		c := client(app)
		var got int
		var path, gotApp string
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('search_path'), current_setting('application_name')").Scan(&got, &path, &gotApp); err != nil {
			t.Fatal(err)
		}
		if got != pid || path != `"$user", public` || gotApp != app {
			t.Fatalf("the next client got backend %d (search_path %s, application_name %s), want the pooled %d, reset, as %s", got, path, gotApp, pid, app)
		}
		return c
	}

	c := client("mover")
	if _, err := c.Exec(ctx, "SET search_path = elsewhere, public"); err != nil {
		t.Fatal(err)
	}
	first := backendPID(t, c)
	p := r.Park(ctx, sock, MoveOptions{Reason: "reboot"})
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if rep := p.Resume(ctx, sock); rep.Moved != 1 {
		t.Fatalf("move report %+v", rep)
	}
	var moved int
	var path string
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('search_path')").Scan(&moved, &path); err != nil || moved == first || path != "elsewhere, public" {
		t.Fatalf("after the reboot move: backend %d (before %d), search_path %q, %v", moved, first, path, err)
	}
	leave(c)
	c = reused(moved, "after-move")

	// Its backend terminated while idle: the session is replayed on a new backend, which
	// the pool takes back too.
	waitUntil(t, "the session's crash snapshot", 30*time.Second, func() bool {
		ss := r.Sessions()
		return len(ss) == 1 && ss[0].Replayable
	})
	recovered := r.RecoveredSessions()
	srv.Exec("postgres", "SELECT pg_terminate_backend($1)", moved)
	waitUntil(t, "the replay", 90*time.Second, func() bool { return r.RecoveredSessions() > recovered })
	replayed := backendPID(t, c)
	if replayed == moved {
		t.Fatal("the terminated backend still answers")
	}
	leave(c)
	reused(replayed, "after-replay").Close(ctx)
}

// TestPoolIdleTimeoutSetting: the idle timeout is Config.PoolIdleTimeout, else
// BOREALIS_ROUTER_POOL_IDLE_TIMEOUT, else 5 minutes; a bad value is refused with the
// variable's name. With the variable at 12 s, a real pooled backend is reused while idle and
// closed by the router once idle for 12 s, not before (pg_stat_activity on the server).
func TestPoolIdleTimeoutSetting(t *testing.T) {
	defaults := func() time.Duration {
		var cfg Config
		cfg.limitDefaults()
		return cfg.PoolIdleTimeout
	}
	t.Setenv(PoolIdleTimeoutEnv, "")
	if got := defaults(); got != 5*time.Minute || DefaultPoolIdleTimeout != 5*time.Minute {
		t.Fatalf("default idle timeout %s, want 5m", got)
	}
	for v, want := range map[string]time.Duration{"90": 90 * time.Second, "10m": 10 * time.Minute, " 1s ": time.Second, "1h": time.Hour} {
		t.Setenv(PoolIdleTimeoutEnv, v)
		if got, err := PoolIdleTimeoutFromEnv(); err != nil || got != want || defaults() != want {
			t.Fatalf("%s=%q: %s (%v), defaults %s; want %s", PoolIdleTimeoutEnv, v, got, err, defaults(), want)
		}
	}
	cfg := Config{PoolIdleTimeout: 7 * time.Second}
	cfg.limitDefaults()
	if cfg.PoolIdleTimeout != 7*time.Second {
		t.Fatalf("Config.PoolIdleTimeout 7s became %s with %s set", cfg.PoolIdleTimeout, PoolIdleTimeoutEnv)
	}
	for _, v := range []string{"0", "-5s", "500ms", "61m", "1.5", "soon", "5 m"} {
		t.Setenv(PoolIdleTimeoutEnv, v)
		if _, err := PoolIdleTimeoutFromEnv(); err == nil || !strings.Contains(err.Error(), PoolIdleTimeoutEnv) {
			t.Fatalf("%s=%q accepted (%v)", PoolIdleTimeoutEnv, v, err)
		}
		if got := defaults(); got != DefaultPoolIdleTimeout {
			t.Fatalf("a bad %s=%q gave %s", PoolIdleTimeoutEnv, v, got)
		}
	}

	pgtest.RequireInstalled(t)
	const timeout = 12 * time.Second
	t.Setenv(PoolIdleTimeoutEnv, "12")
	srv := pgtest.Start(t, pgtest.Options{})
	r, addr, _ := startRouter(t, Config{Name: "poolidle", Backends: &staticBackends{writer: unixSocket(srv)}, authenticate: trustInRouter()})
	if r.cfg.PoolIdleTimeout != timeout {
		t.Fatalf("router idle timeout %s, want %s from the environment", r.cfg.PoolIdleTimeout, timeout)
	}
	pid := visit(t, addr, "")
	waitIdle(t, r, 1)
	if again := visit(t, addr, ""); again != pid {
		t.Fatalf("the second client got backend %d, want the pooled %d", again, pid)
	}
	left := time.Now()
	waitIdle(t, r, 1)
	alive := func() bool {
		return srv.QueryValue("postgres", "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == "1"
	}
	for alive() {
		if time.Since(left) > timeout+90*time.Second {
			t.Fatalf("pooled backend %d still open %s after its client left (idle timeout %s)", pid, time.Since(left), timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if gone := time.Since(left); gone < timeout {
		t.Fatalf("pooled backend %d closed %s after its client left, before the idle timeout %s", pid, gone, timeout)
	}
	if st := r.BackendPool(); st.Idle != 0 || st.Closed[closedIdleTimeout] != 1 || st.ClosedByReason()["idle_timeout"] != 1 {
		t.Fatalf("pool %+v after the idle timeout: want none idle, 1 closed for idle_timeout", st)
	}
}
