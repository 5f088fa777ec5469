package router

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Moving a session to another backend.
//
// A session can move only at a transaction boundary: the backend said ReadyForQuery 'I', and
// every request the client sent has been answered (each Query, Sync and FunctionCall gets one
// ReadyForQuery; a Parse/Bind/Execute not yet followed by Sync is a request in flight). The
// mover takes the session's forward lock, so nothing more of the client's reaches the backend
// (its next messages wait in the socket: the session's new queries are held), and stops the
// backend reader with a read deadline, so the backend connection is the mover's alone.
//
// The session state that matters is read from the old backend itself, not guessed from the
// client's traffic: settings whose source is "session" (SET, set_config, SET ROLE…, after any
// RESET or DISCARD), named prepared statements (pg_prepared_statements: protocol-level Parse
// and SQL PREPARE alike, with their parameter types) and the pins that make a move impossible.
// A new backend is opened with the client's own StartupMessage on the router's trusted local
// path (docs/architecture.md says why that is safe), the settings are replayed with set_config
// and the statements prepared again, all before the client's next message is forwarded.

// Pin reasons: state that lives only in its backend, so the session cannot move.
const (
	PinTempTables    = "temp_tables"
	PinAdvisoryLocks = "advisory_locks"
	PinListen        = "listen"
	PinHeldCursors   = "held_cursors"
)

// moveState is the per-session part of moving. fwd is held by the client pump while it
// forwards one message and by a mover for the whole move.
type moveState struct {
	fwd      sync.Mutex
	out      io.Writer    // the current backend, written by the client pump; under fwd
	ended    bool         // under fwd: a mover closed the session
	inflight atomic.Int64 // requests forwarded that await a ReadyForQuery
	partial  atomic.Bool  // extended-protocol messages forwarded since the last Sync
	// yield, set by a mover, makes the client pump stop at the next transaction boundary
	// (before forwarding the message that would start the next request) until it is closed:
	// a busy client is caught between two transactions instead of by luck.
	yield atomic.Pointer[chan struct{}]

	park    sync.Mutex
	parking bool
	// stopping mirrors parking for the backend reader, which checks it after every read
	// (relay.go).
	stopping atomic.Bool
	parked   chan parkedReader
	resume   chan *bufio.Reader
}

type parkedReader struct {
	partial int // header bytes read when the deadline hit: not at a frame boundary
	br      *bufio.Reader
}

func (m *moveState) init(backend net.Conn) { m.out = backend }

func (m *moveState) readyForQuery() {
	if m.inflight.Add(-1) < 0 {
		m.inflight.Store(0)
	}
}

// parkReader is called by the backend reader when a read failed. Outside a move it returns
// nil, false (the backend is gone); during one it hands its reader to the mover and waits for
// the reader of the backend to continue with (nil to end), and parked is true.
func (m *moveState) parkReader(partial int, br *bufio.Reader, done <-chan struct{}) (next *bufio.Reader, parked bool) {
	m.park.Lock()
	if !m.parking {
		m.park.Unlock()
		return nil, false
	}
	ch, resume := m.parked, m.resume
	m.park.Unlock()
	ch <- parkedReader{partial: partial, br: br}
	select {
	case next := <-resume:
		return next, true
	case <-done: // the router is closing: a forgotten Park must not keep the session
		return nil, true
	}
}

// currentBackend is the backend connection the session uses now; call with fwd held.
func (s *session) currentBackend() net.Conn {
	if c := s.moved.Load(); c != nil {
		return *c
	}
	return s.backend
}

// atBoundary reports whether the session is idle with nothing in flight; call with fwd held.
func (s *session) atBoundary() bool {
	return s.txStatus.Load() == 'I' && s.mv.inflight.Load() == 0 && !s.mv.partial.Load()
}

// MoveOptions say why and how long.
type MoveOptions struct {
	// Reason completes client messages: "terminating connection for a <Reason>; retry".
	Reason string
	// BoundaryTimeout bounds the wait for each session to reach a transaction boundary; a
	// session still in a transaction then is closed with a retryable error. 0 means 10 s.
	BoundaryTimeout time.Duration
	// ClosePinned closes pinned sessions (their backend is going away) instead of leaving
	// them on it.
	ClosePinned bool
}

// PinnedSession is a session that cannot move, and why.
type PinnedSession struct {
	User     string   `json:"user"`
	Database string   `json:"database"`
	Backend  string   `json:"backend"`
	Reasons  []string `json:"reasons"`
}

// Parked is a set of sessions of one backend held at a transaction boundary, ready to move.
type Parked struct {
	r        *Router
	opts     MoveOptions
	sessions []*parkedSession
	// Pinned are the sessions found pinned (closed when ClosePinned, else left running).
	Pinned []PinnedSession
	// Closed counts sessions closed with a retryable error: in a transaction past the
	// boundary timeout, or pinned with ClosePinned.
	Closed int
}

type parkedSession struct {
	s       *session
	br      *bufio.Reader
	old     net.Conn
	state   sessionState
	moved   bool
	moveErr error
}

// sessionState is what a new backend must be given to continue the session.
type sessionState struct {
	settings [][2]string // name, value (pg_settings.setting, source "session")
	stmts    []preparedStmt
	pins     []string
}

type preparedStmt struct {
	name, sql string
	fromSQL   bool
	oids      []uint32
}

// MoveReport says what happened to each session of a move.
type MoveReport struct {
	Moved  int             `json:"moved"`
	Closed int             `json:"closed"`
	Failed int             `json:"failed"`
	Pinned []PinnedSession `json:"pinned,omitempty"`
	Errors []string        `json:"errors,omitempty"`
}

// Park holds every session on backend addr at its next transaction boundary and reads its
// state from the backend. New connections are not affected (use Hold). Call Resume (or
// Cancel) on the result promptly: parked clients wait.
func (r *Router) Park(ctx context.Context, addr string, opts MoveOptions) *Parked {
	if opts.BoundaryTimeout == 0 {
		opts.BoundaryTimeout = 10 * time.Second
	}
	if opts.Reason == "" {
		opts.Reason = "node restart"
	}
	r.pool.drain(addr) // the node's pooled idle backends are not sessions to move (pool.go)
	r.mu.Lock()
	var list []*session
	for s := range r.sessions {
		if s.backendAddr == addr && s.startup != nil && s.txStatus.Load() != 0 {
			list = append(list, s)
		}
	}
	r.mu.Unlock()
	p := &Parked{r: r, opts: opts}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(opts.BoundaryTimeout)
	for _, s := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, pinned, closed := p.parkOne(ctx, s, deadline)
			mu.Lock()
			defer mu.Unlock()
			if ps != nil {
				p.sessions = append(p.sessions, ps)
			}
			if pinned != nil {
				p.Pinned = append(p.Pinned, *pinned)
			}
			if closed {
				p.Closed++
			}
		}()
	}
	wg.Wait()
	return p
}

func (p *Parked) retryMessage() string {
	return fmt.Sprintf("terminating connection for a %s; retry", p.opts.Reason)
}

// parkOne parks s. It returns the parked session, or a pin report, and whether s was closed.
func (p *Parked) parkOne(ctx context.Context, s *session, deadline time.Time) (*parkedSession, *PinnedSession, bool) {
	yield := make(chan struct{})
	s.mv.yield.Store(&yield)
	defer func() {
		s.mv.yield.Store(nil)
		close(yield) // the pump then waits on fwd, which the mover holds until the move ends
	}()
	for {
		// TryLock: a client stalled in the middle of a message holds the lock, and must not
		// stall the move past its deadline.
		locked := s.mv.fwd.TryLock()
		if locked && s.mv.ended {
			s.mv.fwd.Unlock()
			return nil, nil, false
		}
		if locked && s.atBoundary() {
			break
		}
		if locked {
			s.mv.fwd.Unlock()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if !s.mv.fwd.TryLock() {
				s.close() // mid-message: nothing sensible can be said to the client
				return nil, nil, true
			}
			// Still in a transaction: only its client can end it, and it cannot move.
			p.endSession(s, false, "57P01", p.retryMessage(),
				"the session was inside a transaction when its node had to change; the transaction was rolled back")
			return nil, nil, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	// fwd is held from here on.
	pr, ok := s.stopReader()
	if !ok {
		s.mv.ended = true
		s.mv.fwd.Unlock()
		s.close()
		return nil, nil, true
	}
	if pr.partial != 0 {
		p.endSession(s, true, "57P01", p.retryMessage(), "the session could not be stopped at a message boundary")
		return nil, nil, true
	}
	ps := &parkedSession{s: s, br: pr.br, old: s.currentBackend()}
	st, err := inspect(ps.old, ps.br, s.client)
	if err != nil {
		p.endSession(s, true, "57P01", p.retryMessage(), "reading the session's state failed: "+err.Error())
		return nil, nil, true
	}
	ps.state = st
	if len(st.pins) > 0 {
		pin := &PinnedSession{User: s.user, Database: s.database, Backend: s.backendAddr, Reasons: st.pins}
		s.r.notePins(s, st.pins)
		if p.opts.ClosePinned {
			p.endSession(s, true, "57P01", fmt.Sprintf("terminating connection for a %s: the session cannot move (%s); reconnect",
				p.opts.Reason, strings.Join(st.pins, ", ")), "temporary tables, session advisory locks, LISTEN and WITH HOLD cursors live only in their backend")
			return nil, pin, true
		}
		ps.continueOn(ps.old, ps.br)
		return nil, pin, false
	}
	s.r.notePins(s, nil)
	return ps, nil, false
}

// stopReader makes the backend reader give up its connection; call with fwd held.
func (s *session) stopReader() (parkedReader, bool) {
	s.mv.park.Lock()
	s.mv.parking = true
	s.mv.stopping.Store(true)
	s.mv.parked = make(chan parkedReader, 1)
	s.mv.resume = make(chan *bufio.Reader, 1)
	parked := s.mv.parked
	s.mv.park.Unlock()
	conn := s.wakeForStop()
	select {
	case pr := <-parked:
		_ = conn.SetReadDeadline(time.Time{})
		return pr, true
	case <-time.After(10 * time.Second):
		return parkedReader{}, false
	}
}

// continueOn lets the session continue on conn (read through br) and releases it.
func (ps *parkedSession) continueOn(conn net.Conn, br *bufio.Reader) {
	s := ps.s
	s.mv.park.Lock()
	s.mv.parking = false
	s.mv.stopping.Store(false)
	resume := s.mv.resume
	s.mv.park.Unlock()
	s.mv.out = conn
	resume <- br
	s.mv.fwd.Unlock()
}

// endSession sends the client a FATAL error and closes the session; call with fwd held (it
// is released). parked says whether the backend reader is already parked.
func (p *Parked) endSession(s *session, parked bool, code, msg, hint string) {
	s.mv.ended = true
	if !parked {
		// The reader may be writing to the client: stop it first, then say why.
		_, parked = s.stopReader()
	}
	if parked {
		_ = s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		writeError(s.client, code, msg, hint)
		s.mv.park.Lock()
		s.mv.parking = false
		s.mv.stopping.Store(false)
		resume := s.mv.resume
		s.mv.park.Unlock()
		resume <- nil
	}
	s.mv.fwd.Unlock()
	s.close()
}

// Cancel lets every parked session continue on its old backend.
func (p *Parked) Cancel() {
	for _, ps := range p.sessions {
		ps.continueOn(ps.old, ps.br)
	}
	p.sessions = nil
}

// Len is the number of sessions parked.
func (p *Parked) Len() int { return len(p.sessions) }

// Resume moves every parked session to the backend at addr, replaying its state, and lets it
// continue there. A session that cannot be moved is closed with a retryable error.
func (p *Parked) Resume(ctx context.Context, addr string) MoveReport {
	rep := MoveReport{Closed: p.Closed, Pinned: p.Pinned}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, ps := range p.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := p.moveOne(ctx, ps, addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Failed++
				rep.Errors = append(rep.Errors, err.Error())
				p.endSession(ps.s, true, "57P01", p.retryMessage(), "moving the session to the new backend failed: "+err.Error())
				return
			}
			rep.Moved++
			p.r.moved.Add(1)
		}()
	}
	wg.Wait()
	p.sessions = nil
	return rep
}

// moveOne opens a backend at addr for ps, replays its state and switches the session to it.
func (p *Parked) moveOne(ctx context.Context, ps *parkedSession, addr string) error {
	s := ps.s
	conn, br, pid, secret, err := p.r.openReplayed(ctx, addr, s.startup, ps.state, &s.pl)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", addr, err)
	}
	// The old backend is done with: say goodbye if it is still there.
	_ = ps.old.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = ps.old.Write([]byte{'X', 0, 0, 0, 4})
	ps.old.Close()
	p.r.switchBackend(s, addr, conn, pid, secret)
	ps.continueOn(conn, br)
	return nil
}

// startBackend sends the client's StartupMessage and reads up to ReadyForQuery, noting the
// ParameterStatus values in params (when not nil); the server's refusal is a *serverError.
// The trusted path must not ask for a password: anything but AuthenticationOk is an error,
// unless the session holds a pass-through key (passthrough.go), which then answers SCRAM.
// It reads message by message from br, so nothing after the ReadyForQuery is taken from it.
func startBackend(conn net.Conn, br *bufio.Reader, startup *pgproto3.StartupMessage, params map[string]string, pk *passKey) (uint32, []byte, error) {
	buf, err := startup.Encode(nil)
	if err != nil {
		return 0, nil, err
	}
	if _, err := conn.Write(buf); err != nil {
		return 0, nil, err
	}
	var pid uint32
	var secret []byte
	for {
		msg, err := readMessage(br)
		if err != nil {
			return 0, nil, err
		}
		body := msg[5:]
		switch msg[0] {
		case 'R':
			switch {
			case len(body) < 4:
				return 0, nil, errors.New("malformed authentication request from the backend")
			case binary.BigEndian.Uint32(body) == 0:
			case !pk.held():
				return 0, nil, errors.New("the router's local path asked for authentication: it must be trusted")
			default:
				if err := pk.authenticate(conn, br, body); err != nil {
					return 0, nil, err
				}
			}
		case 'K':
			var m pgproto3.BackendKeyData
			if err := m.Decode(body); err != nil {
				return 0, nil, err
			}
			pid, secret = m.ProcessID, append([]byte(nil), m.SecretKey...)
		case 'E':
			se := &serverError{}
			if err := se.Decode(body); err != nil {
				return 0, nil, err
			}
			return 0, nil, se
		case 'S':
			noteParam(params, body)
		case 'Z':
			return pid, secret, nil
		case 'N':
		default:
			return 0, nil, fmt.Errorf("unexpected message %q from the backend during start-up", msg[0])
		}
	}
}

// inspectSQL reads, in the session itself, what a move must carry and what forbids one.
const inspectSQL = `SELECT 'pin', r, NULL, NULL FROM (VALUES
  ('temp_tables', EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema())),
  ('advisory_locks', EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid())),
  ('listen', EXISTS (SELECT 1 FROM pg_catalog.pg_listening_channels())),
  ('held_cursors', EXISTS (SELECT 1 FROM pg_catalog.pg_cursors WHERE is_holdable))) AS p(r, pinned) WHERE pinned
UNION ALL SELECT 'set', name, setting, NULL FROM pg_catalog.pg_settings WHERE source = 'session'
UNION ALL SELECT CASE WHEN from_sql THEN 'sqlprep' ELSE 'prep' END, name, statement,
  parameter_types::pg_catalog.oid[]::text FROM pg_catalog.pg_prepared_statements`

// inspect runs inspectSQL on the parked backend conn. Asynchronous messages the backend sends
// meanwhile (a NOTIFY to a LISTENing session, a ParameterStatus after a reload, a notice) are
// the client's: they are passed on to client, not swallowed.
func inspect(conn net.Conn, br *bufio.Reader, client io.Writer) (sessionState, error) {
	return inspectNoting(conn, br, client, nil)
}

// inspectNoting is inspect, calling sent (when not nil) once the query is on its way.
func inspectNoting(conn net.Conn, br *bufio.Reader, client io.Writer, sent func()) (sessionState, error) {
	var st sessionState
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	q, err := (&pgproto3.Query{String: inspectSQL}).Encode(nil)
	if err != nil {
		return st, err
	}
	if _, err := conn.Write(q); err != nil {
		return st, err
	}
	if sent != nil {
		sent()
	}
	var qerr error
	for {
		// Message by message straight from br: what follows the ReadyForQuery (an asynchronous
		// message) stays in br for the relay.
		msg, err := readMessage(br)
		if err != nil {
			return st, err
		}
		body := msg[5:]
		switch msg[0] {
		case 'D':
			var m pgproto3.DataRow
			if m.Decode(body) != nil || len(m.Values) != 4 {
				continue
			}
			kind, a, b := string(m.Values[0]), string(m.Values[1]), string(m.Values[2])
			switch kind {
			case "pin":
				st.pins = append(st.pins, a)
			case "set":
				st.settings = append(st.settings, [2]string{a, b})
			case "prep", "sqlprep":
				oids, err := parseOIDs(string(m.Values[3]))
				if err != nil {
					qerr = queryError{err}
				}
				st.stmts = append(st.stmts, preparedStmt{name: a, sql: b, fromSQL: kind == "sqlprep", oids: oids})
			}
		case 'A', 'S', 'N':
			// NotificationResponse, ParameterStatus, NoticeResponse: the client's.
			if client != nil {
				if _, err := client.Write(msg); err != nil {
					return st, fmt.Errorf("passing an asynchronous message to the client: %w", err)
				}
			}
		case 'E':
			var m pgproto3.ErrorResponse
			if err := m.Decode(body); err != nil {
				return st, err
			}
			qerr = queryError{fmt.Errorf("%s (SQLSTATE %s)", m.Message, m.Code)}
		case 'Z':
			if len(body) != 1 {
				return st, errBadFrame
			}
			if qerr == nil && body[0] != 'I' {
				qerr = queryError{fmt.Errorf("the session was left in transaction state %q", body[0])}
			}
			return st, qerr
		}
	}
}

// readMessage reads one whole backend message (header included) from br, up to 1 GB as
// PostgreSQL's own limit.
func readMessage(br *bufio.Reader) ([]byte, error) { return readMessageMax(br, 1<<30) }

// readMessageMax reads one whole message of at most max body bytes from r, exactly.
func readMessageMax(r io.Reader, max int) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[1:]))) - 4
	if n < 0 || n > max {
		return nil, errBadFrame
	}
	msg := make([]byte, 5+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func parseOIDs(s string) ([]uint32, error) {
	s = strings.Trim(s, "{}")
	if s == "" {
		return nil, nil
	}
	var out []uint32
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parameter type %q: %w", f, err)
		}
		out = append(out, uint32(v))
	}
	return out, nil
}

// replayReporting gives the new backend the session's settings and prepared statements, in
// one round trip, noting the ParameterStatus values the backend reports in params (when not
// nil). It reads message by message from br.
func replayReporting(conn net.Conn, br *bufio.Reader, st sessionState, params map[string]string) error {
	if len(st.settings) == 0 && len(st.stmts) == 0 {
		return nil
	}
	fe := pgproto3.NewFrontend(br, conn)
	if len(st.settings) > 0 {
		fe.Send(&pgproto3.Parse{Query: "SELECT pg_catalog.set_config($1, $2, false)"})
		for _, kv := range st.settings {
			fe.Send(&pgproto3.Bind{Parameters: [][]byte{[]byte(kv[0]), []byte(kv[1])}})
			fe.Send(&pgproto3.Execute{})
		}
	}
	for _, ps := range st.stmts {
		if ps.fromSQL {
			fe.Send(&pgproto3.Parse{Query: ps.sql})
			fe.Send(&pgproto3.Bind{})
			fe.Send(&pgproto3.Execute{})
		} else {
			fe.Send(&pgproto3.Parse{Name: ps.name, Query: ps.sql, ParameterOIDs: ps.oids})
		}
	}
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		return err
	}
	var qerr error
	for {
		msg, err := readMessage(br)
		if err != nil {
			return err
		}
		body := msg[5:]
		switch msg[0] {
		case 'E':
			var m pgproto3.ErrorResponse
			if err := m.Decode(body); err != nil {
				return err
			}
			if qerr == nil {
				qerr = fmt.Errorf("replaying the session state: %s (SQLSTATE %s)", m.Message, m.Code)
			}
		case 'S':
			noteParam(params, body)
		case 'Z':
			return qerr
		}
	}
}

// notePins records the pins last found on s, for Sessions and describe.
func (r *Router) notePins(s *session, pins []string) {
	r.mu.Lock()
	s.pins = pins
	r.mu.Unlock()
}

// MovedSessions is how many sessions this router has moved to another backend.
func (r *Router) MovedSessions() int64 { return r.moved.Load() }
