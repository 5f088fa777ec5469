package cluster

import (
	"context"
	"errors"
	"strings"

	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// A node's port is chosen when its cluster is created (pgproc.FreePort) and bound when the
// node starts, which for a cluster's later members is tens of seconds on, and again at every
// restart: another program may hold it by then. No client ever names a node's port — clients
// reach nodes through the router, which reads the port from the member's record (backendAddr)
// — and the control plane's own connections use the node's socket, named by the same record.
// So a start refused because the port is taken moves the node to a new free port instead of
// failing at every retry (a reader's did, for 4 minutes, in a CI run).

// portMoves bounds the new ports one start tries.
const portMoves = 3

// startNode starts node, a node of this member: a start refused because another process
// holds its TCP port (pgproc.ErrPortInUse) is tried again at once on a new free port, recorded
// in the member's record (event member.port-changed). A writer's readers are pointed at its
// new port.
func (mb *member) startNode(ctx context.Context, node *pgproc.Node) error {
	for moves := 0; ; moves++ {
		err := node.Start(ctx)
		if err == nil || moves == portMoves || ctx.Err() != nil || !errors.Is(err, pgproc.ErrPortInUse) {
			return err
		}
		port, perr := pgproc.FreePort()
		if perr != nil {
			return errors.Join(err, perr)
		}
		old := node.Port
		node.Port = port
		mb.update(func(r *store.Member) { r.Port = port })
		mb.event("member.port-changed", "node %s: port %d is taken by another process (%s); moving the node to port %d",
			mb.id, old, firstFatalOf(err), port)
		if mb.isWriter() {
			mb.c.repointReaders(ctx)
		}
	}
}

// firstFatalOf is what PostgreSQL said of a failed start: the FATAL that pgproc puts on the
// error's first line, else that whole line.
func firstFatalOf(err error) string {
	line := firstLines(err.Error(), 1)
	if i := strings.Index(line, "FATAL:"); i >= 0 {
		line, _, _ = strings.Cut(line[i:], "; log ")
	}
	return line
}

// repointReaders points every reader made so far at the writer's port as recorded now: a
// running one through follow (primary_conninfo is reloaded without a restart), a stopped one
// in its postgresql.auto.conf, which its next start reads.
func (c *Cluster) repointReaders(ctx context.Context) {
	w, ok := c.writerRec()
	if !ok {
		return
	}
	for _, mb := range c.members {
		r := mb.record()
		if r.Writer || !r.Created {
			continue
		}
		var err error
		if mb.node != nil && mb.node.Running() {
			err = c.follow(ctx, r)
		} else {
			var n *pgproc.Node
			if n, err = pgproc.New(mb.config(r)); err == nil {
				err = n.SetAutoConf(map[string]string{"primary_conninfo": pgproc.Quote(c.primaryConninfo(w, r.ID))})
			}
		}
		if err != nil {
			mb.event("member.follow-failed", "pointing reader %s at the writer's new port %d: %v", r.ID, w.Port, err)
		}
	}
}
