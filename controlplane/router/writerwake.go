package router

import "sync"

// BackendsChanged tells the router that Backends may name other nodes now (a failover
// promoted a new writer, a held writer was cleared): sessions waiting for a backend look again
// at once instead of at their next 100 ms poll. Safe from any goroutine; cheap when nobody
// waits. The warm pool closes the idle backends of nodes Backends no longer names and those
// of a promoted node opened while it was a standby (pool.go).
func (r *Router) BackendsChanged() {
	r.backendWake.broadcast()
	r.pool.prune(r.cfg.Backends.Writer(), r.cfg.Backends.Readers())
}

// wakeup is a broadcast: wait returns a channel closed by the next broadcast.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *wakeup) broadcast() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}
