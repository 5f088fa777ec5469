package router

// SCRAM pass-through, as PgBouncer does it: the router keeps, in memory and for the life of
// one session, the ClientKey it recovers from the client's SCRAM proof, and uses it to
// authenticate the session's new backends as the client's role over an ordinary connection
// to the node (TCP, under the node's own pg_hba: scram-sha-256, no trust), instead of on the
// trusted private path. It is off unless Config.PassThrough is set; kernel forwarding
// (an eBPF sockmap redirects TCP to TCP only) is what needs it.
//
// Why this works: a SCRAM-SHA-256 proof is ClientProof = ClientKey XOR HMAC(StoredKey,
// AuthMessage), and the verifier holds StoredKey = H(ClientKey). The router, which checked the
// proof against the verifier (auth.go), can therefore compute ClientKey, and ClientKey (with
// the verifier's salt and iteration count, which the server sends again) is all a client needs
// to make a proof for any later exchange with that verifier. It is not the password: it
// cannot be used against a verifier made from the same password with another salt, and it
// stops working once ALTER ROLE ... PASSWORD replaces the verifier. See docs/architecture.md,
// "SCRAM pass-through".
//
// The client side of the exchange is written here rather than taken from xdg-go/scram: its
// Client derives the keys from a password with PBKDF2 and has no way to be given a ClientKey.
// The server side (auth.go) is the library's; only the proof's decoding is repeated here to
// recover the key.

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"
)

// passKey is what a session keeps to authenticate its new backends: the ClientKey recovered
// from its client's proof, and the verifier's ServerKey, salt and iteration count (the
// ServerKey checks the server's signature: the router authenticates the server too). It is
// zeroed when the session ends; its zero value holds no key.
type passKey struct {
	mu        sync.Mutex
	clientKey []byte
	serverKey []byte
	salt      string
	iters     int
}

// set keeps a copy of the key material (auth.go, after a valid proof).
func (k *passKey) set(clientKey []byte, cred scram.StoredCredentials) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.clearLocked()
	k.clientKey = append([]byte(nil), clientKey...)
	k.serverKey = append([]byte(nil), cred.ServerKey...)
	k.salt, k.iters = cred.Salt, cred.Iters
}

// zero overwrites the key material: the session has ended.
func (k *passKey) zero() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.clearLocked()
}

func (k *passKey) clearLocked() {
	clear(k.clientKey)
	clear(k.serverKey)
	k.clientKey, k.serverKey, k.salt, k.iters = nil, nil, "", 0
}

// held says whether a key is kept.
func (k *passKey) held() bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clientKey != nil
}

// recoverClientKey computes ClientKey from a successful exchange's messages (client-first,
// server-first, client-final, as sent) and checks H(ClientKey) == StoredKey: the same proof
// the library accepted, decoded once more because it does not hand the key out.
func recoverClientKey(first, serverFirst, final string, cred scram.StoredCredentials) ([]byte, error) {
	// client-first-message = gs2-header client-first-message-bare, the header being
	// "cbind-flag,[authzid]," (two commas).
	i := strings.IndexByte(first, ',')
	j := -1
	if i >= 0 {
		j = strings.IndexByte(first[i+1:], ',')
	}
	p := strings.LastIndex(final, ",p=")
	if j < 0 || p < 0 {
		return nil, errors.New("malformed SCRAM message")
	}
	bare := first[i+1+j+1:]
	proof, err := base64.StdEncoding.DecodeString(final[p+3:])
	if err != nil || len(proof) != sha256.Size {
		return nil, errors.New("malformed SCRAM proof")
	}
	authMsg := bare + "," + serverFirst + "," + final[:p]
	key := xorBytes(proof, hmacSHA256(cred.StoredKey, authMsg))
	stored := sha256.Sum256(key)
	if subtle.ConstantTimeCompare(stored[:], cred.StoredKey) != 1 {
		clear(key)
		return nil, errWrongProof
	}
	return key, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func xorBytes(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// errKeyStale is a new backend's verifier that is no longer the one the session's client
// proved its password against.
var errKeyStale = errors.New("the role's password was changed since this client logged in, so the router cannot authenticate a new backend for the session; reconnect")

// authenticate answers a backend's authentication request (the body of its first 'R'
// message, not AuthenticationOk) with the kept key: SCRAM-SHA-256 without channel binding,
// up to and including AuthenticationSASLFinal, whose server signature it checks. The
// server's refusal is a *serverError (the client then gets the server's own 28P01).
func (k *passKey) authenticate(conn net.Conn, br *bufio.Reader, req []byte) error {
	k.mu.Lock()
	clientKey := append([]byte(nil), k.clientKey...)
	serverKey := append([]byte(nil), k.serverKey...)
	salt, iters := k.salt, k.iters
	k.mu.Unlock()
	defer clear(clientKey)
	defer clear(serverKey)
	if len(clientKey) == 0 {
		return errors.New("the router's trusted path is not used for this session and it holds no key to authenticate a new backend")
	}
	var sasl pgproto3.AuthenticationSASL
	if binary.BigEndian.Uint32(req) != pgproto3.AuthTypeSASL || sasl.Decode(req) != nil || !contains(sasl.AuthMechanisms, scramMechanism) {
		return fmt.Errorf("the node asked for authentication type %d for the session's new backend, want SCRAM-SHA-256 (pg_hba scram-sha-256)", binary.BigEndian.Uint32(req))
	}
	var raw [18]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	nonce := base64.RawStdEncoding.EncodeToString(raw[:])
	// PostgreSQL takes the role from the start-up packet and ignores n= (libpq sends it empty).
	bare := "n=,r=" + nonce
	if err := writeMsg(conn, &pgproto3.SASLInitialResponse{AuthMechanism: scramMechanism, Data: []byte("n,," + bare)}); err != nil {
		return err
	}
	serverFirst, err := readSASL(br, pgproto3.AuthTypeSASLContinue)
	if err != nil {
		return err
	}
	attrs := scramAttrs(serverFirst)
	sSalt, _ := base64.StdEncoding.DecodeString(attrs["s"])
	sIters, _ := strconv.Atoi(attrs["i"])
	switch {
	case !strings.HasPrefix(attrs["r"], nonce) || len(attrs["r"]) == len(nonce):
		return errors.New("the backend's SCRAM nonce does not extend the router's")
	case string(sSalt) != salt || sIters != iters:
		return errKeyStale
	}
	finalBare := "c=biws,r=" + attrs["r"] // biws: base64 of the gs2 header "n,,"
	authMsg := bare + "," + serverFirst + "," + finalBare
	sig := hmacSHA256(sha256Of(clientKey), authMsg)
	proof := xorBytes(clientKey, sig)
	final := finalBare + ",p=" + base64.StdEncoding.EncodeToString(proof)
	if err := writeMsg(conn, &pgproto3.SASLResponse{Data: []byte(final)}); err != nil {
		return err
	}
	serverFinal, err := readSASL(br, pgproto3.AuthTypeSASLFinal)
	if err != nil {
		return err
	}
	want := base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMsg))
	if v := scramAttrs(serverFinal)["v"]; subtle.ConstantTimeCompare([]byte(v), []byte(want)) != 1 {
		return errors.New("the backend's SCRAM server signature does not match the role's verifier")
	}
	return nil
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scramAttrs splits a SCRAM message's "k=v" attributes.
func scramAttrs(msg string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(f, "="); ok && len(k) == 1 {
			out[k] = v
		}
	}
	return out
}

// readSASL reads the backend's next message, which must be the authentication message of
// type want (SASLContinue or SASLFinal); an ErrorResponse is a *serverError.
func readSASL(br *bufio.Reader, want uint32) (string, error) {
	msg, err := readMessage(br)
	if err != nil {
		return "", err
	}
	body := msg[5:]
	switch {
	case msg[0] == 'E':
		se := &serverError{}
		if err := se.Decode(body); err != nil {
			return "", err
		}
		return "", se
	case msg[0] != 'R' || len(body) < 4 || binary.BigEndian.Uint32(body) != want:
		return "", fmt.Errorf("unexpected message %q during the backend's SCRAM exchange", msg[0])
	}
	return string(body[4:]), nil
}

// passThroughEnv says whether BOREALIS_ROUTER_PASSTHROUGH=1 turns Config.PassThrough on
// for every router of the process (an operator's switch, as BOREALIS_ROUTER_IOURING=off).
func passThroughEnv() bool { return os.Getenv("BOREALIS_ROUTER_PASSTHROUGH") == "1" }

// dialFor connects to node addr for a session's new backend: at addr itself when
// Config.PassThrough is on and the session holds a key (the backend then authenticates with
// it, startBackend), else on the router's trusted path (Config.PrivateAddr).
func (r *Router) dialFor(addr string, k *passKey) (net.Conn, error) {
	if r.cfg.PrivateAddr != nil && !(r.cfg.PassThrough && k.held()) {
		addr = r.cfg.PrivateAddr(addr)
	}
	c, err := r.dialBackend(addr)
	if err == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
	}
	return c, err
}
