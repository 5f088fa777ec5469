package router

import (
	"testing"
	"time"
)

func TestBackendsChangedWakesWaiters(t *testing.T) {
	var w wakeup
	w.broadcast() // nobody waits: nothing to do, nothing kept
	a, b := w.wait(), w.wait()
	if a != b {
		t.Fatal("two waiters before one broadcast must share the channel")
	}
	select {
	case <-a:
		t.Fatal("woken before any broadcast")
	default:
	}
	w.broadcast()
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter was not woken by the broadcast")
		}
	}
	select {
	case <-w.wait():
		t.Fatal("a wait begun after the broadcast must wait for the next one")
	default:
	}
}
