package router

import "time"

// HoldAndWake holds new clients like Hold and calls wake (in its own goroutine) when the first
// one arrives: a paused cluster resumes on connect this way. Release lets them through; Fail
// gives them an error and keeps holding, so the next client wakes the control plane again.
// The warm pool's idle backends are closed (pool.go): the nodes are about to stop.
func (r *Router) HoldAndWake(reason string, wake func()) {
	r.gate.holdAndWake(reason, wake)
	r.pool.drain("")
}

// Fail answers every client held now with SQLSTATE 57P03 and failure (which should name the
// cause), and keeps holding later ones.
func (r *Router) Fail(failure string) { r.gate.fail(failure) }

// Refuse turns new clients away at once with SQLSTATE 57P03 and reason (a stopped cluster),
// until Release or Hold. The warm pool's idle backends are closed (pool.go).
func (r *Router) Refuse(reason string) {
	r.gate.refuseAll(reason)
	r.pool.drain("")
}

// HeldClients is the number of clients waiting at the gate now.
func (r *Router) HeldClients() int64 { return r.gate.waiting.Load() }

// LastActivity is when a client last connected or disconnected on either endpoint (the zero
// time before the first).
func (r *Router) LastActivity() time.Time {
	if ns := r.lastActivity.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (r *Router) touch() { r.lastActivity.Store(time.Now().UnixNano()) }
