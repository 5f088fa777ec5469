package cluster

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// MakeStall bounds making a node's data directory (initdb, or a reader's base backup) by
// progress, not by total time: the work is killed only when nothing under the directory has
// changed for this long. Under heavy CPU starvation initdb alone took longer than StartTimeout,
// and a fixed bound then killed it mid-way on every retry, so the cluster never came up.
const MakeStall = 2 * time.Minute

// untilStalled returns a context that ends with parent, or when nothing under dir has changed
// for stall: no file added, removed, grown, shrunk or rewritten (modification time), checked
// every `every`. A missing dir counts as a state like any other, so work that has not created
// it yet gets stall to do so. context.Cause names the directory and the stall.
func untilStalled(parent context.Context, dir string, stall, every time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		last, changed := treeState(dir), time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// The clock is read after the walk, not taken from the tick: a tick that waited
				// in the channel while this goroutine was starved is older than what the walk
				// saw, and dating a change by it cut the stall short (TestUntilStalled, load 35).
				s := treeState(dir)
				now := time.Now()
				if s != last {
					last, changed = s, now
				} else if now.Sub(changed) >= stall {
					cancel(fmt.Errorf("no progress in %s for %s (nothing in it changed)", dir, stall))
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// dirState sums what untilStalled compares: the count of entries, their total size and the
// latest modification time under a directory.
type dirState struct {
	entries int
	bytes   int64
	latest  time.Time
}

func treeState(dir string) dirState {
	var s dirState
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed under the walk, or a directory the control plane cannot read
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		s.entries++
		s.bytes += info.Size()
		if mt := info.ModTime(); mt.After(s.latest) {
			s.latest = mt
		}
		return nil
	})
	return s
}

// stallErr is err, or the reason ctx ended when that was a stall (runCtx reports only
// "context canceled").
func stallErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			return fmt.Errorf("%w: %v", err, cause)
		}
	}
	return err
}
