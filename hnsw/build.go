package hnsw

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// AddBatch inserts vecs[i] under ids[i] using Options.Threads goroutines.
//
// Everything is validated before the first insert — vector lengths and
// values, ids already present, ids repeated within the batch, and the memory
// estimate — so on such an error nothing has been added. Inserts then run
// concurrently with per-node locks; with Threads = 1 they run in order and the
// graph is a deterministic function of (Seed, ids, vecs). An error during the
// inserts themselves (only possible when another goroutine adds the same id
// concurrently) is returned joined, after the rest of the batch is added.
func (x *Index) AddBatch(ids []uint32, vecs [][]float32) error {
	if len(ids) != len(vecs) {
		return fmt.Errorf("%w: %d ids for %d vectors", ErrInvalidOptions, len(ids), len(vecs))
	}
	if len(ids) == 0 {
		return nil
	}
	norms := make([]float64, len(vecs))
	var maxID uint32
	for i, v := range vecs {
		n2, err := x.checkVector(v)
		if err != nil {
			return fmt.Errorf("vector %d (id %d): %w", i, ids[i], err)
		}
		norms[i] = n2
		if ids[i] > MaxID {
			return fmt.Errorf("vector %d: %w: %d", i, ErrIDOutOfRange, ids[i])
		}
		maxID = max(maxID, ids[i])
	}
	if err := x.Reserve(int(maxID) + 1); err != nil {
		return err
	}
	if err := x.reserveCodes(vecs); err != nil {
		return err
	}
	seen := make([]uint64, (int(maxID)+64)/64)
	for i, id := range ids {
		if seen[id/64]&(1<<(id%64)) != 0 || x.stateOf(id) != 0 {
			return fmt.Errorf("vector %d: %w: id %d", i, ErrDuplicateID, id)
		}
		seen[id/64] |= 1 << (id % 64)
	}

	threads := min(x.threads(), len(ids))
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := func() {
		defer wg.Done()
		s := x.pool.get()
		defer x.pool.put(s)
		for {
			i := int(next.Add(1) - 1)
			if i >= len(ids) {
				return
			}
			x.grow.RLock()
			err := x.insertLocked(s, ids[i], vecs[i], norms[i])
			x.grow.RUnlock()
			for err == errArenaFull { // others' batches took the room reserveCodes made
				if err = x.growArena(compactWords(vecs[i])); err == nil {
					x.grow.RLock()
					err = x.insertLocked(s, ids[i], vecs[i], norms[i])
					x.grow.RUnlock()
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
	}
	wg.Add(threads)
	for range threads - 1 {
		go work()
	}
	work() // the calling goroutine is one of the workers
	wg.Wait()
	return errors.Join(errs...)
}
