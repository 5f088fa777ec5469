package router

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sys/unix"
)

// The warm backend pool: authenticated idle backends kept for the next client, as PgBouncer
// keeps its server connections in session mode.
//
// A new backend costs the server a fork, its catalog caches and its authentication; a reused
// one does not (PgBouncer's reused backends cost the server 53-67 µs per pgbench -S
// transaction against 76-84 µs for new ones, bench/results). The router can reuse a backend
// only for a client it authenticated itself (authenticateInRouter): the backend is then
// opened on the router's trusted private path (Config.PrivateAddr) with the client's own
// StartupMessage, so it runs as the client's role in the client's database. Roles the router
// cannot verify keep the relayed path: their client authenticates to a new backend, which is
// never pooled.
//
// Key. A pooled backend serves only a client whose StartupMessage matches the one it was
// opened with, node included: same user, database, protocol version, options and every other
// parameter, except the values (not the names) of the settable ones (settableStartup:
// application_name, client_encoding, DateStyle, TimeZone...). Those are applied with
// set_config at checkout when they differ; after the client's RESET they go back to the
// backend's start-up value rather than the client's, as under PgBouncer. Replication
// connections and protocol versions other than 3.0 are never pooled.
//
// Checkout. The client gets AuthenticationOk, the backend's current ParameterStatus set, the
// router's own BackendKeyData (mapped to the backend's, so cancels reach it: cancel.go) and
// ReadyForQuery. A pooled backend the server closed meanwhile (kill -9, a restart of its node,
// pg_terminate_backend) is found by a non-blocking peek at its socket (a closed socket reads
// its end, a terminated backend's FATAL is unread data) and replaced by a new one: it is
// never handed out.
//
// Return. A client that sends Terminate at a transaction boundary (ReadyForQuery 'I', nothing
// in flight) leaves its backend to the pool: the Terminate is not forwarded, the backend is
// reset with DISCARD ALL (PgBouncer's server_reset_query in session mode: it closes cursors,
// resets every setting and the session authorization, deallocates prepared statements,
// unlistens, releases session advisory locks, drops temporary tables and discards plans and
// sequence state) and must answer with ReadyForQuery 'I'. A backend left in a transaction, a
// client that just hung up, a reset that fails, a backend older than poolMaxLifetime
// (PgBouncer's server_lifetime) and one opened before a drain of its node are closed instead.
// What DISCARD ALL cannot undo (LOAD of a library, a placeholder variable's existence) stays,
// as under PgBouncer.
//
// Bounds. Config.PoolMaxIdlePerKey and Config.PoolMaxIdle cap the idle backends (the oldest
// are closed first), Config.PoolIdleTimeout closes backends idle that long (5 minutes by
// default, or BOREALIS_ROUTER_POOL_IDLE_TIMEOUT: see DefaultPoolIdleTimeout). Pooled backends
// count against the node's max_connections, so a new backend refused with 53300 evicts the
// node's idle pooled backends and is retried while their slots free up: the pool never
// starves a client.
//
// Draining. Pooled idle backends are not client connections: auto-pause, endpoint balancing
// and Sessions ignore them. So that a node can stop, Park(addr) (reboot, capacity change,
// failover) closes the node's pooled backends, and Refuse and HoldAndWake (stop, pause) close
// all of them; a backend checked out before the drain is closed when its client leaves, and
// none returns to the pool while the gate holds clients. BackendsChanged (a failover) closes
// those of nodes no longer named, and the new writer's opened while it was a standby.

// Pool defaults (Config).
//
// DefaultPoolIdleTimeout is 5 minutes, PgBouncer's server_idle_timeout being 10. It was 60 s,
// which closed the pool between bursts a minute or two apart (a cron job, a benchmark whose
// rounds were 75 s apart reopened every backend each round). What an idle pooled backend costs:
//   - memory: about 5 MB of its own (anonymous memory: catalog and plan caches; 3 MB fresh, 4.7
//     MB after 50 borealis_hnsw queries on 20k x 128 and a catalog join, measured). The index
//     graph and shared_buffers are shared, not copied per backend. PoolMaxIdle (50) bounds it to
//     about 250 MB, a quarter of a 0.5-ACU node, for as long as the timeout.
//   - a connection slot: max_connections is 90 at 0.5 and 1 ACU. A new backend refused with
//     53300 evicts the node's idle pooled backends (acquire, relayedStart), so clients never
//     starve; but the poller counts pooled backends in pg_stat_activity, so the scaler's
//     connection rule (scale down below 40% of max_connections) sees them until they close.
//     A pool at its cap thus delays a scale-down from 1 ACU by up to the timeout after the load
//     ends: 5 minutes, the scaler's own LowUseFor (10 would make it 10).
//   - auto-pause: none. Pooled idle backends are not client connections (DecidePause counts
//     the router's sessions), and a pause, a stop or a Park drains them (Refuse, HoldAndWake,
//     Park), whatever the timeout.
const (
	DefaultPoolIdleTimeout   = 5 * time.Minute
	DefaultPoolMaxIdlePerKey = 20 // PgBouncer's default_pool_size
	DefaultPoolMaxIdle       = 50
	// poolMaxLifetime is PgBouncer's server_lifetime default.
	poolMaxLifetime = time.Hour
)

// PoolIdleTimeoutEnv sets Config.PoolIdleTimeout for every router of the process whose Config
// leaves it 0: a Go duration ("90s", "10m") or whole seconds, from 1 s to an hour (a backend
// older than poolMaxLifetime is not pooled again anyway). `borealis serve` and `up` refuse to
// start with a bad value (PoolIdleTimeoutFromEnv); New ignores one.
const PoolIdleTimeoutEnv = "BOREALIS_ROUTER_POOL_IDLE_TIMEOUT"

// PoolIdleTimeoutFromEnv reads PoolIdleTimeoutEnv: 0 when it is unset or empty.
func PoolIdleTimeoutFromEnv() (time.Duration, error) {
	v := strings.TrimSpace(os.Getenv(PoolIdleTimeoutEnv))
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.Atoi(v); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil || d < time.Second || d > poolMaxLifetime {
		return 0, fmt.Errorf("%s=%q: want a duration from 1s to 1h, such as 90s or 10m, or whole seconds", PoolIdleTimeoutEnv, v)
	}
	return d, nil
}

// settableStartup are the start-up parameters (lower case) a pooled backend takes with
// set_config at checkout: user-settable, and commonly sent by drivers.
var settableStartup = map[string]bool{
	"application_name": true, "client_encoding": true, "datestyle": true, "timezone": true,
	"intervalstyle": true, "extra_float_digits": true, "search_path": true, "statement_timeout": true,
	"lock_timeout": true, "idle_in_transaction_session_timeout": true, "default_transaction_isolation": true,
	"default_transaction_read_only": true, "bytea_output": true, "standard_conforming_strings": true,
}

// protocol30 is protocol version 3.0, the only one pooled.
const protocol30 = 3 << 16

// poolKey is the part of a backend's pool key that comes from the StartupMessage (the node is
// added by the pool); ok is false when such a session must never be pooled.
func poolKey(startup *pgproto3.StartupMessage) (key string, ok bool) {
	if startup.ProtocolVersion != protocol30 {
		return "", false
	}
	if _, repl := startup.Parameters["replication"]; repl {
		return "", false
	}
	names := make([]string, 0, len(startup.Parameters))
	for k := range startup.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		if !settableStartup[strings.ToLower(k)] {
			b.WriteByte('=')
			b.WriteString(startup.Parameters[k])
		}
		b.WriteByte(0)
	}
	return b.String(), true
}

// settableDiff is what to set on a backend opened with start-up parameters from for a client
// that asked for to: the settable parameters whose values differ (the key makes the names
// the same).
func settableDiff(from, to map[string]string) [][2]string {
	var out [][2]string
	for k, v := range to {
		if settableStartup[strings.ToLower(k)] && from[k] != v {
			out = append(out, [2]string{k, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// poolSession is a session's part in the pool.
type poolSession struct {
	// key is the session's pool key without the node; "" when the session is never pooled.
	key string
	// startup is the parameters the current backend was opened with, born the pool
	// generation then and opened the time; set before the relay starts.
	startup map[string]string
	born    uint64
	opened  time.Time
	// params are the backend's ParameterStatus values, kept up to date by the relay
	// (relay.go); nil once the session moved to a backend the pool knows nothing of (such a
	// session's backend is closed when it ends).
	params map[string]string
	// checkin is set when the client sent Terminate at a transaction boundary: the backend
	// goes back to the pool.
	checkin atomic.Bool
	// kept is the backend connection handed to the pool, which close must not close (under
	// loopMu).
	kept net.Conn
	// pre is what relayedStart read from a relayed session's backend: the relay's first bytes.
	pre []byte
	// pass is the client's pass-through key when Config.PassThrough is on (passthrough.go):
	// the session's new backends authenticate with it; zeroed when the session ends.
	pass passKey
	// next is what openReplayed learnt of the backend it opened for a move or a crash replay,
	// which switchBackend makes the session's (adopt).
	next movedBackend
}

// movedBackend is a moved or replayed session's new backend, as the pool needs to know it.
type movedBackend struct {
	params map[string]string // its ParameterStatus values, from its start-up and the replay
	born   uint64
	opened time.Time
}

// adopt makes the backend a move or a crash replay just opened (pl.next) the one the pool
// judges the session by: it was opened with the client's own StartupMessage, and its
// ParameterStatus values were noted through the replay, so it can return to the pool when the
// client leaves, as the backend it replaced could. A session never pooled stays so.
func (pl *poolSession) adopt(startup map[string]string) {
	nb := pl.next
	pl.next = movedBackend{}
	if pl.key == "" || nb.params == nil {
		pl.params = nil // closed when the session ends
		return
	}
	pl.startup, pl.params, pl.born, pl.opened = startup, nb.params, nb.born, nb.opened
}

// pooledBackend is a backend in the pool, or on its way in or out.
type pooledBackend struct {
	conn      net.Conn
	br        *bufio.Reader
	addr, key string
	startup   map[string]string // the parameters it was opened with
	params    map[string]string // its ParameterStatus values, as last reported
	pid       uint32
	secret    []byte
	born      uint64
	opened    time.Time
	idleSince time.Time
	elem      *list.Element // in backendPool.lru while idle
}

// close says goodbye to the backend and closes it.
func (pb *pooledBackend) close() {
	_ = pb.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = pb.conn.Write([]byte{'X', 0, 0, 0, 4})
	pb.conn.Close()
}

// closeReason is why the pool closed one of its backends (PoolStats.Closed).
type closeReason int

const (
	closedIdleTimeout    closeReason = iota // idle for PoolIdleTimeout
	closedStale                             // the server had closed it (found at checkout or by the reaper)
	closedLimit                             // beyond PoolMaxIdlePerKey or PoolMaxIdle
	closedTooManyClients                    // a 53300 wanted its slot
	closedDrain                             // its node drained (park, pause, stop, failover) or the router closed
	closedDDL                               // DATABASE DDL or a 55006 answer needed its database (pooldrain.go)
	closedSettings                          // its role's or database's settings changed (poolsettings.go)
	closedLifetime                          // older than poolMaxLifetime when its client left
	closedReset                             // DISCARD ALL, or the checkout's set_config, failed
	numCloseReasons
)

// PoolCloseReasons name the reasons in PoolStats.Closed, describe and /metrics.
var PoolCloseReasons = [numCloseReasons]string{"idle_timeout", "stale", "limit", "too_many_clients", "drain",
	"ddl", "settings", "lifetime", "reset"}

// PoolStats are the warm backend pool's counters.
type PoolStats struct {
	// Idle is the number of authenticated idle backends waiting for a client.
	Idle int64 `json:"idle"`
	// InUse is the number of sessions on a backend that can return to the pool.
	InUse int64 `json:"in_use"`
	// Reused counts clients given a backend from the pool; Opened the backends opened for
	// the pool's clients (reused or not).
	Reused int64 `json:"reused"`
	Opened int64 `json:"opened"`
	// Stale counts pooled backends found closed by the server at checkout or while idle.
	Stale int64 `json:"stale"`
	// DDLDrains counts the times DATABASE DDL (or a 55006 answer) closed idle pooled
	// backends in its way (pooldrain.go).
	DDLDrains int64 `json:"ddl_drains"`
	// SettingsMisses counts logins that found the pool's backends for their role, database
	// and start-up parameters only under older role or database settings (ALTER ROLE/DATABASE
	// ... SET since they opened): those were closed (poolsettings.go).
	SettingsMisses int64 `json:"settings_misses"`
	// Closed counts the backends the pool closed, by reason (PoolCloseReasons).
	Closed [numCloseReasons]int64 `json:"closed"`
}

// IsZero says whether nothing has happened in the pool.
func (s PoolStats) IsZero() bool { return s == PoolStats{} }

// ClosedByReason is Closed keyed by PoolCloseReasons, without the zeros.
func (s PoolStats) ClosedByReason() map[string]int64 {
	out := map[string]int64{}
	for i, n := range s.Closed {
		if n > 0 {
			out[PoolCloseReasons[i]] = n
		}
	}
	return out
}

// backendPool holds one router's idle backends.
type backendPool struct {
	r *Router

	mu     sync.Mutex
	byKey  map[string][]*pooledBackend // node + key → idle backends, most recently used last
	lru    list.List                   // every idle backend, longest idle first
	gen    uint64                      // bumped by every drain
	since  map[string]uint64           // node → generation of its last drain
	sinceA uint64                      // generation of the last drain of every node
	// sinceDB is node + "\x00" + database → generation of its last drain (pooldrain.go).
	sinceDB map[string]uint64
	closed  bool

	idle, inUse, reused, opened atomic.Int64
	// ddlDrains counts drains for DATABASE DDL and 55006 answers (pooldrain.go).
	ddlDrains atomic.Int64
	// settingsMisses counts logins that found only backends of older settings
	// (poolsettings.go); settingsOf is node + key without settings → the settings the last
	// login read (under mu).
	settingsMisses atomic.Int64
	settingsOf     map[string]string
	closedBy       [numCloseReasons]atomic.Int64
}

func newBackendPool(r *Router) *backendPool {
	p := &backendPool{r: r, byKey: map[string][]*pooledBackend{}, since: map[string]uint64{}}
	p.lru.Init()
	return p
}

func (p *backendPool) enabled() bool { return !p.r.cfg.NoBackendPool }

// generation is the current drain generation: a backend opened now carries it.
func (p *backendPool) generation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// get takes the most recently used live idle backend for key on node addr; nil when none.
func (p *backendPool) get(addr, key string) *pooledBackend {
	full := addr + "\x00" + key
	for {
		p.mu.Lock()
		st := p.byKey[full]
		if len(st) == 0 {
			p.mu.Unlock()
			return nil
		}
		pb := st[len(st)-1]
		p.removeLocked(pb)
		p.mu.Unlock()
		if connAlive(pb.conn) {
			return pb
		}
		p.discard(closedStale, pb)
	}
}

// discard closes backends of the pool, counting why.
func (p *backendPool) discard(why closeReason, list ...*pooledBackend) {
	p.closedBy[why].Add(int64(len(list)))
	for _, pb := range list {
		if why == closedStale {
			pb.conn.Close() // nobody to say goodbye to
		} else {
			pb.close()
		}
	}
}

// removeLocked takes pb out of the idle sets; call with p.mu held.
func (p *backendPool) removeLocked(pb *pooledBackend) {
	full := pb.addr + "\x00" + pb.key
	st := p.byKey[full]
	for i, x := range st {
		if x == pb {
			st = append(st[:i], st[i+1:]...)
			break
		}
	}
	if len(st) == 0 {
		delete(p.byKey, full)
	} else {
		p.byKey[full] = st
	}
	p.lru.Remove(pb.elem)
	pb.elem = nil
	p.idle.Add(-1)
}

// refusesLocked says whether pb may (still) be pooled, and if not why; call with p.mu held.
func (p *backendPool) refusesLocked(pb *pooledBackend) (closeReason, bool) {
	switch {
	case p.closed || pb.born < p.since[pb.addr] || pb.born < p.sinceA || p.r.gate.holding():
		return closedDrain, true
	case p.drainedDBLocked(pb):
		return closedDDL, true
	case time.Since(pb.opened) >= poolMaxLifetime:
		return closedLifetime, true
	case p.outdatedLocked(pb):
		return closedSettings, true
	}
	return 0, false
}

// put makes pb idle, closing the oldest idle backends beyond the limits.
func (p *backendPool) put(pb *pooledBackend) {
	var evict []*pooledBackend
	p.mu.Lock()
	if why, no := p.refusesLocked(pb); no {
		p.mu.Unlock()
		p.discard(why, pb)
		return
	}
	full := pb.addr + "\x00" + pb.key
	if st := p.byKey[full]; len(st) >= p.r.cfg.PoolMaxIdlePerKey {
		evict = append(evict, st[0])
		p.removeLocked(st[0])
	}
	pb.idleSince = time.Now()
	p.byKey[full] = append(p.byKey[full], pb)
	pb.elem = p.lru.PushBack(pb)
	p.idle.Add(1)
	for p.lru.Len() > p.r.cfg.PoolMaxIdle {
		old := p.lru.Front().Value.(*pooledBackend)
		p.removeLocked(old)
		evict = append(evict, old)
	}
	p.mu.Unlock()
	p.discard(closedLimit, evict...)
}

// take removes the idle backends for which pick says so and returns them.
func (p *backendPool) take(pick func(*pooledBackend) bool) []*pooledBackend {
	p.mu.Lock()
	var out []*pooledBackend
	for e := p.lru.Front(); e != nil; {
		next := e.Next()
		if pb := e.Value.(*pooledBackend); pick(pb) {
			p.removeLocked(pb)
			out = append(out, pb)
		}
		e = next
	}
	p.mu.Unlock()
	return out
}

// drain closes the idle backends of node addr ("" for every node), and makes those of its
// backends in use now close when their clients leave.
func (p *backendPool) drain(addr string) { p.drainFor(addr, closedDrain) }

// drainFor is drain, counting the closes under why.
func (p *backendPool) drainFor(addr string, why closeReason) {
	p.mu.Lock()
	p.gen++
	if addr == "" {
		p.sinceA = p.gen
	} else {
		p.since[addr] = p.gen
	}
	p.mu.Unlock()
	p.evict(addr, why)
}

// evict closes the idle backends of node addr ("" for every node) and says how many.
func (p *backendPool) evict(addr string, why closeReason) int {
	list := p.take(func(pb *pooledBackend) bool { return addr == "" || pb.addr == addr })
	p.discard(why, list...)
	return len(list)
}

// prune closes the idle backends of nodes that are neither writer nor among readers (after a
// failover: the fenced node's), and the writer's backends opened while it was a standby,
// whose in_hot_standby (reported at start-up, and not again until a query) would tell the
// next client it reached a read-only node.
func (p *backendPool) prune(writer string, readers []string) {
	if writer == "" {
		return // held, not changed: nothing to judge by
	}
	known := map[string]bool{writer: true}
	for _, a := range readers {
		known[a] = true
	}
	list := p.take(func(pb *pooledBackend) bool {
		return !known[pb.addr] || pb.addr == writer && pb.params["in_hot_standby"] == "on"
	})
	p.discard(closedDrain, list...)
}

// close closes every idle backend and takes no more.
func (p *backendPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.evict("", closedDrain)
}

// reap closes backends idle past the idle timeout, and those the server closed, until the
// router closes.
func (p *backendPool) reap() {
	every := min(max(p.r.cfg.PoolIdleTimeout/4, 100*time.Millisecond), 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.r.done:
			return
		case <-t.C:
		}
		now := time.Now()
		p.discard(closedIdleTimeout, p.take(func(pb *pooledBackend) bool { return now.Sub(pb.idleSince) >= p.r.cfg.PoolIdleTimeout })...)
		p.discard(closedStale, p.take(func(pb *pooledBackend) bool { return !connAlive(pb.conn) })...)
	}
}

// connAlive peeks at an idle backend's socket without blocking: it is alive when there is
// nothing to read. A closed socket reads its end, and a backend terminated while idle has
// sent a FATAL first; either way it must not be handed out.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	if err := rc.Control(func(fd uintptr) {
		_, _, _, _, err := unix.Recvmsg(int(fd), b[:], nil, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		alive = err == unix.EAGAIN
	}); err != nil {
		return false
	}
	return alive
}

// reset runs DISCARD ALL on a backend whose client left at a transaction boundary, noting the
// ParameterStatus changes it reports.
func (pb *pooledBackend) reset() error {
	_ = pb.conn.SetDeadline(time.Now().Add(5 * time.Second))
	q, err := (&pgproto3.Query{String: "DISCARD ALL"}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := pb.conn.Write(q); err != nil {
		return err
	}
	var qerr error
	for {
		msg, err := readMessage(pb.br)
		if err != nil {
			return err
		}
		body := msg[5:]
		switch msg[0] {
		case 'S':
			noteParam(pb.params, body)
		case 'E':
			var m pgproto3.ErrorResponse
			if err := m.Decode(body); err != nil {
				return err
			}
			qerr = fmt.Errorf("DISCARD ALL: %s (SQLSTATE %s)", m.Message, m.Code)
		case 'Z':
			switch {
			case qerr != nil:
				return qerr
			case len(body) != 1 || body[0] != 'I':
				return errors.New("DISCARD ALL left the backend outside an idle state")
			case pb.br.Buffered() > 0:
				return errors.New("the backend sent more after DISCARD ALL")
			}
			return pb.conn.SetDeadline(time.Time{})
		}
	}
}

// checkin resets pb and makes it idle, or closes it.
func (p *backendPool) checkin(pb *pooledBackend) {
	p.mu.Lock()
	why, no := p.refusesLocked(pb)
	p.mu.Unlock()
	if no {
		p.discard(why, pb)
		return
	}
	if err := pb.reset(); err != nil {
		p.discard(closedReset, pb)
		return
	}
	p.put(pb)
}

// Stats returns the pool's counters.
func (p *backendPool) stats() PoolStats {
	st := PoolStats{Idle: p.idle.Load(), InUse: p.inUse.Load(), Reused: p.reused.Load(), Opened: p.opened.Load(),
		DDLDrains: p.ddlDrains.Load(), SettingsMisses: p.settingsMisses.Load()}
	for i := range st.Closed {
		st.Closed[i] = p.closedBy[i].Load()
	}
	st.Stale = st.Closed[closedStale]
	return st
}

// BackendPool returns the warm backend pool's counters.
func (r *Router) BackendPool() PoolStats { return r.pool.stats() }

// serverError is an ErrorResponse a backend answered a start-up or a query with.
type serverError struct{ pgproto3.ErrorResponse }

func (e *serverError) Error() string { return fmt.Sprintf("%s (SQLSTATE %s)", e.Message, e.Code) }

func isTooManyClients(err error) bool {
	var se *serverError
	return errors.As(err, &se) && se.Code == "53300"
}

// openPooled opens a backend for a pool client on node addr's trusted path, or authenticated
// with the client's pass-through key pk (dialFor).
func (r *Router) openPooled(addr, key string, startup *pgproto3.StartupMessage, pk *passKey) (*pooledBackend, error) {
	born := r.pool.generation()
	conn, err := r.dialFor(addr, pk)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(r.cfg.DialTimeout + 10*time.Second))
	pb := &pooledBackend{conn: conn, br: bufio.NewReaderSize(conn, 4<<10), addr: addr, key: key,
		startup: startup.Parameters, params: map[string]string{}, born: born, opened: time.Now()}
	pb.pid, pb.secret, err = startBackend(conn, pb.br, startup, pb.params, pk)
	if err == nil && pb.br.Buffered() > 0 {
		err = errors.New("the backend sent more after its first ReadyForQuery")
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	r.pool.opened.Add(1)
	return pb, nil
}

// acquire gives a pool client a backend on node addr: an idle one from the pool, its settable
// start-up parameters set to the client's, or a new one. A new backend refused with 53300
// (too many clients) evicts the node's idle pooled backends and is retried while their slots
// free up.
func (r *Router) acquire(addr, key string, startup *pgproto3.StartupMessage, pk *passKey) (*pooledBackend, error) {
	r.pool.noteSettings(&pooledBackend{addr: addr, key: key, startup: startup.Parameters})
	if pb := r.pool.get(addr, key); pb != nil {
		diff := settableDiff(pb.startup, startup.Parameters)
		err := error(nil)
		if len(diff) > 0 {
			err = replayReporting(pb.conn, pb.br, sessionState{settings: diff}, pb.params)
			if err == nil && pb.br.Buffered() > 0 {
				err = errors.New("the backend sent more after ReadyForQuery")
			}
		}
		if err == nil {
			r.pool.reused.Add(1)
			return pb, nil
		}
		// A value the server refuses: a new backend gives the client the server's own error.
		r.pool.discard(closedReset, pb)
	}
	pb, err := r.openPooled(addr, key, startup, pk)
	if isTooManyClients(err) && r.pool.evict(addr, closedTooManyClients) > 0 {
		// The slots free as the evicted backends exit.
		for i := 0; i < 40 && isTooManyClients(err); i++ {
			time.Sleep(50 * time.Millisecond)
			pb, err = r.openPooled(addr, key, startup, pk)
		}
	}
	return pb, err
}

// authenticateClient authenticates s's client in the router (authenticateInRouter); handled
// is false when the router cannot verify the role.
func (r *Router) authenticateClient(ctx context.Context, s *session, addr string, startup *pgproto3.StartupMessage) (bool, error) {
	if r.cfg.authenticate != nil {
		return r.cfg.authenticate(ctx, s.client, addr, startup)
	}
	var keep *passKey
	if r.cfg.PassThrough {
		keep = &s.pl.pass
	}
	return r.authenticateInRouter(ctx, s.client, addr, startup, keep)
}

// runPooled serves s on a pooled backend when the router authenticates its client itself;
// false (nothing sent to the client) when it cannot, and the caller relays authentication to
// a new backend as before.
func (s *session) runPooled(startup *pgproto3.StartupMessage) bool {
	r := s.r
	if !r.pool.enabled() {
		return false
	}
	key, ok := poolKey(startup)
	if !ok {
		return false
	}
	defer s.authDeadline()()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.AuthTimeout)
	ctx, settings := withLoginSettings(ctx)
	handled, err := r.authenticateClient(ctx, s, s.backendAddr, startup)
	cancel()
	if !handled {
		return false
	}
	if err != nil {
		r.stats[s.ep].rejected.Add(1)
		return true
	}
	// The login's role and database settings are part of the key (poolsettings.go).
	key = settings.keyWithSettings(key)
	defer s.pl.pass.zero() // after the relay: the session has ended
	pb, err := r.acquire(s.backendAddr, key, startup, &s.pl.pass)
	if err != nil {
		var se *serverError
		if errors.As(err, &se) {
			// The server's own refusal (a bad setting, no such database, 53300...), as a direct
			// connection gets it.
			if buf, eerr := se.ErrorResponse.Encode(nil); eerr == nil {
				_ = s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = s.client.Write(buf)
				r.stats[s.ep].rejected.Add(1)
			}
			return true
		}
		s.reject("57P03", fmt.Sprintf("cluster %s: node %s is not accepting connections right now: %v; retry", r.cfg.Name, s.backendAddr, err),
			fmt.Sprintf("`borealis cluster describe %s` shows the members", r.cfg.Name))
		return true
	}
	r.mu.Lock()
	s.backend = pb.conn
	closed := r.closed
	r.mu.Unlock()
	if closed {
		r.pool.discard(closedDrain, pb)
		return true
	}
	s.pl.key, s.pl.startup, s.pl.born, s.pl.opened, s.pl.params = key, pb.startup, pb.born, pb.opened, pb.params
	r.pool.inUse.Add(1)
	defer r.pool.inUse.Add(-1)
	if err := s.greet(pb); err != nil {
		return true
	}
	s.relay()
	return true
}

// greet ends the client's start-up as a backend would: AuthenticationOk, the backend's
// parameters, the router's key for it, ReadyForQuery.
func (s *session) greet(pb *pooledBackend) error {
	buf, err := (&pgproto3.AuthenticationOk{}).Encode(nil)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(pb.params))
	for k := range pb.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if buf, err = (&pgproto3.ParameterStatus{Name: k, Value: pb.params[k]}).Encode(buf); err != nil {
			return err
		}
	}
	key, err := s.r.issueKey(s, pb.pid, pb.secret)
	if err != nil {
		return err
	}
	buf = append(buf, key...)
	if buf, err = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(buf); err != nil {
		return err
	}
	s.txStatus.Store('I') // before the client can answer
	s.r.stats[s.ep].bytesOut.Add(int64(len(buf)))
	_, err = s.client.Write(buf)
	return err
}

// endPooled ends a session whose client sent Terminate at a transaction boundary (relay.go):
// its backend goes back to the pool when it can, else it gets the Terminate. err is how the
// backend direction stopped.
func (s *session) endPooled(bcr *connReader, bs *backendStream, err error) {
	if (err == nil || errors.Is(err, os.ErrDeadlineExceeded)) && s.handBack(bcr, bs) {
		return
	}
	c := s.currentBackend()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte{'X', 0, 0, 0, 4})
}

// handBack detaches s's backend, at a message boundary with nothing in flight, and returns it
// to the pool (reset in the background); false when it cannot.
func (s *session) handBack(bcr *connReader, bs *backendStream) bool {
	r := s.r
	if s.pl.key == "" || s.pl.params == nil || bcr.n != 0 || bs.f.left != 0 || bs.held != nil {
		return false
	}
	// TryLock: a mover holding the lock waits for this relay to park, which it will not.
	if !s.mv.fwd.TryLock() {
		return false
	}
	if s.mv.ended || s.mv.stopping.Load() || !s.atBoundary() {
		s.mv.fwd.Unlock()
		return false
	}
	s.mv.ended = true // movers and snapshots leave the session alone from here
	s.loopMu.Lock()
	conn := s.currentBackend()
	// close stores closed before it takes loopMu: if closed is still false, its read of
	// kept comes after this.
	if s.closed.Load() {
		s.loopMu.Unlock()
		s.mv.fwd.Unlock()
		return false
	}
	s.pl.kept = conn
	s.loopMu.Unlock()
	s.mv.fwd.Unlock()
	r.mu.Lock()
	pb := &pooledBackend{conn: conn, addr: s.backendAddr, key: s.pl.key, startup: s.pl.startup,
		params: s.pl.params, pid: s.backendPID, secret: s.backendSecret, born: s.pl.born, opened: s.pl.opened}
	r.mu.Unlock()
	pb.br = bufio.NewReaderSize(conn, 4<<10)
	_ = conn.SetDeadline(time.Time{})
	r.wg.Add(1) // the session's own count is still held: Close waits for this too
	go func() {
		defer r.wg.Done()
		r.pool.checkin(pb)
	}()
	return true
}

// relayedStart lets a relayed session's new backend (the startup already sent) take a slot
// the pool holds: while the pool has idle backends, the backend's first message is read here,
// and a 53300 refusal evicts the node's idle pooled backends and sends the start-up again to a
// new backend, while their slots free up. What was read goes to the relay first (pl.pre).
// false: the session is over (the client got an error).
func (s *session) relayedStart(backend net.Conn, startup []byte) (net.Conn, bool) {
	r := s.r
	if r.pool.idle.Load() == 0 {
		return backend, true
	}
	for i := 0; ; i++ {
		_ = backend.SetReadDeadline(time.Now().Add(r.cfg.StartupTimeout))
		msg, err := readMessageMax(backend, maxHeldError) // an authentication request or an ErrorResponse
		_ = backend.SetReadDeadline(time.Time{})
		if err != nil {
			backend.Close()
			s.reject("08006", fmt.Sprintf("cluster %s: node %s: %v", r.cfg.Name, s.backendAddr, err), "")
			return nil, false
		}
		var e pgproto3.ErrorResponse
		if msg[0] != 'E' || i >= 40 || e.Decode(msg[5:]) != nil || e.Code != "53300" || (i == 0 && r.pool.evict(s.backendAddr, closedTooManyClients) == 0) {
			s.pl.pre = msg
			return backend, true
		}
		backend.Close()
		time.Sleep(50 * time.Millisecond) // the slots free as the evicted backends exit
		if backend, err = r.dialBackend(s.backendAddr); err == nil {
			if tc, ok := backend.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			if _, err = backend.Write(startup); err != nil {
				backend.Close()
			}
		}
		if err != nil {
			s.reject("08006", fmt.Sprintf("cluster %s: node %s: %v", r.cfg.Name, s.backendAddr, err), "")
			return nil, false
		}
	}
}

// noteParam records the ParameterStatus message body b in params, when params is not nil.
func noteParam(params map[string]string, b []byte) {
	var m pgproto3.ParameterStatus
	if params != nil && m.Decode(b) == nil {
		params[m.Name] = m.Value
	}
}
