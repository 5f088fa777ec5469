package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/store"
	"github.com/borealisdb/borealis/internal/pgproc"
)

// The writer's restart in place while a reader could take over instead, bound to the end of the
// grace period (failover.Detector's clock, from the exit itself).
//
// Everything on this path that can wait on the disk is taken off it: the "died" and "start
// failed" events are recorded by a goroutine of their own, and the member's status changes in
// memory only (the failover's fenced record, or the successful start's, persists it). A start
// still unfinished at the deadline is sent SIGKILL and not waited for: from the moment
// pgproc.Node.Kill returns, none of its processes runs another instruction of its own (a
// process killed in uninterruptible I/O, common in crash recovery on a loaded disk, may take
// seconds to go away), so the failover can start at once; it waits for them before it is
// announced (abandonedStart).

// restartWithin restarts the writer in place, giving up at deadline.
func (mb *member) restartWithin(rec store.Member, deadline time.Time) error {
	// A start given up earlier must be gone before the next one uses the data directory.
	if w := mb.abandonedStart(); w != nil {
		if err := w(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithDeadline(mb.c.ctx, deadline)
	defer cancel()
	want := mb.settingsFor(rec.Writer, rec.Capacity)
	if err := writeCapacityConf(rec.DataDir, want); err != nil {
		return err
	}
	var node *pgproc.Node
	var err error
	for {
		if node, err = pgproc.New(mb.config(rec)); err != nil {
			return err
		}
		err = mb.startNode(ctx, node)
		// The killed postmaster's children (orphaned, so not found by parent) leave once they
		// notice its death; until then a start is refused at once. Try again as soon as they
		// are gone rather than after the usual back-off of a failed start.
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "pre-existing shared memory block") {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		wait := node.Kill()
		prev := mb.abandoned
		mb.abandoned = func() error {
			if prev != nil {
				_ = prev()
			}
			return wait()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not accepting connections at the end of the grace period (%w); the half-started server was sent SIGKILL", err)
		}
		return err
	}
	mb.node = node
	mb.applied = want
	mb.enforce(rec.Capacity)
	mb.eventAsync("member.restarted", "restarted node %s on port %d (pid %d)", mb.id, node.Port, node.PID())
	return nil
}

// restartedInPlace records a restart in place that made it within the deadline: available at
// once for the router (the prober probes the new node from now on and the held clients are
// woken), persisted through the record journal without waiting (a bbolt write took 0.5-2 s
// under the machine's I/O, inside the clients' downtime).
func (mb *member) restartedInPlace() {
	mb.setStatusInMemory(StatusAvailable)
	mb.c.publishProbeTarget()
	mb.c.fo.events.Add(1)
	done := mb.c.saveDurableAsync(func() {})
	go func() {
		defer mb.c.fo.events.Done()
		<-done
	}()
	if mb.c.router != nil {
		mb.c.router.BackendsChanged()
	}
}

// abandonedStart waits for the processes of a start given up at the grace deadline (nil: none).
// Run goroutine only.
func (mb *member) abandonedStart() func() error {
	w := mb.abandoned
	mb.abandoned = nil
	return w
}

// setStatusInMemory changes the member's status without writing the store (the next write of
// the cluster's record carries it).
func (mb *member) setStatusInMemory(status string) {
	mb.c.mu.Lock()
	defer mb.c.mu.Unlock()
	mb.c.memberRec(mb.id).Status = status
}

// eventAsync records an event from a goroutine of its own, off a path where RTO is counted.
func (mb *member) eventAsync(typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	mb.c.fo.events.Add(1) // waited for when the run goroutine ends
	go func() {
		defer mb.c.fo.events.Done()
		mb.c.m.event(mb.c.rec.Name, mb.id, typ, msg)
	}()
}
