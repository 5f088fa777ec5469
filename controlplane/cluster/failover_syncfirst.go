package cluster

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/failover"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// execAll runs each statement in turn on conn (ALTER SYSTEM cannot share a transaction).
func execAll(ctx context.Context, conn *pgx.Conn, stmts ...string) error {
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// syncListBeforePromote closes the synchronous mode's window after a promotion. Until stop
// 13 the promoted reader got synchronous_standby_names from supervision after the
// re-pointing, so for 0.5-1.6 s (measured) the new writer acknowledged commits that no other
// node had: a second failure then could lose them. Now the list is set on the chosen reader
// before pg_promote: a standby ignores it, and the promoted server applies it from its first
// commit, which then waits until a re-pointed reader has flushed it. The cost is that wait, in
// the synchronous mode's RTO (the bench's "a reader follows" against "first acknowledged
// write").
//
// The list names every other member, the fenced old writer included (it comes back as a
// reader), as ANY 1, the same list supervision keeps on a writer (wantSyncNames). It returns
// the value set (for applyDurability), nil when nothing was set: asynchronous mode, the
// synchronous guard degraded to no standby, no other member, or the setting failed (an event
// says so; supervision sets it after the promotion as before).
func (c *Cluster) syncListBeforePromote(ctx context.Context, nw *member) *string {
	if mode, _ := c.failoverSettings(); mode != failover.Synchronous || c.fo.sync.noStandbys {
		return nil
	}
	var names []string
	for _, r := range c.allRecs() {
		if r.ID != nw.id {
			names = append(names, `"`+slotName(r.ID)+`"`)
		}
	}
	if len(names) == 0 {
		return nil
	}
	want := "ANY 1 (" + strings.Join(names, ", ") + ")"
	// On the chosen reader's kept connection: two new connections here cost 0.1-0.4 s of the
	// promotion phase on the loaded machine (stop 13's bench).
	err := nw.onPrivateConn(ctx, nw.node, func(conn *pgx.Conn) error {
		return execAll(ctx, conn, "ALTER SYSTEM SET synchronous_standby_names = "+pgproc.Quote(want), "SELECT pg_reload_conf()")
	})
	if err != nil {
		c.m.event(c.rec.Name, nw.id, "cluster.durability-failed", "setting synchronous_standby_names before the promotion: "+err.Error())
		return nil
	}
	c.mu.Lock()
	c.syncNames = want
	c.mu.Unlock()
	return &want
}
