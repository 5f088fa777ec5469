package router

import (
	"container/list"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// session is one client connection and, once routed, its backend connection.
type session struct {
	r       *Router
	ep      Endpoint
	client  net.Conn
	started time.Time

	// Written under r.mu (Sessions and cancels read them from other goroutines).
	backendAddr    string
	user, database string
	key            cancelKey // the key the router handed the client
	backendPID     uint32
	backendSecret  []byte

	backend  net.Conn
	txStatus atomic.Uint32
	// pendingElem is s's place among the sessions in start-up (under r.mu; limits.go).
	pendingElem *list.Element
	closeOnce   sync.Once

	// startup is the client's StartupMessage, replayed on a new backend when the session moves.
	startup *pgproto3.StartupMessage
	// mv is the state that lets the session move between backends (move.go).
	mv moveState
	// pins are the reasons found at the last move attempt (under r.mu).
	pins []string
	// moved is the backend connection a move switched the session to (nil before any move);
	// close closes it too.
	moved atomic.Pointer[net.Conn]
	// clientDone is set once the client sent Terminate or went away: a backend closing then
	// is no failure.
	clientDone atomic.Bool
	// rec is the crash snapshot (recover.go).
	rec recoverState
	// loopMu guards ls (the session's state while in the event loop, eventloop.go) and
	// client against close while the session enters or leaves the loop.
	loopMu sync.Mutex
	ls     *loopSession
	// kick wakes the relay when a mover waits for it (wakeForStop); toLoop tells the client
	// pump that a read deadline means "hand over to the event loop".
	kick   chan struct{}
	toLoop atomic.Bool
	// closed is set when the router ends the session (client gone, router closing): the
	// backend connection it then closes is not a crash to recover from.
	closed atomic.Bool
	// pl is the session's part in the warm backend pool (pool.go).
	pl poolSession
	// kp is the session's part in kernel forwarding (kernelpath.go).
	kp kernelSession
}

// backendLost tells the client that its backend connection ended without the server saying
// why (the node was killed, or fenced by a failover) and the session could not be replayed
// (recover.go: it was in a transaction, pinned, or busy). Its state went with that backend;
// the error is of class 08 (connection exception), which clients treat as retryable, and says
// that a transaction in progress, a commit included, has an unknown outcome.
func (s *session) backendLost() {
	select {
	case <-s.r.done:
		return // the router is closing
	default:
	}
	if s.clientDone.Load() {
		return
	}
	where := "the cluster endpoint connects to the current writer"
	if s.ep == ReaderEndpoint {
		where = "the reader endpoint connects to an available reader"
	}
	writeError(s.client, "08006", fmt.Sprintf("cluster %s: the connection to node %s ended unexpectedly (the node failed, or a failover fenced it); the session's state is gone and a transaction in progress, a commit included, has an unknown outcome; reconnect and retry",
		s.r.cfg.Name, s.backendAddr), "reconnecting is enough: "+where)
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		s.closed.Store(true) // before the backend closes: its reader must not take that for a crash
		s.loopMu.Lock()
		inLoop := s.closeInLoop() || s.closeInKernel()
		client := s.client
		moved := s.moved.Load() // under loopMu: see switchBackend
		kept := s.pl.kept       // under loopMu: handed back to the pool (pool.go), not closed
		s.loopMu.Unlock()
		if inLoop {
			return // the loop closes the sockets
		}
		client.Close()
		if s.backend != nil && s.backend != kept {
			s.backend.Close()
		}
		if moved != nil && *moved != kept {
			(*moved).Close()
		}
	})
}

// reject sends the client an error, closes the session and counts a rejection.
func (s *session) reject(code, msg, hint string) {
	_ = s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	writeError(s.client, code, msg, hint)
	s.r.stats[s.ep].rejected.Add(1)
	lingerAfterError(s.client)
}

// lingerAfterError is called after an error was written to c, before it is closed: closing
// with unread client bytes would reset the connection and could destroy the error before the
// client reads it, so half-close, then drain a little first.
func lingerAfterError(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		_ = tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.Copy(io.Discard, io.LimitReader(tc, 64<<10))
	}
}

func (s *session) run() {
	defer s.r.untrack(s)
	defer s.close()
	startup, ok := s.negotiate()
	s.r.endPending(s)
	if !ok {
		return
	}
	// Sessions() reads these under r.mu from other goroutines.
	s.r.mu.Lock()
	s.user, s.database = startup.Parameters["user"], startup.Parameters["database"]
	s.startup = startup
	s.r.mu.Unlock()
	// Waiting at the gate or for a node counts against MaxHeld (limits.go).
	if !s.enterHeld() {
		return
	}
	heldFrom := time.Now()
	reason := s.r.gate.wait(s.r.cfg.HoldTimeout, s.r.done)
	held := time.Since(heldFrom)
	backendOK := reason == "" && s.waitBackend()
	s.leaveHeld()
	if reason != "" {
		// A stopped cluster refuses at once: say how long the client really waited.
		hint := fmt.Sprintf("the connection was held for %s; retry later", held.Round(time.Second))
		if held < time.Second {
			hint = fmt.Sprintf("refused without waiting; retry when `borealis cluster describe %s` shows it available", s.r.cfg.Name)
		}
		s.reject("57P03", fmt.Sprintf("cluster %s is not accepting connections: %s", s.r.cfg.Name, reason), hint)
		return
	}
	if !backendOK {
		s.reject("57P03", fmt.Sprintf("cluster %s has no available %s", s.r.cfg.Name, map[Endpoint]string{ClusterEndpoint: "writer", ReaderEndpoint: "reader or writer"}[s.ep]),
			fmt.Sprintf("waited %s; check `borealis cluster describe %s`", s.r.cfg.HoldTimeout, s.r.cfg.Name))
		return
	}
	if s.runPooled(startup) {
		return
	}
	backend, err := s.r.dialBackend(s.backendAddr)
	if err != nil {
		// The node went down after the control plane last looked: route around it (another
		// reader, or the writer) and try once more; the writer gets a short grace.
		failed := s.backendAddr
		s.r.unpick(s)
		time.Sleep(200 * time.Millisecond)
		if s.r.pickAvoiding(s, failed) {
			backend, err = s.r.dialBackend(s.backendAddr)
		}
		if err != nil || backend == nil {
			what := map[Endpoint]string{ClusterEndpoint: "writer", ReaderEndpoint: "reader or writer"}[s.ep]
			s.reject("57P03", fmt.Sprintf("cluster %s: no %s node is accepting connections right now; retry", s.r.cfg.Name, what),
				fmt.Sprintf("a node went down; `borealis cluster describe %s` shows the members", s.r.cfg.Name))
			return
		}
	}
	if tc, ok := backend.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	buf, err := startup.Encode(nil)
	if err != nil {
		backend.Close()
		s.reject("08P01", "re-encoding the start-up packet: "+err.Error(), "")
		return
	}
	if _, err := backend.Write(buf); err != nil {
		backend.Close()
		s.reject("08006", fmt.Sprintf("cluster %s: node %s: %v", s.r.cfg.Name, s.backendAddr, err), "")
		return
	}
	if backend, ok = s.relayedStart(backend, buf); !ok {
		return
	}
	s.r.mu.Lock()
	s.backend = backend
	closed := s.r.closed
	s.r.mu.Unlock()
	if closed {
		backend.Close()
		return
	}
	defer s.authDeadline()()
	s.relay()
}

// negotiate reads start-up packets until the StartupMessage, answering SSL and GSSAPI
// encryption requests and serving cancel requests. ok is false when the session is over.
func (s *session) negotiate() (*pgproto3.StartupMessage, bool) {
	_ = s.client.SetDeadline(time.Now().Add(s.r.cfg.StartupTimeout))
	defer s.client.SetDeadline(time.Time{})
	tlsDone := false
	for range 4 {
		msg, err := readStartup(s.client)
		if err != nil {
			if errors.Is(err, errStartup) {
				s.reject("08P01", "invalid start-up packet: "+err.Error(), "")
			}
			return nil, false
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if s.r.cfg.TLS == nil || tlsDone {
				if _, err := s.client.Write([]byte{'N'}); err != nil {
					return nil, false
				}
				continue
			}
			if _, err := s.client.Write([]byte{'S'}); err != nil {
				return nil, false
			}
			tc := tls.Server(s.client, s.r.cfg.TLS)
			if err := tc.Handshake(); err != nil {
				return nil, false
			}
			s.r.mu.Lock()
			s.client = tc
			s.r.mu.Unlock()
			tlsDone = true
		case *pgproto3.GSSEncRequest:
			if _, err := s.client.Write([]byte{'N'}); err != nil {
				return nil, false
			}
		case *pgproto3.CancelRequest:
			s.r.forwardCancel(m)
			return nil, false
		case *pgproto3.StartupMessage:
			return m, true
		}
	}
	s.reject("08P01", "invalid start-up sequence: too many negotiation requests", "")
	return nil, false
}

// waitBackend picks a backend, waiting up to the hold timeout for one to become available.
func (s *session) waitBackend() bool {
	deadline := time.Now().Add(s.r.cfg.HoldTimeout)
	for {
		changed := s.r.backendWake.wait() // taken before pick, so no change is missed
		if s.r.pick(s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-s.r.done:
			return false
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
