package router

import (
	"container/list"
	"fmt"
	"net"
	"time"
)

// Limits on what clients can make the router hold, so that a flood of sockets costs the router
// a bounded number of goroutines and cannot lock real clients out:
//   - MaxClients caps each endpoint's sessions; the next client gets SQLSTATE 53300 at once.
//   - MaxStartups caps the sessions still in start-up (before their StartupMessage). When it is
//     reached the OLDEST of them is dropped to make room: idle sockets age out as new ones
//     arrive, while a real client, whose start-up takes milliseconds, gets through. Sessions
//     younger than minPendingAge are not dropped (a burst of real clients is not a flood); up
//     to 4 x MaxStartups can then be in start-up, and beyond that new clients get 53300.
//   - StartupTimeout bounds the start-up packets; AuthTimeout bounds the time from the
//     StartupMessage to the backend's first ReadyForQuery (authentication included).
//   - MaxHeld caps the clients waiting at the gate or for a node; the next gets 53300.

// Defaults of the limits. DefaultMaxStartups is above the largest burst of real clients we
// expect at once (a pool of 200 connecting together): at 64, a busy router (2 cores, -race)
// took more than minPendingAge to read some of 200 simultaneous start-ups and dropped them
// as if they were idle sockets. Idle floods still age out beyond it, and 4 x 256 start-ups
// bound the goroutines a flood costs.
const (
	DefaultMaxClients  = 1000
	DefaultMaxStartups = 256
	DefaultMaxHeld     = 512
	minPendingAge      = 500 * time.Millisecond
)

func (cfg *Config) limitDefaults() {
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxStartups == 0 {
		cfg.MaxStartups = DefaultMaxStartups
	}
	if cfg.MaxHeld == 0 {
		cfg.MaxHeld = DefaultMaxHeld
	}
	if cfg.PoolIdleTimeout == 0 {
		cfg.PoolIdleTimeout = DefaultPoolIdleTimeout
		if d, err := PoolIdleTimeoutFromEnv(); err == nil && d > 0 {
			cfg.PoolIdleTimeout = d
		}
	}
	if cfg.PoolMaxIdlePerKey == 0 {
		cfg.PoolMaxIdlePerKey = DefaultPoolMaxIdlePerKey
	}
	if cfg.PoolMaxIdle == 0 {
		cfg.PoolMaxIdle = DefaultPoolMaxIdle
	}
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = 60 * time.Second // PostgreSQL's authentication_timeout
	}
}

// admit decides at accept time; false means c was turned away (and is being closed).
func (r *Router) admit(ep Endpoint, c net.Conn) bool {
	r.mu.Lock()
	starting := 0
	if r.pending != nil {
		starting = r.pending.Len()
	}
	r.mu.Unlock()
	if starting >= 4*r.cfg.MaxStartups {
		r.stats[ep].rejected.Add(1)
		go refuse(c, "53300", fmt.Sprintf("sorry, too many clients already: %d connections to cluster %s are starting up", starting, r.cfg.Name), "retry in a moment")
		return false
	}
	if n := r.stats[ep].active.Load(); n >= int64(r.cfg.MaxClients) {
		r.stats[ep].rejected.Add(1)
		go refuse(c, "53300", fmt.Sprintf("sorry, too many clients already: the %s endpoint of cluster %s has %d connections (limit %d)",
			ep, r.cfg.Name, n, r.cfg.MaxClients), "close idle connections, use a pool, or raise the endpoint's connection limit")
		return false
	}
	return true
}

// refuse answers a client that never got a session and closes it.
func refuse(c net.Conn, code, msg, hint string) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	writeError(c, code, msg, hint)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		var buf [512]byte
		for {
			if _, err := tc.Read(buf[:]); err != nil {
				break
			}
		}
	}
	c.Close()
}

// startPending records s as in start-up, dropping the oldest session in start-up when there
// are MaxStartups already. Call with r.mu held.
func (r *Router) startPendingLocked(s *session) {
	if r.pending == nil {
		r.pending = list.New()
	}
	for r.pending.Len() >= r.cfg.MaxStartups {
		if time.Since(r.pending.Front().Value.(*session).started) < minPendingAge {
			break
		}
		oldest := r.pending.Remove(r.pending.Front()).(*session)
		oldest.pendingElem = nil
		r.evicted.Add(1)
		oldest.close()
	}
	s.pendingElem = r.pending.PushBack(s)
}

// endPending notes that s finished (or abandoned) its start-up.
func (r *Router) endPending(s *session) {
	r.mu.Lock()
	r.endPendingLocked(s)
	r.mu.Unlock()
}

func (r *Router) endPendingLocked(s *session) {
	if s.pendingElem != nil {
		r.pending.Remove(s.pendingElem)
		s.pendingElem = nil
	}
}

// enterHeld counts s as held; false (and a 53300 to the client) when MaxHeld are held already.
func (s *session) enterHeld() bool {
	if n := s.r.held.Add(1); n > int64(s.r.cfg.MaxHeld) {
		s.r.held.Add(-1)
		s.reject("53300", fmt.Sprintf("sorry, too many clients already: %d clients of cluster %s are waiting for it (limit %d)",
			n-1, s.r.cfg.Name, s.r.cfg.MaxHeld), "retry later")
		return false
	}
	return true
}

func (s *session) leaveHeld() { s.r.held.Add(-1) }

// authDeadline closes s if the backend has not said ReadyForQuery within AuthTimeout; the
// returned func cancels it.
func (s *session) authDeadline() func() bool {
	t := time.AfterFunc(s.r.cfg.AuthTimeout, func() {
		if s.txStatus.Load() == 0 {
			s.r.evicted.Add(1)
			s.close()
		}
	})
	return t.Stop
}

// LimitStats are the router's limit counters.
type LimitStats struct {
	// Starting is the number of sessions still in start-up; Held the number waiting.
	Starting, Held int64
	// Evicted counts sessions dropped in start-up or authentication.
	Evicted int64
}

// Limits returns the limit counters.
func (r *Router) Limits() LimitStats {
	r.mu.Lock()
	starting := 0
	if r.pending != nil {
		starting = r.pending.Len()
	}
	r.mu.Unlock()
	return LimitStats{Starting: int64(starting), Held: r.held.Load(), Evicted: r.evicted.Load()}
}
