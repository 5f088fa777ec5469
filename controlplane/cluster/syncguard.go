package cluster

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/failover"
)

// syncGuardState is the run goroutine's side of failover.SyncGuard (the policy of synchronous
// mode when no reader flushes commits); Describe reads state and since under c.mu.
type syncGuardState struct {
	guard   failover.SyncGuard
	resumed bool
	conn    *pgx.Conn // to the writer, for the observation
	// noStandbys is set while degraded: the writer then lists no synchronous standby.
	noStandbys bool
	state      string // under c.mu, for Describe
	since      time.Time
	// streaming is, per reader, whether it answered this tick with a WAL receiver streaming
	// from the writer (observe fills it; a stopped reader does not answer).
	streaming map[string]bool
}

// guardSync observes the writer once in synchronous mode and applies the guard's decision:
// synchronous_standby_names listing the readers, or none while degraded. It records each
// change of state as an event and persists the degraded state.
func (c *Cluster) guardSync(ctx context.Context) {
	sg := &c.fo.sync
	c.mu.Lock()
	mode, fallback, g := durability(c.rec), time.Duration(c.rec.SynchronousFallbackSeconds)*time.Second, grace(c.rec)
	degradedAt := c.rec.SyncDegradedAt
	c.mu.Unlock()
	if mode != failover.Synchronous {
		if sg.guard.State() != failover.SyncOK || degradedAt != nil {
			sg.guard = failover.SyncGuard{}
			c.setSyncState(failover.SyncOK, time.Time{}, false)
		}
		sg.noStandbys = false
		c.closeSyncConn()
		return
	}
	if !sg.resumed {
		sg.resumed = true
		if degradedAt != nil {
			sg.guard.Resume(*degradedAt)
			sg.noStandbys = true
			c.mu.Lock()
			sg.state, sg.since = failover.SyncDegraded, *degradedAt
			c.mu.Unlock()
		}
	}
	sg.guard.Fallback = fallback
	sg.guard.Limit = fallback
	if fallback == 0 {
		sg.guard.Limit = g
	}
	w := c.writerMember()
	if w == nil || w.node == nil || !w.node.Running() || w.status() != StatusAvailable || c.isSuspect() {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, probeTimeout(g))
	defer cancel()
	if sg.conn == nil {
		conn, err := pgx.Connect(qctx, w.node.DSN("postgres"))
		if err != nil {
			return
		}
		sg.conn = conn
	}
	var wait float64
	var wlsn string
	var flush *string
	err := sg.conn.QueryRow(qctx, `SELECT coalesce((SELECT extract(epoch FROM now() - min(query_start)) FROM pg_stat_activity WHERE wait_event = 'SyncRep'), 0)::float8,
		pg_current_wal_lsn()::text, (SELECT max(flush_lsn)::text FROM pg_stat_replication WHERE state = 'streaming')`).Scan(&wait, &wlsn, &flush)
	if err != nil {
		c.closeSyncConn()
		return
	}
	o := failover.SyncObservation{At: time.Now(), OldestWait: time.Duration(wait * float64(time.Second))}
	o.WriterLSN, _ = failover.ParseLSN(wlsn)
	o.ReaderFlush, _ = parseLSNPtr(flush)
	c.mu.Lock()
	for _, ok := range sg.streaming {
		if ok {
			o.Streaming++
		}
	}
	c.mu.Unlock()
	d := sg.guard.Observe(o)
	sg.noStandbys = !d.Standbys
	if d.Event != "" {
		degraded := d.State == failover.SyncDegraded || d.State == failover.SyncCatchingUp
		c.setSyncState(d.State, o.At, degraded)
		c.m.event(c.rec.Name, w.id, "cluster.durability-"+d.State, "synchronous mode: "+d.Event)
	}
}

// setSyncState records the guard's state for describe, and persists whether the cluster is
// degraded.
func (c *Cluster) setSyncState(state string, since time.Time, degraded bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fo.sync.state, c.fo.sync.since = state, since
	switch {
	case degraded && c.rec.SyncDegradedAt == nil:
		at := since.UTC()
		c.rec.SyncDegradedAt = &at
		_ = c.saveLocked()
	case !degraded && c.rec.SyncDegradedAt != nil:
		c.rec.SyncDegradedAt = nil
		_ = c.saveLocked()
	}
}

func (c *Cluster) closeSyncConn() {
	if c.fo.sync.conn != nil {
		c.fo.sync.conn.Close(context.Background())
		c.fo.sync.conn = nil
	}
}

// resetSyncGuard starts the guard afresh on a new writer (its readers held every acknowledged
// commit, or the promotion would not have been allowed).
func (c *Cluster) resetSyncGuard() {
	c.closeSyncConn()
	c.fo.sync.guard = failover.SyncGuard{}
	c.fo.sync.noStandbys = false
	c.setSyncState(failover.SyncOK, time.Time{}, false)
}

// describeSync fills the durability status of a synchronous cluster; call with c.mu held.
func (c *Cluster) describeSync(d *Description) {
	if d.DurabilityMode != failover.Synchronous {
		return
	}
	d.DurabilityStatus = failover.SyncOK
	if c.fo.sync.state != "" {
		d.DurabilityStatus = c.fo.sync.state
	}
	if !c.fo.sync.since.IsZero() {
		t := c.fo.sync.since.UTC()
		d.DurabilityStatusSince = &t
	}
}
