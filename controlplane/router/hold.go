package router

import (
	"sync"
	"sync/atomic"
	"time"
)

// gate holds new clients while closed: for pause/resume, stop, reboot and failover.
//
// A hold is one generation: released (clients go through), failed (the clients waiting on it
// get the failure at once, and a new generation holds the next ones), or refused (clients are
// turned away without waiting, for a stopped cluster). With a wake function set, the first
// client to wait on a generation calls it once: that is how a paused cluster resumes on connect.
type gate struct {
	mu     sync.Mutex
	held   bool
	refuse bool
	reason string
	gen    *holdGen
	wake   func()
	woken  bool

	waiting atomic.Int64
}

type holdGen struct {
	done    chan struct{}
	failure string
}

func (g *gate) holdLocked(reason string) {
	g.reason = reason
	g.refuse = false
	if !g.held {
		g.held = true
		g.gen = &holdGen{done: make(chan struct{})}
		g.woken = false
	}
}

func (g *gate) hold(reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.wake = nil
	g.holdLocked(reason)
}

// holdAndWake holds, and calls wake once when the first client waits.
func (g *gate) holdAndWake(reason string, wake func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holdLocked(reason)
	g.wake = wake
}

// refuseAll turns clients away at once with reason, until release or hold.
func (g *gate) refuseAll(reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holdLocked(reason)
	g.refuse = true
	g.wake = nil
	// Clients already waiting get the refusal too.
	g.gen.failure = reason
	close(g.gen.done)
	g.gen = &holdGen{done: make(chan struct{})}
}

// fail gives every client waiting now the failure, and keeps holding later ones (which wake
// the control plane again).
func (g *gate) fail(failure string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		return
	}
	g.gen.failure = failure
	close(g.gen.done)
	g.gen = &holdGen{done: make(chan struct{})}
	g.woken = false
}

// holding reports whether new clients are being held or refused.
func (g *gate) holding() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// refusing reports whether clients are being turned away (a stopped cluster).
func (g *gate) refusing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held && g.refuse
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held, g.refuse, g.wake = false, false, nil
		close(g.gen.done)
	}
}

// wait returns "" once the gate is open, or why not: the hold reason if it stays closed past
// timeout or done is closed, the failure if the hold failed, the refusal at once if refusing.
func (g *gate) wait(timeout time.Duration, done <-chan struct{}) string {
	g.mu.Lock()
	if !g.held {
		g.mu.Unlock()
		return ""
	}
	if g.refuse {
		reason := g.reason
		g.mu.Unlock()
		return reason
	}
	gen, reason := g.gen, g.reason
	var wake func()
	if g.wake != nil && !g.woken {
		g.woken, wake = true, g.wake
	}
	g.mu.Unlock()
	if wake != nil {
		go wake()
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-gen.done:
		return gen.failure
	case <-t.C:
		return reason
	case <-done:
		return reason
	}
}
