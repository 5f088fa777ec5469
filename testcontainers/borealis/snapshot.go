package borealis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

type snapshotConfig struct{ name string }

// SnapshotOption configures Snapshot and Restore.
type SnapshotOption func(*snapshotConfig)

// WithSnapshotName names the template database (default migrated_template). It must differ from
// the cluster's database.
func WithSnapshotName(name string) SnapshotOption {
	return func(c *snapshotConfig) { c.name = name }
}

// Snapshot copies the cluster's database into a template database, as the postgres module does,
// through the cluster endpoint; the readers receive it by replication. A snapshot of the same name
// is replaced. Idle sessions on the database (the router's pooled backends among them) are ended
// first; one busy in a statement or transaction makes it fail. The database must not be postgres (it cannot be dropped to be restored).
func (c *Container) Snapshot(ctx context.Context, opts ...SnapshotOption) error {
	name, err := c.snapshotConfig(opts)
	if err != nil {
		return err
	}
	snap, db, owner := pgx.Identifier{name}.Sanitize(), pgx.Identifier{c.dbName}.Sanitize(), pgx.Identifier{c.user}.Sanitize()
	err = c.withMaintenance(ctx, func(conn *pgx.Conn) error {
		// A template cannot be dropped: clear the flag first. The master user is no superuser,
		// so through ALTER DATABASE (allowed to the owner), not by updating pg_database.
		var isTemplate bool
		err := conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		stmts := []string{
			// The router's warm pool keeps idle backends on the database after its clients
			// leave, and CREATE DATABASE ... TEMPLATE refuses a source with other sessions
			// (55006): idle sessions on it are ended first (CREATE DATABASE waits up to 5 s for
			// them to exit). A session in the middle of a statement or transaction still makes
			// the snapshot fail, as under the postgres module.
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " + quoteLiteral(c.dbName) +
				" AND state = 'idle' AND pid <> pg_backend_pid()",
			"DROP DATABASE IF EXISTS " + snap,
			fmt.Sprintf("CREATE DATABASE %s WITH TEMPLATE %s OWNER %s", snap, db, owner),
			fmt.Sprintf("ALTER DATABASE %s WITH is_template = TRUE", snap),
		}
		if isTemplate {
			stmts = append([]string{fmt.Sprintf("ALTER DATABASE %s WITH is_template = FALSE", snap)}, stmts...)
		}
		return execAll(ctx, conn, stmts...)
	})
	if err != nil {
		return fmt.Errorf("borealis snapshot %s: %w", name, err)
	}
	c.snapshotName = name
	return nil
}

// Restore replaces the cluster's database by the last snapshot (or the named one). Sessions on
// the database are ended, on the writer and, by replication, on the readers.
func (c *Container) Restore(ctx context.Context, opts ...SnapshotOption) error {
	name, err := c.snapshotConfig(opts)
	if err != nil {
		return err
	}
	if err := c.execMaintenance(ctx,
		// Sessions on the template would make CREATE DATABASE fail.
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "+quoteLiteral(name)+" AND pid <> pg_backend_pid()",
		fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{c.dbName}.Sanitize()),
		fmt.Sprintf("CREATE DATABASE %s WITH TEMPLATE %s OWNER %s", pgx.Identifier{c.dbName}.Sanitize(),
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{c.user}.Sanitize()),
	); err != nil {
		return fmt.Errorf("borealis restore %s: %w", name, err)
	}
	return nil
}

func (c *Container) snapshotConfig(opts []SnapshotOption) (string, error) {
	cfg := snapshotConfig{name: c.snapshotName}
	for _, o := range opts {
		o(&cfg)
	}
	if c.dbName == "postgres" {
		return "", errors.New("borealis: cannot snapshot or restore the postgres database (it cannot be dropped): create the cluster WithDatabase(\"app\")")
	}
	if cfg.name == "" || cfg.name == c.dbName || cfg.name == "postgres" {
		return "", fmt.Errorf("borealis: snapshot name %q must be set and differ from the databases %s and postgres", cfg.name, c.dbName)
	}
	return cfg.name, nil
}

// execMaintenance runs statements one by one on the postgres database through the cluster
// endpoint, as the master user.
func (c *Container) execMaintenance(ctx context.Context, stmts ...string) error {
	return c.withMaintenance(ctx, func(conn *pgx.Conn) error { return execAll(ctx, conn, stmts...) })
}

func (c *Container) withMaintenance(ctx context.Context, f func(*pgx.Conn) error) error {
	uri, err := c.endpointURI(ctx, ClusterPort, "postgres", []string{"sslmode=disable"})
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return f(conn)
}

func execAll(ctx context.Context, conn *pgx.Conn, stmts ...string) error {
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
