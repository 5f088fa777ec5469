package router

import (
	"sync"
	"time"
)

// gate holds new clients while closed. Later issues close it for pause/resume and failover.
type gate struct {
	mu     sync.Mutex
	held   bool
	reason string
	open   chan struct{}
}

func (g *gate) hold(reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reason = reason
	if !g.held {
		g.held = true
		g.open = make(chan struct{})
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held = false
		close(g.open)
	}
}

// wait returns "" once the gate is open, or the hold reason if it stays closed past timeout
// or done is closed.
func (g *gate) wait(timeout time.Duration, done <-chan struct{}) string {
	g.mu.Lock()
	if !g.held {
		g.mu.Unlock()
		return ""
	}
	open, reason := g.open, g.reason
	g.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-open:
		return ""
	case <-t.C:
		return reason
	case <-done:
		return reason
	}
}
