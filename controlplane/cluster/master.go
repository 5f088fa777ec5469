package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
	"github.com/borealisdb/borealis/internal/safefile"
)

// The master user, as Aurora has it: a login role that is not a PostgreSQL superuser but gets
// what rds_superuser gets that matters here — CREATEDB, CREATEROLE, pg_monitor and
// pg_signal_backend — and finds the extensions Borealis ships in every database it creates,
// because the cluster's template1 carries them (see docs/architecture.md, "Identity"). The
// control plane keeps the superuser postgres for itself, reachable only through the nodes'
// private Unix socket.
//
// The control plane never stores the master password: it turns it into a SCRAM-SHA-256
// verifier at once (PostgreSQL accepts a verifier in CREATE ROLE ... PASSWORD) and keeps that.
// A generated password (ManageMasterUserPassword) is written once to a 0600 file in the
// control plane's secrets directory, which describe names.

// DefaultMasterUsername is the master user when none is given.
const DefaultMasterUsername = "admin"

// MasterUserInput are the identity settings of `cluster create`, as create-db-cluster has them.
type MasterUserInput struct {
	MasterUsername           string `json:"MasterUsername,omitempty"`
	MasterUserPassword       string `json:"MasterUserPassword,omitempty"`
	ManageMasterUserPassword bool   `json:"ManageMasterUserPassword,omitempty"`
	DatabaseName             string `json:"DatabaseName,omitempty"`
	DeletionProtection       bool   `json:"DeletionProtection,omitempty"`
}

// MasterUserModify are the identity settings of `cluster modify`.
type MasterUserModify struct {
	// MasterUserPassword sets a new password (the cluster then no longer manages it).
	MasterUserPassword *string `json:"MasterUserPassword,omitempty"`
	// RotateMasterUserPassword generates a new managed password.
	RotateMasterUserPassword *bool `json:"RotateMasterUserPassword,omitempty"`
	DeletionProtection       *bool `json:"DeletionProtection,omitempty"`
}

// MasterUserSecret names where a managed password is, like Aurora's MasterUserSecret.
type MasterUserSecret struct {
	SecretFile   string `json:"SecretFile"`
	SecretStatus string `json:"SecretStatus"`
}

var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)

// reservedRoles cannot be the master user: the control plane's own superuser and names
// PostgreSQL reserves.
var reservedRoles = map[string]bool{"postgres": true, "public": true, "none": true, "current_user": true,
	"session_user": true, "current_role": true}

func (in MasterUserInput) validate() error {
	if in.MasterUsername != "" {
		if !identRE.MatchString(in.MasterUsername) {
			return fieldErr("MasterUsername", "%q must be 1-63 letters, digits and underscores, starting with a letter", in.MasterUsername)
		}
		if l := strings.ToLower(in.MasterUsername); reservedRoles[l] || strings.HasPrefix(l, "pg_") {
			return fieldErr("MasterUsername", "%q is reserved (postgres is the control plane's own superuser): choose another name", in.MasterUsername)
		}
	}
	if in.MasterUserPassword != "" && in.ManageMasterUserPassword {
		return fieldErr("MasterUserPassword", "give a password or ManageMasterUserPassword, not both")
	}
	if in.MasterUserPassword != "" {
		if err := validatePassword(in.MasterUserPassword); err != nil {
			return err
		}
	}
	if in.DatabaseName != "" {
		if !identRE.MatchString(in.DatabaseName) {
			return fieldErr("DatabaseName", "%q must be 1-63 letters, digits and underscores, starting with a letter", in.DatabaseName)
		}
		if l := strings.ToLower(in.DatabaseName); l == "template0" || l == "template1" {
			return fieldErr("DatabaseName", "%q is a template database: choose another name", in.DatabaseName)
		}
	}
	return nil
}

// validatePassword applies Aurora's rule (8-128 printable ASCII characters other than / " @
// and space); within it SASLprep changes nothing, so the verifier made here is the one
// PostgreSQL would make.
func validatePassword(p string) error {
	if len(p) < 8 || len(p) > 128 {
		return fieldErr("MasterUserPassword", "must be 8 to 128 characters long (got %d)", len(p))
	}
	for _, r := range p {
		if r < '!' || r > '~' || r == '/' || r == '"' || r == '@' {
			return fieldErr("MasterUserPassword", "may hold printable ASCII characters other than / \" @ and space only")
		}
	}
	return nil
}

// ScramVerifier returns PostgreSQL's SCRAM-SHA-256 verifier of password (RFC 5802, 4096
// iterations, as pg_authid stores it).
func ScramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	const iterations = 4096
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}

// GeneratePassword makes a 32-character password from letters and digits.
func GeneratePassword() (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 32)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}

// secretFile is where a cluster's managed master password is kept.
func (m *Manager) secretFile(name string) (string, error) {
	dir, err := SecretsDir(m.opts.Home)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name+"-master-password"), nil
}

// writeManagedPassword generates a password, writes it (0600) and returns its verifier.
func (m *Manager) writeManagedPassword(name string) (verifier, file string, err error) {
	if file, err = m.secretFile(name); err != nil {
		return "", "", err
	}
	password, err := GeneratePassword()
	if err != nil {
		return "", "", err
	}
	if verifier, err = ScramVerifier(password); err != nil {
		return "", "", err
	}
	if err := safefile.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return verifier, file, nil
}

// applyMasterUser fills rec's identity from in: defaults, the verifier, a managed password.
func (m *Manager) applyMasterUser(rec *store.Cluster, in MasterUserInput) error {
	rec.MasterUsername = in.MasterUsername
	if rec.MasterUsername == "" {
		rec.MasterUsername = DefaultMasterUsername
	}
	rec.DatabaseName = in.DatabaseName
	rec.DeletionProtection = in.DeletionProtection
	if in.MasterUserPassword != "" {
		v, err := ScramVerifier(in.MasterUserPassword)
		rec.MasterUserVerifier = v
		return err
	}
	// Neither a password nor the flag: the password is managed, as nothing else could log in.
	v, file, err := m.writeManagedPassword(rec.Name)
	rec.MasterUserVerifier, rec.MasterUserSecretFile = v, file
	return err
}

// setupMasterUser runs on a new writer, as the superuser over the private socket: the
// extensions go into template1 (so every new database has them), then the master role and its
// database.
func setupMasterUser(ctx context.Context, node *pgproc.Node, rec store.Cluster) error {
	if err := execOnDB(ctx, node, "template1", "CREATE EXTENSION IF NOT EXISTS borealis CASCADE"); err != nil {
		return fmt.Errorf("creating the borealis extension in template1: %w", err)
	}
	if rec.MasterUsername == "" {
		return nil // a cluster recorded before master users existed
	}
	role := pgx.Identifier{rec.MasterUsername}.Sanitize()
	// As on RDS, the master user owns the postgres database (and so may create in its public
	// schema); the control plane's superuser needs no ownership.
	sql := fmt.Sprintf(`CREATE ROLE %s LOGIN CREATEDB CREATEROLE PASSWORD %s;
		GRANT pg_monitor, pg_signal_backend TO %s WITH ADMIN OPTION;
		ALTER DATABASE postgres OWNER TO %s`, role, quoteLiteral(rec.MasterUserVerifier), role, role)
	if rec.MasterUsername == "borealis" {
		// search_path's "$user" would pick the extension's schema (read-only to the role) for
		// new tables.
		sql += fmt.Sprintf(";\n\t\tALTER ROLE %s SET search_path = public", role)
	}
	// A create retried on a kept data directory (member.create) may find either step done: the
	// role's statements run as one implicit transaction, so a role that exists has them all.
	if done, err := existsOn(ctx, node, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", rec.MasterUsername); err != nil || !done {
		if err == nil {
			err = execOnDB(ctx, node, "postgres", sql)
		}
		if err != nil {
			return fmt.Errorf("creating the master user %s: %w", rec.MasterUsername, err)
		}
	}
	if rec.DatabaseName != "" && rec.DatabaseName != "postgres" {
		done, err := existsOn(ctx, node, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", rec.DatabaseName)
		if err == nil && !done {
			err = execOnDB(ctx, node, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s",
				pgx.Identifier{rec.DatabaseName}.Sanitize(), role))
		}
		if err != nil {
			return fmt.Errorf("creating database %s: %w", rec.DatabaseName, err)
		}
	}
	return nil
}

// existsOn runs a one-boolean query (with arg) in the node's postgres database.
func existsOn(ctx context.Context, node *pgproc.Node, query string, arg any) (bool, error) {
	conn, err := pgx.Connect(ctx, node.DSN("postgres"))
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var ok bool
	err = conn.QueryRow(ctx, query, arg).Scan(&ok)
	return ok, err
}

// availableWriter is a handle on the writer's server for running SQL (it starts nothing).
func (c *Cluster) availableWriter() (*pgproc.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rec.Members {
		if r.Writer && r.Status == StatusAvailable {
			mb := &member{c: c, id: r.ID}
			return pgproc.New(mb.config(r))
		}
	}
	return nil, &StateError{fmt.Sprintf("cluster %s: the writer is not available, so this cannot change now; retry when it is", c.rec.Name)}
}

func renameSecret(from, to string) error { return os.Rename(from, to) }

func removeSecret(path string) { _ = os.Remove(path) }

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// modifyMasterUser applies the identity part of a modify and clears it from in.
func (m *Manager) modifyMasterUser(c *Cluster, in *MasterUserModify) (changed bool, err error) {
	mod := *in
	*in = MasterUserModify{}
	if mod == (MasterUserModify{}) {
		return false, nil
	}
	name := c.rec.Name
	if mod.MasterUserPassword != nil && mod.RotateMasterUserPassword != nil && *mod.RotateMasterUserPassword {
		return false, fieldErr("MasterUserPassword", "give a new password or RotateMasterUserPassword, not both")
	}
	if mod.MasterUserPassword != nil {
		if err := validatePassword(*mod.MasterUserPassword); err != nil {
			return false, err
		}
	}
	if mod.DeletionProtection != nil {
		c.mu.Lock()
		c.rec.DeletionProtection = *mod.DeletionProtection
		err := c.saveLocked()
		c.mu.Unlock()
		if err != nil {
			return false, err
		}
		m.event(name, "", "cluster.modified", fmt.Sprintf("deletion protection is now %v", *mod.DeletionProtection))
	}
	rotate := mod.RotateMasterUserPassword != nil && *mod.RotateMasterUserPassword
	if mod.MasterUserPassword == nil && !rotate {
		return true, nil
	}
	c.mu.Lock()
	user := c.rec.MasterUsername
	c.mu.Unlock()
	if user == "" {
		return false, fieldErr("MasterUserPassword", "cluster %s has no master user (it was created before master users existed)", name)
	}
	var verifier, file string
	if rotate {
		verifier, file, err = m.writeManagedPassword(name + ".new")
	} else {
		verifier, err = ScramVerifier(*mod.MasterUserPassword)
	}
	if err != nil {
		return false, err
	}
	writer, err := c.availableWriter()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(c.ctx, StartTimeout)
	defer cancel()
	if err := execOnDB(ctx, writer, "postgres", fmt.Sprintf("ALTER ROLE %s PASSWORD %s",
		pgx.Identifier{user}.Sanitize(), quoteLiteral(verifier))); err != nil {
		return false, fmt.Errorf("changing the master user's password: %w", err)
	}
	c.mu.Lock()
	c.rec.MasterUserVerifier = verifier
	old := c.rec.MasterUserSecretFile
	c.rec.MasterUserSecretFile = ""
	if rotate {
		final, ferr := m.secretFile(name)
		if ferr == nil {
			ferr = renameSecret(file, final)
		}
		if ferr != nil {
			c.mu.Unlock()
			return false, fmt.Errorf("the password changed but its file could not be moved into place: %w (it is in %s)", ferr, file)
		}
		c.rec.MasterUserSecretFile = final
	}
	err = c.saveLocked()
	c.mu.Unlock()
	if old != "" && !rotate {
		removeSecret(old) // no longer the password
	}
	how := "set by request"
	if rotate {
		how = "rotated (managed)"
	}
	m.event(name, "", "cluster.master-password-changed", "the master user's password was "+how)
	return true, err
}

// describeMasterUser fills the identity part of a description.
func describeMasterUser(d *Description, rec store.Cluster) {
	d.MasterUsername, d.DatabaseName, d.DeletionProtection = rec.MasterUsername, rec.DatabaseName, rec.DeletionProtection
	if rec.MasterUserSecretFile != "" {
		d.MasterUserSecret = &MasterUserSecret{SecretFile: rec.MasterUserSecretFile, SecretStatus: "active"}
	}
}
