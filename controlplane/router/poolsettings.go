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
// on the node — has another key than the logins after it, so it is never handed to them.
//
// Nor does it linger: the pool remembers, per node, role and database, the settings the last
// login read (settingsOf). A login that reads other settings than the last one closes at once
// the idle backends of that node, role and database under any other settings, whatever their
// other start-up parameters (they can no longer be handed out), and counts a settings miss; a backend in use then, returning later with the
// old settings, is closed instead of pooled. Two logins that read the catalog on either side of
// a change and finish in the other order can close each other's backends once; the next login
// settles it. Logins the router does not authenticate are never pooled, so they need nothing.

import (
	"context"
	"strings"
)

// settingsMark separates a pool key from the login's settings (keyWithSettings).
const settingsMark = "\x00settings\x00"

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
	return key + settingsMark + ls.settings
}

// settingsOfKey names a pool key's settings: "" for a key without them (a test's
// authentication). The settings text never holds NUL, so it follows the last mark.
func settingsOfKey(key string) (string, bool) {
	i := strings.LastIndex(key, settingsMark)
	if i < 0 {
		return "", false
	}
	return key[i+len(settingsMark):], true
}

// settingsID names whose settings a backend has: node, role and database (the settings apply
// to the role and database, whatever the other start-up parameters).
func (pb *pooledBackend) settingsID() string {
	return pb.addr + "\x00" + pb.startup["user"] + "\x00" + pb.database()
}

// noteSettings records the settings a login read (in its pool key pb.key; pb is not pooled,
// only named); when the last login of the same node, role and database read other settings,
// it closes their idle backends under any other settings and counts a settings miss.
func (p *backendPool) noteSettings(pb *pooledBackend) {
	settings, ok := settingsOfKey(pb.key)
	if !ok {
		return
	}
	id := pb.settingsID()
	p.mu.Lock()
	last, seen := p.settingsOf[id]
	if seen && last == settings {
		p.mu.Unlock()
		return
	}
	if p.settingsOf == nil || len(p.settingsOf) >= 4096 {
		p.settingsOf = map[string]string{} // bounded: a forgotten one just closes nothing early
	}
	p.settingsOf[id] = settings
	var old []*pooledBackend
	if seen {
		for e := p.lru.Front(); e != nil; e = e.Next() {
			if x := e.Value.(*pooledBackend); x.settingsID() == id {
				if s, _ := settingsOfKey(x.key); s != settings {
					old = append(old, x)
				}
			}
		}
		for _, x := range old {
			p.removeLocked(x)
		}
	}
	p.mu.Unlock()
	if len(old) > 0 {
		p.settingsMisses.Add(1)
		p.discard(closedSettings, old...)
	}
}

// outdatedLocked says whether pb was opened under other settings than the last login of its
// node, role and database read; call with p.mu held.
func (p *backendPool) outdatedLocked(pb *pooledBackend) bool {
	settings, ok := settingsOfKey(pb.key)
	if !ok || len(p.settingsOf) == 0 {
		return false
	}
	last, seen := p.settingsOf[pb.settingsID()]
	return seen && last != settings
}
