package router

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Endpoint says which of a cluster's two endpoints a listener serves.
type Endpoint int

const (
	// ClusterEndpoint goes to the writer.
	ClusterEndpoint Endpoint = iota
	// ReaderEndpoint goes to the least-loaded available reader, or the writer when none is.
	ReaderEndpoint
)

func (e Endpoint) String() string {
	if e == ReaderEndpoint {
		return "reader"
	}
	return "cluster"
}

// Backends tells the router where the cluster's available nodes are: "host:port" for TCP, or
// the path of a Unix socket (starting with "/"), which costs the router less CPU per message
// than loopback TCP.
type Backends interface {
	// Writer is the writer's address, or "" when it is not available.
	Writer() string
	// Readers are the available readers' addresses.
	Readers() []string
}

// Config configures a Router.
type Config struct {
	// Name identifies the cluster in error messages.
	Name     string
	Backends Backends
	// TLS, when set, terminates TLS for clients that ask (SSLRequest); otherwise they get 'N'.
	TLS *tls.Config
	// HoldTimeout bounds how long a new client waits while the router is held or no backend
	// is available; 0 means 30 s.
	HoldTimeout time.Duration
	// StartupTimeout bounds reading the start-up packets; 0 means 15 s.
	StartupTimeout time.Duration
	// DialTimeout bounds connecting to a backend; 0 means 5 s.
	DialTimeout time.Duration
	// PrivateAddr maps a backend address to the router's trusted local path to the same node,
	// used to open a moved session's new backend without the client's password (move.go);
	// nil uses the address itself.
	PrivateAddr func(addr string) string
	// Limits (limits.go); 0 means the default.
	MaxClients  int           // sessions per endpoint
	MaxStartups int           // sessions in start-up, oldest dropped beyond it
	MaxHeld     int           // clients waiting at the gate or for a node
	AuthTimeout time.Duration // StartupMessage to first ReadyForQuery; 0 means 60 s
	// IdleSnapshotAfter, when set, makes the router read the state of a session idle at a
	// transaction boundary for that long, so that it can replay the session onto a new backend
	// if its backend dies while it stays idle (recover.go); 0 leaves crash replay off.
	IdleSnapshotAfter time.Duration
	// GoroutineRelay relays every session with a goroutine per direction instead of the
	// router's event loop (eventloop.go); for comparison.
	GoroutineRelay bool
	// SchedulerWait makes the event loop always wait the ordinary way, through the Go
	// scheduler, instead of holding its P while sessions are busy (rawwait.go); for comparison.
	SchedulerWait bool
	// NoIOURing runs the event loop on epoll even where io_uring is available
	// (eventloop_uring.go); BOREALIS_ROUTER_IOURING=off does the same for every router.
	NoIOURing bool
	// NoBackendPool turns off the warm pool of authenticated idle backends (pool.go): every
	// client then gets a new backend.
	NoBackendPool bool
	// PassThrough opens the backends of sessions whose client the router authenticated
	// (pooled, moved and replayed ones) at the node's own address, authenticated as the
	// client's role with the ClientKey recovered from the client's SCRAM proof, instead of on
	// the trusted private path (passthrough.go). Off by default; kernel forwarding needs it
	// (a sockmap redirects TCP to TCP only). The node's pg_hba must then ask for
	// scram-sha-256 on that address. BOREALIS_ROUTER_PASSTHROUGH=1 turns it on for every
	// router of the process.
	PassThrough bool
	// Sockmap lets the kernel forward the steady state of sessions whose client and backend
	// are plain TCP (an eBPF sockmap; kernelpath.go), where the kernel allows it (root, BPF,
	// a recent kernel; otherwise the event loop, as without it). Off by default;
	// BOREALIS_ROUTER_SOCKMAP=1 turns it on for every router of the process.
	Sockmap bool
	// PoolIdleTimeout closes a pooled backend idle that long; 0 means
	// BOREALIS_ROUTER_POOL_IDLE_TIMEOUT when set, else 5 minutes (DefaultPoolIdleTimeout).
	PoolIdleTimeout time.Duration
	// PoolMaxIdlePerKey and PoolMaxIdle cap the idle pooled backends per node, role,
	// database and start-up parameters, and in all; 0 means 20 and 50.
	PoolMaxIdlePerKey, PoolMaxIdle int

	// authenticate, when set, replaces authenticateInRouter (tests).
	authenticate func(ctx context.Context, client net.Conn, addr string, startup *pgproto3.StartupMessage) (bool, error)
}

// Router proxies one cluster's endpoints.
type Router struct {
	cfg  Config
	gate gate

	mu        sync.Mutex
	listeners []net.Listener
	sessions  map[*session]struct{}
	byKey     map[cancelKey]*session
	perNode   map[string]int
	closed    bool
	wg        sync.WaitGroup
	done      chan struct{}
	nextPID   atomic.Uint32
	// pending are the sessions in start-up, oldest first; held and evicted count (limits.go).
	pending *list.List
	held    atomic.Int64
	evicted atomic.Int64
	// lastActivity is the UnixNano of the last connect or disconnect (gate.go).
	lastActivity atomic.Int64
	moved        atomic.Int64
	recovered    atomic.Int64
	// snapSent and snapEnded count crash snapshots whose query was sent to a backend, and
	// those whose answer (or failure) came back (recover.go; tests watch them).
	snapSent, snapEnded atomic.Int64
	// replayDialed counts the backends dialled to replay a session on (recover.go, move.go).
	replayDialed atomic.Int64

	stats [2]endpointStats

	// loop is the event loop, started on first use (eventloop.go).
	loopOnce sync.Once
	loop     *eventLoop
	inLoop   atomic.Int64

	backendWake wakeup // writerwake.go

	auth routerAuth   // auth.go
	pool *backendPool // pool.go
	kfwd *kernelFwd   // kernelpath.go; nil without kernel forwarding
}

type endpointStats struct {
	active, total, rejected, bytesIn, bytesOut atomic.Int64
}

// EndpointStats are one endpoint's counters: bytes in are client to server.
type EndpointStats struct {
	Endpoint string `json:"endpoint"`
	Active   int64  `json:"active"`
	Total    int64  `json:"total"`
	Rejected int64  `json:"rejected"`
	BytesIn  int64  `json:"bytes_in"`
	BytesOut int64  `json:"bytes_out"`
}

// New makes a Router; Listen or Serve starts it.
func New(cfg Config) *Router {
	if cfg.HoldTimeout == 0 {
		cfg.HoldTimeout = 30 * time.Second
	}
	if cfg.StartupTimeout == 0 {
		cfg.StartupTimeout = 15 * time.Second
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cfg.limitDefaults()
	cfg.PassThrough = cfg.PassThrough || passThroughEnv()
	cfg.Sockmap = cfg.Sockmap || sockmapEnv()
	r := &Router{cfg: cfg, sessions: map[*session]struct{}{}, byKey: map[cancelKey]*session{},
		perNode: map[string]int{}, done: make(chan struct{})}
	r.nextPID.Store(1000)
	r.startKernelFwd()
	if cfg.IdleSnapshotAfter > 0 {
		go r.sweep(cfg.IdleSnapshotAfter)
	}
	r.pool = newBackendPool(r)
	if r.pool.enabled() {
		go r.pool.reap()
	}
	return r
}

// Listen listens on addr for endpoint ep and serves it in the background.
func (r *Router) Listen(ep Endpoint, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s endpoint of %s on %s: %w (is the port in use?)", ep, r.cfg.Name, addr, err)
	}
	if err := r.add(l); err != nil {
		l.Close()
		return nil, err
	}
	go r.serve(ep, l)
	return l, nil
}

func (r *Router) add(l net.Listener) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("router is closed")
	}
	r.listeners = append(r.listeners, l)
	return nil
}

func (r *Router) serve(ep Endpoint, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if !r.admit(ep, c) {
			continue
		}
		s := &session{r: r, ep: ep, client: c, started: time.Now(), kick: make(chan struct{}, 1)}
		if !r.track(s) {
			c.Close()
			return
		}
		go s.run()
	}
}

func (r *Router) track(s *session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.sessions[s] = struct{}{}
	r.startPendingLocked(s)
	r.touch()
	r.wg.Add(1)
	r.stats[s.ep].active.Add(1)
	r.stats[s.ep].total.Add(1)
	return true
}

func (r *Router) untrack(s *session) {
	r.mu.Lock()
	delete(r.sessions, s)
	r.endPendingLocked(s)
	if s.key != (cancelKey{}) {
		delete(r.byKey, s.key)
	}
	if s.backendAddr != "" {
		r.perNode[s.backendAddr]--
		if r.perNode[s.backendAddr] <= 0 {
			delete(r.perNode, s.backendAddr)
		}
	}
	r.touch()
	r.mu.Unlock()
	r.stats[s.ep].active.Add(-1)
	r.wg.Done()
}

// Close stops listening, closes every session and waits for them to end.
func (r *Router) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.done)
	for _, l := range r.listeners {
		l.Close()
	}
	for s := range r.sessions {
		s.close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.pool.close()
	r.stopLoop()
	r.kfwd.close()
	r.auth.close()
}

// Hold makes new clients wait at connect time (sessions already running are untouched) until
// Release, or fail after the hold timeout with an ErrorResponse giving reason.
func (r *Router) Hold(reason string) { r.gate.hold(reason) }

// Release lets held and new clients through.
func (r *Router) Release() { r.gate.release() }

// Stats returns the counters of both endpoints.
func (r *Router) Stats() []EndpointStats {
	out := make([]EndpointStats, 2)
	for i := range out {
		s := &r.stats[i]
		out[i] = EndpointStats{Endpoint: Endpoint(i).String(), Active: s.active.Load(), Total: s.total.Load(),
			Rejected: s.rejected.Load(), BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load()}
	}
	return out
}

// SessionInfo describes one client session.
type SessionInfo struct {
	Endpoint string    `json:"endpoint"`
	Backend  string    `json:"backend"`
	User     string    `json:"user"`
	Database string    `json:"database"`
	Started  time.Time `json:"started"`
	// TxStatus is the last ReadyForQuery status: 'I' idle, 'T' in a transaction, 'E' in a
	// failed transaction, 0 before the session is ready.
	TxStatus byte `json:"tx_status"`
	// Pinned are the reasons the session could not move at the last attempt.
	Pinned []string `json:"pinned,omitempty"`
	// Replayable says the router holds a snapshot of the session's state that no message has
	// made stale since: if its backend dies now, the session continues on a new one.
	Replayable bool `json:"replayable,omitempty"`
}

// Sessions lists the current sessions, oldest first.
func (r *Router) Sessions() []SessionInfo {
	r.mu.Lock()
	out := make([]SessionInfo, 0, len(r.sessions))
	for s := range r.sessions {
		out = append(out, SessionInfo{Endpoint: s.ep.String(), Backend: s.backendAddr, User: s.user,
			Database: s.database, Started: s.started, TxStatus: byte(s.txStatus.Load()), Pinned: s.pins, Replayable: s.replayable()})
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// BackendConnections is the number of router sessions on each backend address.
func (r *Router) BackendConnections() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.perNode))
	for k, v := range r.perNode {
		out[k] = v
	}
	return out
}

// dialBackend connects to a backend address as Backends gives it.
func (r *Router) dialBackend(addr string) (net.Conn, error) {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	return net.DialTimeout(network, addr, r.cfg.DialTimeout)
}

// pick chooses the backend for s and counts it there; false when none is available.
func (r *Router) pick(s *session) bool { return r.pickAvoiding(s, "") }

// unpick undoes pick.
func (r *Router) unpick(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.backendAddr != "" {
		r.perNode[s.backendAddr]--
		if r.perNode[s.backendAddr] <= 0 {
			delete(r.perNode, s.backendAddr)
		}
		s.backendAddr = ""
	}
}

// pickAvoiding is pick, skipping the reader at avoid (a node that just refused a connection).
func (r *Router) pickAvoiding(s *session, avoid string) bool {
	var readers []string
	if s.ep == ReaderEndpoint {
		for _, a := range r.cfg.Backends.Readers() {
			if a != avoid {
				readers = append(readers, a)
			}
		}
	}
	writer := ""
	if len(readers) == 0 {
		writer = r.cfg.Backends.Writer()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	addr, best := writer, -1
	for _, a := range readers {
		if n := r.perNode[a]; best < 0 || n < best {
			best, addr = n, a
		}
	}
	if addr == "" {
		return false
	}
	s.backendAddr = addr
	r.perNode[addr]++
	return true
}
