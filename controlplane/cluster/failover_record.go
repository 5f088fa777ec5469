package cluster

import (
	"slices"

	"github.com/borealisdb/borealis/controlplane/store"
)

// The failover's records (the old writer fenced, the reader promoted) go through the store's
// record journal (store.PutClusterDurable): durable in milliseconds even while other processes
// fill the disk's queue, written outside c.mu so that the router's Writer() never waits on the
// disk meanwhile.
//
// What durability the fencing needs, and when:
//   - In this process the fence is in memory before any reader is promoted (the old writer is
//     sent SIGKILL first; this process never starts it as a writer again).
//   - A control plane started after a crash reads the store. Had the fenced record not reached
//     it, that control plane would take the old writer for the writer again, and a promoted
//     reader would be rewound to it (a reader record whose data has no standby.signal always
//     rejoins, needsRejoin). That loses nothing acknowledged as long as no client was sent to
//     the promoted reader yet: the old writer holds everything it acknowledged.
//   - So the fenced record must be durable before the new writer is announced (the router
//     sends clients to it and it can acknowledge a commit), not before pg_promote. Its write
//     therefore runs alongside the choice and the promotion, and both records (fenced, then
//     promoted) are durable before the router learns of the new writer.

// saveDurableAsync applies f to the cluster's record and starts making the result durable;
// the returned channel gives the write's outcome.
func (c *Cluster) saveDurableAsync(f func()) <-chan error {
	snap := c.snapshot(f)
	done := make(chan error, 1)
	go func() { done <- c.m.opts.Store.PutClusterDurable(snap) }()
	return done
}

// saveDurable applies f to the cluster's record and makes the result durable.
func (c *Cluster) saveDurable(f func()) error {
	return c.m.opts.Store.PutClusterDurable(c.snapshot(f))
}

// snapshot applies f to the record under c.mu and returns a copy of it with a new revision.
func (c *Cluster) snapshot(f func()) store.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
	c.rec.Rev++
	snap := c.rec
	snap.Members = slices.Clone(c.rec.Members)
	snap.LogExports = slices.Clone(c.rec.LogExports)
	if c.rec.SyncDegradedAt != nil {
		t := *c.rec.SyncDegradedAt
		snap.SyncDegradedAt = &t
	}
	return snap
}
