package router

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Sessions that outlive a crash of their backend.
//
// A move (move.go) reads the session's state from the old backend, so it needs that backend
// alive. When a backend dies instead — kill -9, a crash restart of its node, a postmaster that
// vanished, a failover — its state dies with it. Guessing that state from the client's traffic
// is not sound on PostgreSQL 15: search_path and most settings are not reported on the wire
// (no ParameterStatus), and any function may call set_config; a replay that silently lost a
// search_path would run the client's next query against other tables.
//
// So the router keeps what it can know exactly: a snapshot read from the backend itself (the
// same query a move uses) once the session has been idle, at a transaction boundary, for
// Config.IdleSnapshotAfter. The snapshot stays valid only while the client sends nothing: the
// session's message count is recorded with it and any later message makes it stale. If the
// backend dies while the snapshot is valid, nothing can have changed since it was read, so
// replaying it is exact: the backend reader holds the client's next messages (as a move does),
// opens a new backend — the same node once restarted, or whichever node Backends names for the
// endpoint now, which is how an idle session follows an automatic failover — on the trusted
// local path, replays the settings and prepared statements, and carries on. The FATAL a dying
// backend sends to an idle session (57P01 shutdown, 57P02 crash of another process, 57P03)
// is held back, and only forwarded if no new backend could be had within the hold timeout.
// A session that sent anything after its snapshot, is in a transaction, is pinned, or has no
// snapshot yet is closed as before: its state is not known, so the client must see the error.
//
// The snapshot query runs in the client's own backend, so it shows up as that session's last
// statement in pg_stat_activity and in statement logs; it runs once per idle period. A backend
// that dies during it fails the snapshot (nothing is stored) and the session carries on, to
// find the backend's end as it would have anyway. A replay in progress ends at once when the
// router closes (untilClosed), not after the dial and start-up timeouts.

// recoverState is the per-session part of crash replay.
type recoverState struct {
	// msgs counts client messages forwarded (under fwd); a snapshot is valid while it is unchanged.
	msgs atomic.Uint64
	// snap is the last snapshot and snapAt the message count it was taken at.
	snap   atomic.Pointer[sessionState]
	snapAt atomic.Uint64
	// seenAt is the message count the sweeper saw at its last pass (sweeper only), and tried
	// the count a snapshot was last attempted at (pinned or failed: not retried until it moves).
	seenAt, tried uint64
	seen          bool
}

// replayable reports whether s holds a snapshot no client message has made stale.
func (s *session) replayable() bool {
	return s.rec.snap.Load() != nil && s.rec.snapAt.Load() == s.rec.msgs.Load()
}

// RecoveredSessions is how many sessions the router replayed onto a new backend after theirs
// died (crash replay).
func (r *Router) RecoveredSessions() int64 { return r.recovered.Load() }

// sweep snapshots the sessions idle for a whole interval, until the router closes.
func (r *Router) sweep(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		r.mu.Lock()
		list := make([]*session, 0, len(r.sessions))
		for s := range r.sessions {
			if s.startup != nil && s.txStatus.Load() != 0 {
				list = append(list, s)
			}
		}
		r.mu.Unlock()
		for _, s := range list {
			n := s.rec.msgs.Load()
			idle := s.rec.seen && s.rec.seenAt == n
			s.rec.seen, s.rec.seenAt = true, n
			if !idle || s.replayable() || (s.rec.tried == n && s.rec.snap.Load() == nil) {
				continue
			}
			s.rec.tried = n
			s.snapshot()
		}
	}
}

// snapshot reads s's state from its backend while it is idle at a transaction boundary.
func (s *session) snapshot() {
	if !s.mv.fwd.TryLock() {
		return // forwarding a message: not idle after all
	}
	if s.closed.Load() || s.mv.ended || !s.atBoundary() {
		s.mv.fwd.Unlock()
		return
	}
	at := s.rec.msgs.Load()
	pr, ok := s.stopReader()
	if !ok {
		s.mv.ended = true
		s.mv.fwd.Unlock()
		s.close()
		return
	}
	ps := &parkedSession{s: s, br: pr.br, old: s.currentBackend()}
	if pr.partial != 0 {
		// A message (a notice, say) arrived as the reader was stopped, and its first bytes were
		// read: the stream cannot be resumed at a message boundary.
		p := &Parked{r: s.r, opts: MoveOptions{Reason: "session snapshot"}}
		p.endSession(s, true, "57P01", p.retryMessage(), "the session could not be stopped at a message boundary")
		return
	}
	st, err := inspectNoting(ps.old, ps.br, s.client, func() { s.r.snapSent.Add(1) })
	s.r.snapEnded.Add(1)
	if err == nil {
		s.r.notePins(s, st.pins) // describe and metrics show a pinned session before any move
	}
	switch {
	case err != nil && !isQueryError(err):
		// The backend is gone or broken: let the reader find that out on its own.
	case err == nil && len(st.pins) == 0:
		s.rec.snap.Store(&st)
		s.rec.snapAt.Store(at)
	default:
		s.rec.snap.Store(nil) // pinned, or the query failed in the session (statement_timeout…)
	}
	ps.continueOn(ps.old, ps.br)
}

// queryError is an error the backend answered with, the session itself intact.
type queryError struct{ error }

func isQueryError(err error) bool {
	_, ok := err.(queryError)
	return ok
}

// isShutdownFatal reports whether an ErrorResponse body is a FATAL (or PANIC) of class 57P:
// what a backend sends an idle client when it is shut down or its node restarts after a crash.
func isShutdownFatal(body []byte) bool {
	var sev, code string
	for len(body) > 1 && body[0] != 0 {
		typ := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			return false
		}
		v := string(body[1 : 1+end])
		body = body[2+end:]
		switch typ {
		case 'V':
			sev = v
		case 'S':
			if sev == "" {
				sev = v
			}
		case 'C':
			code = v
		}
	}
	return (sev == "FATAL" || sev == "PANIC") && len(code) == 5 && code[:3] == "57P"
}

// readShutdownFatal reads the body of an ErrorResponse of n bytes from br, for a session that
// could be replayed; it returns the whole message when it is a shutdown FATAL (held back), or
// writes it through to bw and returns nil.
func readShutdownFatal(hdr [5]byte, n int, br *bufio.Reader, bw *bufio.Writer) ([]byte, error) {
	msg := make([]byte, 5+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(br, msg[5:]); err != nil {
		return nil, err
	}
	if isShutdownFatal(msg[5:]) {
		return msg, nil
	}
	_, err := bw.Write(msg)
	return nil, err
}

// recoverBackend replaces s's dead backend with a new one carrying its snapshot. It returns
// the new backend's reader, or nil when the session cannot continue; tried says whether it
// could have (the client then gets a retryable error, not a bare end of stream).
func (s *session) recoverBackend() (next *bufio.Reader, tried bool) {
	if s.r.cfg.IdleSnapshotAfter <= 0 {
		return nil, false
	}
	s.mv.fwd.Lock()
	defer s.mv.fwd.Unlock()
	if s.closed.Load() || s.mv.ended || !s.atBoundary() || !s.replayable() {
		return nil, false
	}
	st := *s.rec.snap.Load()
	deadline := time.Now().Add(s.r.cfg.HoldTimeout)
	// Router.Close waits for this session: its close ends a replay in progress at once, not
	// after the dial and start-up timeouts.
	ctx, cancel := s.r.untilClosed(deadline)
	defer cancel()
	for {
		changed := s.r.backendWake.wait() // writerwake.go
		if s.closed.Load() {
			return nil, false
		}
		if s.r.gate.refusing() {
			return nil, true // a stopped cluster: nothing will come back
		}
		if addr := s.r.recoveryAddr(s); addr != "" {
			conn, br, pid, secret, err := s.r.openReplayed(ctx, addr, s.startup, st, &s.pl)
			if err == nil {
				old := s.currentBackend()
				old.Close()
				s.r.switchBackend(s, addr, conn, pid, secret)
				if s.closed.Load() {
					conn.Close() // the session ended meanwhile; close() may have missed conn
					return nil, false
				}
				s.mv.out = conn
				s.r.recovered.Add(1)
				return br, true
			}
		}
		if time.Now().After(deadline) {
			return nil, true
		}
		select {
		case <-s.r.done:
			return nil, true
		case <-changed:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// recoveryAddr is where a recovering session of s's endpoint goes now: its own node while
// Backends still names it, else the node Backends gives for the endpoint.
func (r *Router) recoveryAddr(s *session) string {
	writer := r.cfg.Backends.Writer()
	if s.ep == ClusterEndpoint {
		return writer
	}
	readers := r.cfg.Backends.Readers()
	for _, a := range readers {
		if a == s.backendAddr {
			return a
		}
	}
	if len(readers) > 0 {
		return readers[0]
	}
	return writer
}

// openReplayed opens a backend at addr with the client's StartupMessage (on the trusted path,
// or authenticated with the session's pass-through key: dialFor) and replays st there; it
// notes in pl.next what the pool needs to take the backend back later (pool.go: adopt).
func (r *Router) openReplayed(ctx context.Context, addr string, startup *pgproto3.StartupMessage, st sessionState, pl *poolSession) (net.Conn, *bufio.Reader, uint32, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, nil, err
	}
	pk, born := &pl.pass, r.pool.generation()
	conn, err := r.dialFor(addr, pk)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	r.replayDialed.Add(1)
	dl := time.Now().Add(r.cfg.DialTimeout + 10*time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = conn.SetDeadline(dl)
	// The end of ctx (the router closing) ends the start-up at once: a node that accepts
	// connections and does not answer (a stopped postmaster) would hold it until dl.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	br := bufio.NewReaderSize(conn, 32<<10)
	params := map[string]string{}
	pid, secret, err := startBackend(conn, br, startup, params, pk)
	if err == nil {
		err = replayReporting(conn, br, st, params)
	}
	if !stop() && err == nil {
		err = context.Cause(ctx) // ended meanwhile: conn's deadline is spent
	}
	if err != nil {
		conn.Close()
		return nil, nil, 0, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	pl.next = movedBackend{params: params, born: born, opened: time.Now()}
	return conn, br, pid, secret, nil
}

// untilClosed is a context that ends at deadline or when the router closes.
func (r *Router) untilClosed(deadline time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	go func() {
		select {
		case <-r.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// switchBackend records that s now runs on conn at addr (counts per node, cancel key).
func (r *Router) switchBackend(s *session, addr string, conn net.Conn, pid uint32, secret []byte) {
	r.mu.Lock()
	if s.backendAddr != addr {
		r.perNode[s.backendAddr]--
		if r.perNode[s.backendAddr] <= 0 {
			delete(r.perNode, s.backendAddr)
		}
		r.perNode[addr]++
		s.backendAddr = addr
	}
	s.backendPID, s.backendSecret = pid, secret
	r.mu.Unlock()
	s.pl.adopt(s.startup.Parameters) // the pool may take the new backend back (pool.go)
	// A session closed meanwhile (its client hung up while it was parked for a move, or
	// during a crash replay) has already closed the connections it knew of: this one is
	// closed here, or its relay would read it for ever and the router's Close wait for that
	// relay. Under loopMu with close's read of moved: one of the two closes it.
	s.loopMu.Lock()
	s.moved.Store(&conn)
	closed := s.closed.Load()
	s.loopMu.Unlock()
	if closed {
		conn.Close()
	}
}
