package hnsw

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// locker is what writers of a node's lists take: a sync.Mutex for a graph in the Go heap, a
// spinLock in the lock words of a mapped graph, which several processes change at once
// (PostgreSQL backends inserting into one index concurrently).
type locker interface {
	Lock()
	Unlock()
}

// lock is the lock writers of id's lists take, striped by id.
func (x *Index) lock(id uint32) locker {
	if x.sharedLocks != nil {
		return (*spinLock)(&x.sharedLocks[id&(lockStripes-1)])
	}
	return &x.locks[id&(lockStripes-1)]
}

var _ locker = (*sync.Mutex)(nil)

// spinLock is a mutex in memory shared between processes: a word taken by a compare-and-swap
// from 0 to 1. A holder changes one list (O(m) distances) and never blocks, so a waiter spins
// briefly, then yields, then sleeps in short steps. A holder that died while holding it (kill
// -9 restarts the whole PostgreSQL node, and the file it marked is rebuilt, so this is only a
// panic in a holder) would leave the word set for good: a waiter gives up after
// spinLockTimeout with a panic, which the engine turns into an error, and the caller
// retires the mapping.
type spinLock uint32

// spinLockTimeout bounds a wait for one list lock; holders keep it for microseconds.
const spinLockTimeout = 10 * time.Second

// ErrLockTimeout is the panic value of a wait for a mapped graph's list lock that never ended.
var ErrLockTimeout = fmt.Errorf("%w: a list lock of the mapped graph was held for %v", ErrCorrupt, spinLockTimeout)

func (l *spinLock) Lock() {
	if atomic.CompareAndSwapUint32((*uint32)(l), 0, 1) {
		return
	}
	l.lockSlow()
}

func (l *spinLock) lockSlow() {
	p := (*uint32)(l)
	var since time.Time
	for i := 0; ; i++ {
		if atomic.LoadUint32(p) == 0 && atomic.CompareAndSwapUint32(p, 0, 1) {
			return
		}
		switch {
		case i < 32:
		case i < 64:
			runtime.Gosched()
		default:
			if since.IsZero() {
				since = time.Now()
			} else if time.Since(since) > spinLockTimeout {
				panic(ErrLockTimeout)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}

func (l *spinLock) Unlock() { atomic.StoreUint32((*uint32)(l), 0) }
