package router

import (
	"crypto/rand"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelKey is a BackendKeyData as the router hands it to a client.
type cancelKey struct {
	pid    uint32
	secret [4]byte
}

// issueKey records the backend's key for s and returns the BackendKeyData message to send
// the client instead, carrying a router-made key that maps back to s.
func (r *Router) issueKey(s *session, backendPID uint32, backendSecret []byte) ([]byte, error) {
	var key cancelKey
	key.pid = r.nextPID.Add(1)
	if _, err := rand.Read(key.secret[:]); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if s.key != (cancelKey{}) {
		delete(r.byKey, s.key)
	}
	s.key = key
	s.backendPID = backendPID
	s.backendSecret = append([]byte(nil), backendSecret...)
	r.byKey[key] = s
	r.mu.Unlock()
	return (&pgproto3.BackendKeyData{ProcessID: key.pid, SecretKey: key.secret[:]}).Encode(nil)
}

// forwardCancel sends the backend's own CancelRequest for the session the client's key names.
// Unknown keys are ignored silently, as PostgreSQL does, so keys cannot be probed.
func (r *Router) forwardCancel(m *pgproto3.CancelRequest) {
	if len(m.SecretKey) != 4 {
		return
	}
	var key cancelKey
	key.pid = m.ProcessID
	copy(key.secret[:], m.SecretKey)
	r.mu.Lock()
	s := r.byKey[key]
	var addr string
	var req pgproto3.CancelRequest
	if s != nil {
		addr = s.backendAddr
		req = pgproto3.CancelRequest{ProcessID: s.backendPID, SecretKey: s.backendSecret}
	}
	r.mu.Unlock()
	if s == nil {
		return
	}
	buf, err := req.Encode(nil)
	if err != nil {
		return
	}
	c, err := r.dialBackend(addr)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(r.cfg.DialTimeout))
	if _, err := c.Write(buf); err != nil {
		return
	}
	// PostgreSQL closes the socket when it has acted; waiting for that keeps the order
	// "cancel delivered, then the client's cancel connection closes".
	var one [1]byte
	_, _ = c.Read(one[:])
}
