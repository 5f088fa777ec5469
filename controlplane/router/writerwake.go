package router

import "sync"

// BackendsChanged tells the router that Backends may name other nodes now (a failover
// promoted a new writer, a held writer was cleared): sessions waiting for a backend look again
// at once instead of at their next 100 ms poll. Safe from any goroutine; cheap when nobody
// waits. The warm pool's idle backends are closed (pool.go): a promoted node's would still
// report in_hot_standby on, and a fenced one's are gone.
func (r *Router) BackendsChanged() {
	r.backendWake.broadcast()
	r.pool.drain("")
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
