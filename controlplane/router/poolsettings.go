package router

// Role and database settings (ALTER ROLE/DATABASE ... SET) against the warm pool (pool.go).
//
// A backend takes the settings of pg_db_role_setting that apply to its role and database when
// it starts, and DISCARD ALL (RESET ALL) goes back to those, not to the catalog's current
// ones. Under PgBouncer a pooled backend keeps them until it is replaced; here a new client
// sees what a new connection to PostgreSQL would. Every login the router authenticates reads
// the settings that apply to it (the rows of pg_db_role_setting for the role or every role,
// in the database or every database) in the same round trip as the role's verifier
// (auth.go's loginSQL: no extra query), and that text is part of the pool key. A backend
// opened before an ALTER ROLE/DATABASE ... SET or RESET — made through the router or directly
// on the node — has another key than the logins after it, so it is never handed to them; it
// closes at its idle timeout, or earlier when the pool's limits or a 53300 need its slot.
// Logins the router does not authenticate are never pooled, so they need nothing.

import "context"

// settingsSQL is loginSQL's column with the settings that apply to the login (a and d are the
// role's and database's rows, NULL when missing), in a stable order.
const settingsSQL = `(SELECT COALESCE(pg_catalog.string_agg(s.setdatabase::text || '/' || s.setrole::text || '=' ||
    s.setconfig::text, ',' ORDER BY s.setdatabase, s.setrole), '')
  FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase IN (0, d.oid) AND s.setrole IN (0, a.oid))`

// loginSettings carries the settings a login read from authenticateInRouter to the pool.
type loginSettings struct {
	known    bool
	settings string
}

type loginSettingsKey struct{}

// withLoginSettings returns a context in which authenticateInRouter records the settings it
// read for the login.
func withLoginSettings(ctx context.Context) (context.Context, *loginSettings) {
	ls := &loginSettings{}
	return context.WithValue(ctx, loginSettingsKey{}, ls), ls
}

// noteLoginSettings records a successful login's settings where withLoginSettings asked.
func noteLoginSettings(ctx context.Context, settings string) {
	if ls, ok := ctx.Value(loginSettingsKey{}).(*loginSettings); ok {
		ls.known, ls.settings = true, settings
	}
}

// keyWithSettings is a pool key that also names the login's settings.
func (ls *loginSettings) keyWithSettings(key string) string {
	if !ls.known {
		return key // not read (a test's authentication): the key alone
	}
	return key + "\x00settings\x00" + ls.settings
}
