package router

// Router-side client authentication: the router runs the SCRAM-SHA-256 exchange with the
// client itself, against the role's verifier read over the node's private path, so that a
// client can be handed a backend that is already open (a warm pool) instead of one that
// authenticates it. It also makes the login checks PostgreSQL makes after authentication
// that such a backend would skip (the role may log in, the database exists, accepts
// connections and grants CONNECT). See docs/architecture.md, "The router as an
// authentication point".
//
// What it reads: pg_authid.rolpassword (the verifier: salt, iterations, StoredKey and
// ServerKey; never a password, and enough to check a proof but not to make one), over an
// admin connection as the bootstrap superuser on the node's Unix socket. Nothing is cached:
// every login reads the verifier again, so ALTER ROLE ... PASSWORD, VALID UNTIL, NOLOGIN,
// REVOKE CONNECT and DROP take effect on the next connect. Verifiers, proofs and the exchange's
// messages are never logged or put into errors.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

const (
	// authAdminUser is the bootstrap superuser every node is initialised with (pgproc: initdb
	// -U postgres), which the control plane keeps for itself and reaches only over the node's
	// private socket; authAdminDB is the database its admin connections use (pg_authid and
	// pg_database are shared catalogs, and template1 must stay free for CREATE DATABASE).
	authAdminUser = "postgres"
	authAdminDB   = "postgres"
	// maxAdminConns bounds the admin connections kept per node: logins look up concurrently
	// up to this many, the rest wait for one.
	maxAdminConns = 4
	// adminRetryAfter is how long after a failed admin connection a node's logins are relayed
	// without trying again (each try costs the node a backend).
	adminRetryAfter = time.Second
	// maxSASLMessage is PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH.
	maxSASLMessage = 65535
	scramMechanism = "SCRAM-SHA-256"
	// mockIterations and mockSaltLen are PostgreSQL 15's SCRAM defaults, which it offers in
	// the mock exchange for a role it cannot verify.
	mockIterations = 4096
	mockSaltLen    = 16
)

// loginSQL reads everything a login needs in one round trip; a missing role or database
// gives NULLs rather than no row.
const loginSQL = `SELECT a.oid IS NOT NULL, a.rolpassword, a.rolcanlogin,
  COALESCE(a.rolvaliduntil < pg_catalog.now(), false),
  d.oid IS NOT NULL, d.datallowconn, pg_catalog.has_database_privilege(a.oid, d.oid, 'CONNECT'),
  ` + settingsSQL + `
FROM (VALUES (1)) AS one(x)
LEFT JOIN pg_catalog.pg_authid a ON a.rolname = $1
LEFT JOIN pg_catalog.pg_database d ON d.datname = $2`

// loginInfo is what loginSQL found.
type loginInfo struct {
	roleExists, canLogin, expired    bool
	verifier                         string // rolpassword; "" when NULL
	dbExists, dbAllowConn, dbConnect bool
	settings                         string // the role's and database's settings (poolsettings.go)
}

// AuthError is a login the router refused: the client got it as a FATAL ErrorResponse with
// the SQLSTATE and wording PostgreSQL uses.
type AuthError struct {
	Code, Message, Detail string
}

func (e *AuthError) Error() string { return e.Message + " (SQLSTATE " + e.Code + ")" }

// AuthStats count the logins the router authenticated itself.
type AuthStats struct {
	// Succeeded and Failed are logins decided in the router; Relayed are those it left to a
	// backend (no SCRAM verifier, replication, no private path, or the lookup failed).
	Succeeded, Failed, Relayed int64
}

// AuthStats returns the router's authentication counters.
func (r *Router) AuthStats() AuthStats {
	a := &r.auth
	return AuthStats{Succeeded: a.succeeded.Load(), Failed: a.failed.Load(), Relayed: a.relayed.Load()}
}

// routerAuth is the router's authentication state: admin connections per node and counters.
type routerAuth struct {
	mu     sync.Mutex
	nodes  map[string]*adminPool // by private address
	closed bool
	// sweptAt is when pool last closed the connections of nodes unused for adminIdleFor.
	sweptAt time.Time
	// mockKey makes a missing role's mock salt stable for the router's life (mockSalt).
	mockOnce sync.Once
	mockKey  [32]byte

	succeeded, failed, relayed atomic.Int64
}

// adminPool holds up to maxAdminConns admin connections to one node.
type adminPool struct {
	slots    chan struct{}
	mu       sync.Mutex
	idle     []*pgconn.PgConn
	failedAt time.Time
	// used is when a login last asked for this node (under routerAuth.mu).
	used time.Time
	// hba and hbaAt are the node's pg_hba rules and when they were read (authhba.go).
	hba   []hbaRule
	hbaAt time.Time
}

// adminIdleFor is how long a node's admin connections stay open unused: a node that left
// the cluster (or moved) keeps none open past it.
var adminIdleFor = time.Minute

func (a *routerAuth) pool(private string) *adminPool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if now.Sub(a.sweptAt) >= adminIdleFor {
		a.sweptAt = now
		for addr, p := range a.nodes {
			if addr != private && now.Sub(p.used) >= adminIdleFor && len(p.slots) == 0 {
				delete(a.nodes, addr)
				go p.closeIdle()
			}
		}
	}
	if a.nodes == nil {
		a.nodes = map[string]*adminPool{}
	}
	p := a.nodes[private]
	if p == nil {
		p = &adminPool{slots: make(chan struct{}, maxAdminConns)}
		a.nodes[private] = p
	}
	p.used = now
	return p
}

func (p *adminPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.Close(ctx)
		cancel()
	}
}

// close closes the idle admin connections; ones in use are closed when they come back.
func (a *routerAuth) close() {
	a.mu.Lock()
	a.closed = true
	nodes := a.nodes
	a.nodes = nil
	a.mu.Unlock()
	for _, p := range nodes {
		p.closeIdle()
	}
}

// lookupLogin runs loginSQL on an admin connection to the node at private, and returns the
// node's pg_hba rules too (read again when older than hbaCacheFor).
func (r *Router) lookupLogin(ctx context.Context, private, user, db string) (loginInfo, []hbaRule, error) {
	p := r.auth.pool(private)
	p.mu.Lock()
	recent := time.Since(p.failedAt) < adminRetryAfter
	p.mu.Unlock()
	if recent {
		return loginInfo{}, nil, errors.New("the node's admin connection failed less than a second ago")
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return loginInfo{}, nil, ctx.Err()
	}
	defer func() { <-p.slots }()
	// An idle connection may have died with its node (a restart): one more try on a new one.
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		var conn *pgconn.PgConn
		if n := len(p.idle); n > 0 {
			conn, p.idle = p.idle[n-1], p.idle[:n-1]
		}
		p.mu.Unlock()
		fresh := conn == nil
		if fresh {
			var err error
			if conn, err = r.adminConnect(ctx, private); err != nil {
				p.mu.Lock()
				p.failedAt = time.Now()
				p.mu.Unlock()
				return loginInfo{}, nil, err
			}
		}
		p.mu.Lock()
		rules, stale := p.hba, time.Since(p.hbaAt) > hbaCacheFor
		p.mu.Unlock()
		var err error
		if stale {
			if rules, err = queryHBA(ctx, conn); err == nil {
				p.mu.Lock()
				p.hba, p.hbaAt = rules, time.Now()
				p.mu.Unlock()
			}
		}
		var info loginInfo
		if err == nil {
			info, err = queryLogin(ctx, conn, user, db)
		}
		if err == nil {
			r.auth.mu.Lock()
			closed := r.auth.closed
			r.auth.mu.Unlock()
			if closed {
				_ = conn.Close(context.Background())
			} else {
				p.mu.Lock()
				p.idle = append(p.idle, conn)
				p.mu.Unlock()
			}
			return info, rules, nil
		}
		_ = conn.Close(context.Background())
		if fresh || attempt > 0 || ctx.Err() != nil {
			return loginInfo{}, nil, err
		}
	}
}

// adminConnect opens an admin connection as the bootstrap superuser on the node's private
// path (trusted: only the router and the node's OS user can reach it).
func (r *Router) adminConnect(ctx context.Context, private string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	// Whatever PG* variables the process has, this connection is exactly this one.
	cfg.Host, cfg.Port = "/router-private-path", 5432 // a Unix-style host: no name lookup
	cfg.User, cfg.Database, cfg.Password = authAdminUser, authAdminDB, ""
	cfg.TLSConfig, cfg.Fallbacks, cfg.ValidateConnect, cfg.AfterConnect = nil, nil, nil, nil
	cfg.RuntimeParams = map[string]string{"application_name": "borealis-router-auth", "statement_timeout": "5s"}
	cfg.ConnectTimeout = r.cfg.DialTimeout
	cfg.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
		network := "tcp"
		if strings.HasPrefix(private, "/") {
			network = "unix"
		}
		var d net.Dialer
		return d.DialContext(ctx, network, private)
	}
	return pgconn.ConnectConfig(ctx, cfg)
}

func queryLogin(ctx context.Context, conn *pgconn.PgConn, user, db string) (loginInfo, error) {
	res := conn.ExecParams(ctx, loginSQL, [][]byte{[]byte(user), []byte(db)}, nil, nil, nil).Read()
	if res.Err != nil {
		return loginInfo{}, res.Err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 8 {
		return loginInfo{}, fmt.Errorf("login lookup returned %d rows", len(res.Rows))
	}
	row := res.Rows[0]
	t := func(i int) bool { return string(row[i]) == "t" }
	return loginInfo{roleExists: t(0), verifier: string(row[1]), canLogin: t(2), expired: t(3),
		dbExists: t(4), dbAllowConn: t(5), dbConnect: t(6), settings: string(row[7])}, nil
}

// parseVerifier reads PostgreSQL's SCRAM-SHA-256 verifier,
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64), as
// parse_scram_secret does. The error never quotes the verifier.
func parseVerifier(v string) (scram.StoredCredentials, error) {
	var cred scram.StoredCredentials
	rest, ok := strings.CutPrefix(v, scramMechanism+"$")
	if !ok {
		return cred, errors.New("not a SCRAM-SHA-256 verifier")
	}
	factors, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return cred, errors.New("SCRAM verifier without keys")
	}
	iters, salt, ok := strings.Cut(factors, ":")
	if !ok {
		return cred, errors.New("SCRAM verifier without a salt")
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 {
		return cred, errors.New("SCRAM verifier with a bad iteration count")
	}
	stored, server, ok := strings.Cut(keys, ":")
	if !ok {
		return cred, errors.New("SCRAM verifier without a server key")
	}
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	if err != nil || len(rawSalt) == 0 {
		return cred, errors.New("SCRAM verifier with a bad salt")
	}
	sk, err1 := base64.StdEncoding.DecodeString(stored)
	svk, err2 := base64.StdEncoding.DecodeString(server)
	if err1 != nil || err2 != nil || len(sk) != sha256.Size || len(svk) != sha256.Size {
		return cred, errors.New("SCRAM verifier with bad keys")
	}
	cred.Salt, cred.Iters, cred.StoredKey, cred.ServerKey = string(rawSalt), n, sk, svk
	return cred, nil
}

// mockCredentials stand in for a role that cannot log in with a password (missing, or its
// password expired), as PostgreSQL's mock exchange does: the client sees the same messages,
// a salt that does not change between attempts, and the same failure, so the answer does
// not say whether the role exists. PostgreSQL derives the salt from a nonce in pg_control;
// the router from a key of its own, so a missing role's salt is stable for the router's life.
func (a *routerAuth) mockCredentials(user string) scram.StoredCredentials {
	a.mockOnce.Do(func() { _, _ = rand.Read(a.mockKey[:]) })
	m := hmac.New(sha256.New, a.mockKey[:])
	m.Write([]byte("salt\x00" + user))
	salt := m.Sum(nil)[:mockSaltLen]
	keys := make([]byte, 2*sha256.Size)
	_, _ = rand.Read(keys) // no client proof matches random keys
	return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: mockIterations},
		StoredKey: keys[:sha256.Size], ServerKey: keys[sha256.Size:]}
}

// isReplication says whether the start-up parameter replication asks for a walsender:
// anything but one of PostgreSQL's false values (those are left to the backend to judge).
func isReplication(v string) bool {
	switch strings.ToLower(v) {
	case "", "false", "off", "no", "0":
		return false
	}
	return true
}

// authenticateInRouter runs the authentication exchange with the client for the role named
// in startup, in the router, against the role's SCRAM-SHA-256 verifier read over the private
// path of addr. handled=false (and nothing sent to the client) means the router cannot verify
// this role itself (no SCRAM verifier, e.g. md5 or no password; a replication connection; no
// private path configured; or the node's admin connection failed): the caller relays
// authentication to a new backend as before. handled=true with err==nil means the client
// proved the password and may use the database (AuthenticationSASLFinal has been sent); the
// caller then sends AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery.
// handled=true with err!=nil: the client got the ErrorResponse (an *AuthError: 28P01 etc.,
// the same SQLSTATE and wording PostgreSQL uses) or went away, and must be closed.
//
// The exchange is bounded by ctx and by AuthTimeout: a client that stalls gets 57014
// "canceling authentication due to timeout".
func (r *Router) authenticateInRouter(ctx context.Context, client net.Conn, addr string,
	startup *pgproto3.StartupMessage, keep *passKey) (handled bool, err error) {
	if r.cfg.PrivateAddr == nil || isReplication(startup.Parameters["replication"]) {
		r.auth.relayed.Add(1)
		return false, nil
	}
	private := r.cfg.PrivateAddr(addr)
	user, db := startup.Parameters["user"], startup.Parameters["database"]
	if db == "" {
		db = user
	}
	lctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	info, rules, err := r.lookupLogin(lctx, private, user, db)
	cancel()
	if err != nil {
		r.auth.relayed.Add(1)
		return false, nil
	}
	// pg_hba as the relayed path would meet it (authhba.go): SCRAM, or md5, which PostgreSQL
	// runs as SCRAM for a role with a SCRAM verifier; its mock exchange for a missing or
	// expired role is SCRAM for sure only under scram-sha-256.
	method, known := hbaMethod(rules, addr, user, db)
	mock := !info.roleExists || info.expired
	if !known || !(method == "scram-sha-256" || method == "md5" && !mock) {
		r.auth.relayed.Add(1)
		return false, nil
	}
	var cred scram.StoredCredentials
	if mock {
		cred = r.auth.mockCredentials(user)
	} else if cred, err = parseVerifier(info.verifier); err != nil {
		// md5, no password, or a verifier the router cannot read: the backend decides.
		r.auth.relayed.Add(1)
		return false, nil
	}

	deadline := time.Now().Add(r.cfg.AuthTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = client.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = client.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			_ = client.SetDeadline(time.Time{})
		}
	}()

	clientKey, err := scramExchange(client, cred)
	defer clear(clientKey)
	if errors.Is(err, errWrongProof) {
		err = authFailed(user)
	}
	if err == nil {
		err = checkLogin(info, mock, user, db)
	}
	var ae *AuthError
	switch {
	case err == nil:
		if keep != nil {
			keep.set(clientKey, cred)
		}
		r.auth.succeeded.Add(1)
		noteLoginSettings(ctx, info.settings)
		return true, nil
	case errors.As(err, &ae):
	case isTimeout(err):
		ae = &AuthError{Code: "57014", Message: "canceling authentication due to timeout"}
		err = ae
	default:
		r.auth.failed.Add(1)
		return true, err // the client went away, or its socket failed: nothing to tell it
	}
	r.auth.failed.Add(1)
	_ = client.SetWriteDeadline(time.Now().Add(time.Second))
	buf, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: ae.Code,
		Message: ae.Message, Detail: ae.Detail}).Encode(nil)
	if _, werr := client.Write(buf); werr == nil {
		lingerAfterError(client)
	}
	return true, err
}

// checkLogin makes, for a client that proved its password, the checks PostgreSQL makes after
// authentication (InitializeSessionUserId, CheckMyDatabase), in its order and wording.
// Connection limits (rolconnlimit, datconnlimit) are the backend's: a pooled backend counts
// against them for as long as it is open.
func checkLogin(info loginInfo, mock bool, user, db string) error {
	switch {
	case mock:
		return authFailed(user)
	case !info.canLogin:
		return &AuthError{Code: "28000", Message: fmt.Sprintf("role %q is not permitted to log in", user)}
	case !info.dbExists:
		return &AuthError{Code: "3D000", Message: fmt.Sprintf("database %q does not exist", db)}
	case !info.dbAllowConn:
		return &AuthError{Code: "55000", Message: fmt.Sprintf("database %q is not currently accepting connections", db)}
	case !info.dbConnect:
		return &AuthError{Code: "42501", Message: fmt.Sprintf("permission denied for database %q", db),
			Detail: "User does not have CONNECT privilege."}
	}
	return nil
}

func authFailed(user string) *AuthError {
	return &AuthError{Code: "28P01", Message: fmt.Sprintf("password authentication failed for user %q", user)}
}

func protocolViolation(msg, detail string) *AuthError {
	return &AuthError{Code: "08P01", Message: msg, Detail: detail}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// scramExchange runs SCRAM-SHA-256 (RFC 5802/7677, no channel binding) with the client
// against cred, with the messages PostgreSQL sends: AuthenticationSASL, SASLContinue and, on
// success, SASLFinal, and returns the ClientKey recovered from the client's proof
// (passthrough.go; the caller zeroes it). A wrong proof is 28P01; a malformed message 08P01.
func scramExchange(c net.Conn, cred scram.StoredCredentials) ([]byte, error) {
	if err := writeMsg(c, &pgproto3.AuthenticationSASL{AuthMechanisms: []string{scramMechanism}}); err != nil {
		return nil, err
	}
	body, err := readSASLMessage(c)
	if err != nil {
		return nil, err
	}
	mech, first, err := decodeSASLInitial(body)
	if err != nil {
		return nil, err
	}
	if mech != scramMechanism {
		return nil, protocolViolation("client selected an invalid SASL authentication mechanism", "")
	}
	if first == nil {
		// No initial response: an empty challenge, answered with what it would have held.
		if err := writeMsg(c, &pgproto3.AuthenticationSASLContinue{}); err != nil {
			return nil, err
		}
		if first, err = readSASLMessage(c); err != nil {
			return nil, err
		}
	}
	server, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) {
		// PostgreSQL ignores the SCRAM user name (libpq sends none): the role is the start-up's.
		return cred, nil
	})
	if err != nil {
		return nil, err
	}
	conv := server.NewConversation()
	serverFirst, err := conv.Step(string(first))
	if err != nil {
		return nil, protocolViolation("malformed SCRAM message", "client-first-message: "+err.Error())
	}
	if err := writeMsg(c, &pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)}); err != nil {
		return nil, err
	}
	final, err := readSASLMessage(c)
	if err != nil {
		return nil, err
	}
	serverFinal, err := conv.Step(string(final))
	switch {
	case err == nil && conv.Valid():
		key, kerr := recoverClientKey(string(first), serverFirst, string(final), cred)
		if kerr != nil {
			return nil, kerr
		}
		if err := writeMsg(c, &pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)}); err != nil {
			clear(key)
			return nil, err
		}
		return key, nil
	case err != nil && serverFinal == "":
		return nil, protocolViolation("malformed SCRAM message", "client-final-message: "+err.Error())
	case serverFinal == scram.ErrChannelBindingsDontMatch:
		return nil, protocolViolation("SCRAM channel binding check failed", "")
	}
	// A wrong proof or nonce: PostgreSQL's answer carries no detail.
	return nil, errWrongProof
}

// errWrongProof becomes 28P01 naming the start-up's user (authenticateInRouter).
var errWrongProof = errors.New("wrong SCRAM proof")

// readSASLMessage reads one SASLInitialResponse or SASLResponse ('p') from the client, exactly
// (no read-ahead), bounded by PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH.
func readSASLMessage(c net.Conn) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != 'p' {
		return nil, protocolViolation(fmt.Sprintf("expected SASL response, got message type %d", hdr[0]), "")
	}
	n := int64(int32(binary.BigEndian.Uint32(hdr[1:]))) - 4
	if n < 0 || n > maxSASLMessage {
		return nil, protocolViolation("invalid SASL response", fmt.Sprintf("message length %d is outside 4..%d", n+4, maxSASLMessage+4))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	return body, nil
}

// decodeSASLInitial splits a SASLInitialResponse body: mechanism name, then the initial
// response (nil when its length is -1, "none").
func decodeSASLInitial(body []byte) (string, []byte, error) {
	var m pgproto3.SASLInitialResponse
	if err := m.Decode(body); err != nil {
		return "", nil, protocolViolation("invalid SASLInitialResponse", "the message ends before the initial response's length")
	}
	n := int32(binary.BigEndian.Uint32(body[len(m.AuthMechanism)+1:]))
	switch {
	case n == -1 && len(m.Data) == 0:
		return m.AuthMechanism, nil, nil
	case n < 0 || int(n) != len(m.Data):
		return "", nil, protocolViolation("invalid SASLInitialResponse",
			fmt.Sprintf("initial response length %d, but %d bytes follow", n, len(m.Data)))
	}
	return m.AuthMechanism, append([]byte{}, m.Data...), nil
}

// writeMsg encodes and writes one protocol message (to a client, or to a backend).
func writeMsg(c net.Conn, m interface{ Encode([]byte) ([]byte, error) }) error {
	buf, err := m.Encode(nil)
	if err != nil {
		return err
	}
	_, err = c.Write(buf)
	return err
}
