package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/safefile"
)

// asNodeUser runs a shell command as the nodes' OS user (the same user when not root), as
// someone who took over a node — e.g. a database superuser through COPY ... TO PROGRAM — would.
func asNodeUser(t *testing.T, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if _, separate, _ := pgproc.ServerUID(); separate {
		cmd = exec.Command("runuser", "-u", pgproc.ServerUser, "--", "sh", "-c", script)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func statOf(t *testing.T, path string) (uid int, perm os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid), fi.Mode().Perm()
}

// TestControlPlaneFilesAndPlantedLinks: the home and clusters/ belong to the control plane and
// the nodes' user cannot write there; a link the nodes' user plants where the control plane
// opens a node's log is refused (the node does not start, the target is untouched), and the
// node comes back once the link is gone.
func TestControlPlaneFilesAndPlantedLinks(t *testing.T) {
	home := newHome(t)
	nodeUID, _, err := pgproc.ServerUID()
	if err != nil {
		t.Fatal(err)
	}
	// Earlier versions handed the home to the nodes' user: PrepareHome takes it back.
	if err := os.Chown(home, nodeUID, -1); err != nil {
		t.Fatal(err)
	}
	if err := PrepareHome(home); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, home)
	for _, dir := range []string{home, filepath.Join(home, "clusters")} {
		if uid, perm := statOf(t, dir); uid != os.Geteuid() || perm != 0o711 {
			t.Errorf("%s: uid %d mode %04o, want uid %d mode 0711", dir, uid, perm, os.Geteuid())
		}
	}
	if out, err := asNodeUser(t, "touch "+filepath.Join(home, "planted")+" || exit 3; exit 0"); err == nil && os.Geteuid() == 0 {
		t.Errorf("the nodes' user could create a file in the home: %s", out)
	}
	if _, err := m.Create(CreateInput{Name: "linked", Readers: 0, MasterUserInput: MasterUserInput{
		MasterUsername: "admin", MasterUserPassword: "password", DatabaseName: "vector_db"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := m.WaitAvailable(ctx, "linked")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("MasterUser", func(t *testing.T) { checkMasterUser(t, m, d) })
	cdir := m.clusterDir("linked")
	if uid, perm := statOf(t, cdir); uid != nodeUID || perm != 0o700 {
		t.Errorf("%s: uid %d mode %04o, want the nodes' uid %d and 0700", cdir, uid, perm, nodeUID)
	}
	victim := filepath.Join(home, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writer := d.DBClusterMembers[0]
	logPath := filepath.Join(cdir, writer.DBInstanceIdentifier) + ".log"
	if out, err := asNodeUser(t, "ln -sf "+victim+" "+logPath+".new && mv -f "+logPath+".new "+logPath); err != nil {
		t.Fatalf("planting the link as the nodes' user: %v: %s", err, out)
	}
	after := lastSeq(t, m)
	if err := syscall.Kill(writer.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused restart", 2*time.Minute, func() bool {
		evs, _ := m.Events("linked", 0)
		for _, e := range evs {
			if e.Seq > after && e.Type == "member.start-failed" && strings.Contains(e.Message, "symbolic link") {
				return true
			}
		}
		return false
	})
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Fatalf("the control plane wrote through the planted link: %q", data)
	}
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitAvailable(ctx, "linked"); err != nil {
		t.Fatal(err)
	}
}

func dsnFor(user, password, addr, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password, addr, db)
}

func mustConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting as %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// checkMasterUser: the master user logs in with its password only, is not a superuser, finds
// vector and borealis_hnsw in its database and in databases it creates, and can create roles;
// nobody gets in without a password, not even postgres; a modify rotates the password.
func checkMasterUser(t *testing.T, m *Manager, d Description) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if d.MasterUsername != "admin" || d.DatabaseName != "vector_db" || d.MasterUserSecret != nil {
		t.Fatalf("describe: user %q database %q secret %+v", d.MasterUsername, d.DatabaseName, d.MasterUserSecret)
	}
	for _, dsn := range []string{dsnFor("admin", "wrong-password", d.Endpoint, "vector_db"), dsnFor("postgres", "", d.Endpoint, "postgres"),
		dsnFor("postgres", "", fmt.Sprintf("127.0.0.1:%d", d.DBClusterMembers[0].Port), "postgres")} {
		if _, err := pgx.Connect(ctx, dsn); sqlState(err) != "28P01" {
			t.Errorf("%s: %v, want 28P01 (password authentication failed)", dsn, err)
		}
	}
	c := mustConnect(t, dsnFor("admin", "password", d.Endpoint, "vector_db"))
	var super, createdb, createrole bool
	if err := c.QueryRow(ctx, "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user").Scan(&super, &createdb, &createrole); err != nil {
		t.Fatal(err)
	}
	if super || !createdb || !createrole {
		t.Fatalf("master user: superuser %v createdb %v createrole %v, want false true true", super, createdb, createrole)
	}
	if _, err := c.Exec(ctx, "COPY (SELECT 1) TO PROGRAM 'true'"); sqlState(err) != "42501" {
		t.Fatalf("COPY TO PROGRAM as the master user: %v, want 42501", err)
	}
	// The seed's statements, as the master user.
	for _, q := range []string{
		"CREATE EXTENSION IF NOT EXISTS vector",
		"CREATE TABLE documents (id serial PRIMARY KEY, embedding vector(3), metadata jsonb)",
		"CREATE INDEX ON documents USING borealis_hnsw (embedding vector_cosine_ops)",
		"INSERT INTO documents (embedding) VALUES ('[1,0,0]'), ('[0,1,0]')",
		"CREATE DATABASE made_later",
		"CREATE ROLE app LOGIN PASSWORD 'app-password'",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	later := mustConnect(t, dsnFor("admin", "password", d.Endpoint, "made_later"))
	if _, err := later.Exec(ctx, "CREATE TABLE t (v vector(2)); CREATE INDEX ON t USING borealis_hnsw (v vector_l2_ops)"); err != nil {
		t.Fatalf("borealis_hnsw in a database the master user made: %v", err)
	}
	// Rotation: a given password, then a managed one.
	newPW := "rotated-pw"
	if _, err := m.Modify("linked", ModifyInput{MasterUserModify: MasterUserModify{MasterUserPassword: &newPW}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, dsnFor("admin", "password", d.Endpoint, "vector_db")); sqlState(err) != "28P01" {
		t.Fatalf("old password after rotation: %v, want 28P01", err)
	}
	mustConnect(t, dsnFor("admin", newPW, d.Endpoint, "vector_db"))
	yes := true
	rd, err := m.Modify("linked", ModifyInput{MasterUserModify: MasterUserModify{RotateMasterUserPassword: &yes}})
	if err != nil {
		t.Fatal(err)
	}
	if rd.MasterUserSecret == nil {
		t.Fatal("no MasterUserSecret after a managed rotation")
	}
	managed, err := safefile.ReadFile(rd.MasterUserSecret.SecretFile, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	mustConnect(t, dsnFor("admin", strings.TrimSpace(string(managed)), d.Endpoint, "vector_db"))
	if _, err := pgx.Connect(ctx, dsnFor("admin", newPW, d.Endpoint, "vector_db")); sqlState(err) != "28P01" {
		t.Fatalf("given password after a managed rotation: %v, want 28P01", err)
	}
	// Deletion protection.
	if _, err := m.Modify("linked", ModifyInput{MasterUserModify: MasterUserModify{DeletionProtection: &yes}}); err != nil {
		t.Fatal(err)
	}
	var pe *ProtectedError
	if err := m.Delete(ctx, "linked"); !errors.As(err, &pe) {
		t.Fatalf("delete of a protected cluster: %v", err)
	}
	no := false
	if _, err := m.Modify("linked", ModifyInput{MasterUserModify: MasterUserModify{DeletionProtection: &no}}); err != nil {
		t.Fatal(err)
	}
}

func TestMasterUserValidation(t *testing.T) {
	for _, tc := range []struct {
		in    MasterUserInput
		field string
	}{
		{MasterUserInput{MasterUsername: "postgres"}, "MasterUsername"},
		{MasterUserInput{MasterUsername: "pg_admin"}, "MasterUsername"},
		{MasterUserInput{MasterUsername: "9lives"}, "MasterUsername"},
		{MasterUserInput{MasterUsername: `a"b`}, "MasterUsername"},
		{MasterUserInput{MasterUserPassword: "seven77"}, "MasterUserPassword"},
		{MasterUserInput{MasterUserPassword: "with/slash"}, "MasterUserPassword"},
		{MasterUserInput{MasterUserPassword: "naïve-password"}, "MasterUserPassword"},
		{MasterUserInput{MasterUserPassword: "goodpassword", ManageMasterUserPassword: true}, "MasterUserPassword"},
		{MasterUserInput{DatabaseName: "template0"}, "DatabaseName"},
		{MasterUserInput{DatabaseName: "x-y"}, "DatabaseName"},
	} {
		var fe *FieldError
		if err := tc.in.validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v, want an error on %s", tc.in, err, tc.field)
		}
	}
	if err := (MasterUserInput{MasterUsername: "admin", MasterUserPassword: "password", DatabaseName: "vector_db"}).validate(); err != nil {
		t.Errorf("the seed's settings: %v", err)
	}
	v, err := ScramVerifier("password")
	if err != nil || !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") || strings.Count(v, "$") != 2 || strings.Count(v, ":") != 2 {
		t.Errorf("verifier %q, %v", v, err)
	}
}
