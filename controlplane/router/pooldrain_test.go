package router

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/internal/pgtest"
)

func TestFindDatabaseDDL(t *testing.T) {
	all := ddlTarget{all: true}
	dbs := func(names ...string) ddlTarget { return ddlTarget{dbs: names} }
	for _, tc := range []struct {
		sql  string
		want ddlTarget
	}{
		{"SELECT 1", ddlTarget{}},
		{"DROP DATABASE app", dbs("app")},
		{"drop database App;", dbs("app")},
		{"  /* a /* nested */ comment */ DrOp -- line\n DATABASE\t\"My App\" WITH (FORCE)", dbs("My App")},
		{`DROP DATABASE "we""ird"`, dbs(`we"ird`)},
		{"DROP DATABASE IF EXISTS gone", dbs("gone")},
		{"DROP DATABASE if", dbs("if")},
		{"DROP DATABASE IF EXISTS \"x\";DROP DATABASE y", dbs("x", "y")},
		{"CREATE DATABASE snap TEMPLATE app", dbs("app")},
		{"CREATE DATABASE snap WITH TEMPLATE = \"App\" OWNER me", dbs("App")},
		{"CREATE DATABASE snap TEMPLATE 'Quoted'", dbs("Quoted")},
		{"CREATE DATABASE snap", dbs("template1")},
		{"CREATE DATABASE snap TEMPLATE DEFAULT", dbs("template1")},
		{"CREATE DATABASE snap OWNER template ENCODING 'UTF8'", dbs("template1")},
		{"CREATE DATABASE snap CONNECTION LIMIT = -1 IS_TEMPLATE true template tpl", dbs("tpl")},
		{"CREATE DATABASE snap TEMPLATE E'a\\'b'", all},
		{"CREATE DATABASE snap (oops)", ddlTarget{all: true, dbs: []string{"template1"}}},
		{"ALTER DATABASE app RENAME TO app2", dbs("app")},
		{"ALTER DATABASE app SET TABLESPACE t", dbs("app")},
		{"ALTER DATABASE U&\"d\\0061t\" RENAME TO x", all},
		{"ALTER DATABASE Ünicode RENAME TO x", all},
		{"ALTER DATABASE \"Ünicode\" RENAME TO x", dbs("Ünicode")},
		{"DROP DATABASE " + strings.Repeat("a", 64), all},
		{"DROP DATABASE " + strings.Repeat("a", 63), dbs(strings.Repeat("a", 63))},
		{"DROP DATABASE $1", all},
		// Not DDL: inside strings, comments, dollar quotes, or not at a statement's start.
		{"SELECT 'DROP DATABASE app'", ddlTarget{}},
		{"SELECT E'\\';DROP DATABASE app'", ddlTarget{}},
		{"SELECT 1 -- ; DROP DATABASE app", ddlTarget{}},
		{"/* ; DROP DATABASE app */ SELECT 1", ddlTarget{}},
		{"SELECT $x$ ; DROP DATABASE app $x$", ddlTarget{}},
		{"SELECT $$ ; DROP $x$ DATABASE app $$", ddlTarget{}},
		{"SELECT \"; DROP DATABASE app\"", ddlTarget{}},
		{"DROP TABLE database", ddlTarget{}},
		{"COMMENT ON DATABASE app IS 'x'", ddlTarget{}},
		{"CREATE TABLE t (database int); DROP DATABASE \"a;b\"", dbs("a;b")},
		{"SELECT $1; ALTER DATABASE x OWNER TO y", dbs("x")},
		{"SELECT 1/2; drop/**/database d", dbs("d")},
		{"SELECT 1-2; drop database d", dbs("d")},
		{"SELECT b'01', x'ff', n'n'; drop database d", dbs("d")},
		{"SELECT U&'\\0041' ; drop database d", dbs("d")},
		{"DROP DATABASE", ddlTarget{}},
	} {
		got := findDatabaseDDL([]byte(tc.sql))
		if got.all != tc.want.all || !reflect.DeepEqual(append([]string{}, got.dbs...), append([]string{}, tc.want.dbs...)) {
			t.Errorf("%q: got %+v, want %+v", tc.sql, got, tc.want)
		}
		// Fed a byte at a time (a message split over many reads), the answer is the same.
		for _, parse := range []bool{true, false} {
			if got2 := findInPieces(tc.sql, 1, parse); !sameTarget(got, got2) {
				t.Errorf("%q fed a byte at a time: got %+v, want %+v", tc.sql, got2, got)
			}
		}
	}
}

func sameTarget(a, b ddlTarget) bool {
	return a.all == b.all && reflect.DeepEqual(append([]string{}, a.dbs...), append([]string{}, b.dbs...))
}

// findInPieces runs sql as a Query message through clientDDL as the relay does, its body
// split in pieces of size k; as a Parse named "stmt" when asParse.
func findInPieces(sql string, k int, asParse bool) ddlTarget {
	var d clientDDL
	body := append([]byte(sql), 0)
	typ := byte('Q')
	if asParse {
		typ = 'P'
		body = append([]byte("stmt\x00"), append(body, 0, 0)...)
	}
	var out ddlTarget
	first := min(k, len(body))
	out = d.begin(typ, body[:first], first == len(body))
	if first < len(body) {
		d.more(body[:first], false) // the relay's skip over the part of the body in this read
	}
	for pos := first; pos < len(body); pos += k {
		end := min(pos+k, len(body))
		t := d.more(body[pos:end], end == len(body))
		if !t.none() {
			out = ddlTarget{all: t.all, dbs: append([]string(nil), t.dbs...)}
		}
	}
	return out
}

func TestClientDDLNamedStatements(t *testing.T) {
	var d clientDDL
	parse := func(name, sql string) ddlTarget {
		return d.begin('P', []byte(name+"\x00"+sql+"\x00\x00\x00"), true)
	}
	bind := func(stmt string) ddlTarget {
		t, need := d.bind([]byte("\x00"+stmt+"\x00\x00\x00"), true)
		if need != 0 {
			panic("need")
		}
		return t
	}
	if got := parse("s1", "CREATE DATABASE snap TEMPLATE app"); !sameTarget(got, ddlTarget{dbs: []string{"app"}}) {
		t.Fatalf("parse: %+v", got)
	}
	parse("s2", "SELECT 1")
	if got := bind("s1"); !sameTarget(got, ddlTarget{dbs: []string{"app"}}) {
		t.Fatalf("a Bind of a cached DDL statement drains nothing: %+v", got)
	}
	if got := bind("s2"); !got.none() {
		t.Fatalf("a Bind of SELECT drains %+v", got)
	}
	// A partial Bind asks for more bytes; replaced and closed statements are forgotten.
	if _, need := d.bind([]byte("\x00s"), false); need == 0 {
		t.Fatal("a Bind cut inside its statement name was judged")
	}
	parse("s1", "SELECT 2")
	if got := bind("s1"); !got.none() {
		t.Fatalf("a replaced statement still drains: %+v", got)
	}
	parse("s3", "DROP DATABASE x")
	d.closeStmt([]byte("Ss3\x00"))
	if got := bind("s3"); !got.none() {
		t.Fatalf("a closed statement still drains: %+v", got)
	}
}

func TestErrorCode(t *testing.T) {
	body := []byte("SERROR\x00VERROR\x00C55006\x00Msource database \"app\" is being accessed by other users\x00\x00")
	if got := errorCode(body); got != "55006" {
		t.Fatalf("errorCode %q", got)
	}
	for _, b := range []string{"", "\x00", "C", "C5500", "Mx\x00"} {
		if got := errorCode([]byte(b)); got != "" {
			t.Fatalf("errorCode(%q) = %q", b, got)
		}
	}
}

// FuzzDatabaseDDL: any text, fed whole or in pieces, as a Query or a Parse, never panics,
// gives the same answer however it is split, and names only databases it read.
func FuzzDatabaseDDL(f *testing.F) {
	for _, s := range []string{"DROP DATABASE x", "CREATE DATABASE a TEMPLATE \"b\"", "SELECT $a$ $ $a$; alter database q",
		"/* /* */", "E'\\", "U&\"", "$", "$1$", "'", "\"\"\"", "create database x with connection limit = -1 template 'z'",
		"drop database if exists \"if\";drop database if"} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, sql string, k uint8) {
		if strings.IndexByte(sql, 0) >= 0 {
			return // a NUL ends the text in a message
		}
		whole := findDatabaseDDL([]byte(sql))
		for _, parse := range []bool{false, true} {
			got := findInPieces(sql, int(k)%17+1, parse)
			if !sameTarget(whole, got) {
				t.Fatalf("%q split in pieces of %d (parse %v): %+v, whole %+v", sql, int(k)%17+1, parse, got, whole)
			}
		}
		if lower := strings.Map(func(r rune) rune {
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, sql); mentionsDatabase([]byte(sql)) != strings.Contains(lower, "database") {
			t.Fatalf("mentionsDatabase(%q) = %v", sql, mentionsDatabase([]byte(sql)))
		}
		for _, db := range whole.dbs {
			if len(db) == 0 || len(db) > maxDDLName {
				t.Fatalf("%q: a name of %d bytes", sql, len(db))
			}
		}
		// A Bind of any bytes never panics either.
		var d clientDDL
		d.begin('P', []byte("s\x00"+sql+"\x00\x00\x00"), true)
		d.bind([]byte(sql), false)
		d.bind([]byte(sql), true)
		d.closeStmt([]byte(sql))
		errorCode([]byte(sql))
	})
}

// BenchmarkClientDDL is the relay's cost for a pgbench -S query (no DDL: the pre-filter).
func BenchmarkClientDDL(b *testing.B) {
	var d clientDDL
	q := []byte("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;\x00")
	for i := 0; i < b.N; i++ {
		d.begin('Q', q, true)
	}
}

// dbDSN is dsn for database db.
func dbDSN(addr, db string) string {
	return strings.Replace(dsn(addr, "postgres", "", ""), "/postgres?", "/"+url.PathEscape(db)+"?", 1)
}

// fillPool connects k clients to db through the router at addr and lets them leave, then
// waits until their k backends sit in the pool: still sessions on db (pg_stat_activity), with
// no client.
func fillPool(t *testing.T, r *Router, srv *pgtest.Server, addr, db string, k int) {
	t.Helper()
	ctx := context.Background()
	idle := r.BackendPool().Idle
	cs := make([]*pgx.Conn, k)
	for i := range cs {
		cs[i] = connect(t, dbDSN(addr, db))
		backendPID(t, cs[i])
	}
	for _, c := range cs {
		c.Close(ctx)
	}
	waitUntil(t, fmt.Sprintf("%d pooled backends on %s", k, db), 30*time.Second, func() bool {
		return r.BackendPool().Idle >= idle+int64(k) &&
			srv.QueryValue("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db) == fmt.Sprint(k)
	})
}

// TestDatabaseDDLDrainsPool: DROP DATABASE and CREATE DATABASE ... TEMPLATE, sent through the
// router by psql, pgx and psycopg2 right after clients of that database left their backends in
// the pool, succeed without FORCE, in every relay mode (pooldrain.go); a 55006 the router did
// not foresee drains the node's idle pooled backends.
func TestDatabaseDDLDrainsPool(t *testing.T) {
	pgtest.RequireInstalled(t)
	// Without fsync: CREATE and DROP DATABASE write and sync a database's files, which took
	// seconds each on a loaded machine and proves nothing here.
	srv := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"fsync": "off"}})
	sock := unixSocket(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, model := range ioModels {
		t.Run(model, func(t *testing.T) {
			if model == "IOURing" && iouDisabledByEnv() {
				t.Skip("BOREALIS_ROUTER_IOURING=off is set: the loop runs on epoll, tested by Epoll")
			}
			r, addr, _ := startRouter(t, inIOModel(Config{Name: "ddl", Backends: &staticBackends{writer: sock}, HoldTimeout: 5 * time.Second,
				authenticate: trustInRouter()}, model))
			app, snap := "app_"+strings.ToLower(model), "Snap "+model
			srv.Exec("postgres", "CREATE DATABASE "+app)
			host, port := splitAddr(t, addr)
			ddl := func(what string, run func() error) {
				t.Helper()
				drains := r.BackendPool().DDLDrains
				start := time.Now()
				if err := run(); err != nil {
					t.Fatalf("%s through the router with the pool holding backends on it: %v", what, err)
				}
				t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
				if r.BackendPool().DDLDrains == drains {
					t.Fatalf("%s: the router did not drain", what)
				}
			}

			// psql: CREATE DATABASE ... TEMPLATE, the template's backends pooled.
			fillPool(t, r, srv, addr, app, 2)
			if model == "IOURing" {
				// The control: the same statement on a direct connection fails on them
				// (after PostgreSQL's 5 s wait for them to exit).
				d, err := pgx.Connect(ctx, srv.DSN("postgres"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := d.Exec(ctx, fmt.Sprintf(`CREATE DATABASE "%s" TEMPLATE %s`, snap, app)); pgCode(err) != "55006" {
					t.Fatalf("a direct CREATE DATABASE ... TEMPLATE with the template's backends pooled: %v, want 55006", err)
				}
				d.Close(ctx)
			}
			ddl("psql CREATE DATABASE TEMPLATE", func() error {
				out, err := exec.Command("psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres",
					"-c", fmt.Sprintf(`/* snapshot */ create database "%s" template %s`, snap, app)).CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})

			// A 55006 the router did not foresee (here: dropping the database one is on)
			// closes the node's idle pooled backends.
			fillPool(t, r, srv, addr, app, 2)
			o := connect(t, dsn(addr, "postgres", "", ""))
			if _, err := o.Exec(ctx, "DROP DATABASE postgres"); pgCode(err) != "55006" {
				t.Fatalf("dropping the current database: %v, want 55006", err)
			}
			if st := r.BackendPool(); st.Idle != 0 {
				t.Fatalf("a 55006 left %d idle pooled backends", st.Idle)
			}
			o.Close(ctx)
			if model != "IOURing" {
				return // the other clients' protocols meet the same code in every mode
			}

			// pgx: DROP DATABASE of a database with pooled backends; then the same CREATE ...
			// TEMPLATE twice on one connection, the second time from pgx's statement cache
			// (Bind without Parse).
			c := connect(t, dsn(addr, "postgres", "", ""))
			fillPool(t, r, srv, addr, snap, 1)
			ddl("pgx DROP DATABASE", func() error {
				_, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE "%s"`, snap))
				return err
			})
			create := fmt.Sprintf(`CREATE DATABASE "%s" TEMPLATE %s`, snap, app)
			for i := range 2 {
				fillPool(t, r, srv, addr, app, 2)
				ddl(fmt.Sprintf("pgx CREATE DATABASE TEMPLATE (%d)", i+1), func() error {
					_, err := c.Exec(ctx, create)
					return err
				})
				if _, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE "%s"`, snap)); err != nil {
					t.Fatal(err)
				}
			}
			c.Close(ctx)

			// psycopg2: DROP DATABASE (autocommit: it cannot run in a transaction block).
			fillPool(t, r, srv, addr, app, 2)
			ddl("psycopg2 DROP DATABASE", func() error {
				py := `import psycopg2, sys
c = psycopg2.connect(host=sys.argv[1], port=sys.argv[2], user="postgres", dbname="postgres")
c.autocommit = True
c.cursor().execute("-- drop it\nDROP DATABASE IF EXISTS " + sys.argv[3]); c.close()`
				out, err := exec.Command("/usr/bin/python3", "-c", py, host, port, app).CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
			if n := srv.QueryValue("postgres", "SELECT count(*) FROM pg_database WHERE datname = $1", app); n != "0" {
				t.Fatalf("%s still exists", app)
			}
		})
	}
}
