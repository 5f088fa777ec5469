package failover

import (
	"strings"
	"testing"
	"time"
)

func TestSyncGuard(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	obs := func(s float64, streaming int, wait float64, wlsn, flush uint64) SyncObservation {
		return SyncObservation{At: at(s), Streaming: streaming, OldestWait: time.Duration(wait * float64(time.Second)), WriterLSN: wlsn, ReaderFlush: flush}
	}
	type step struct {
		o        SyncObservation
		state    string
		standbys bool
		event    string // substring; "" means no event expected
		promote  bool
	}
	cases := []struct {
		name     string
		fallback time.Duration
		steps    []step
	}{
		{"strict: commits wait, never degraded", 0, []step{
			{obs(0, 1, 0, 100, 100), SyncOK, true, "", true},
			{obs(1, 0, 1, 120, 100), SyncOK, true, "", true},
			{obs(3, 0, 3, 120, 100), SyncNoReader, true, "strict: commits wait", true},
			{obs(60, 0, 60, 120, 100), SyncNoReader, true, "", true},
			{obs(61, 1, 0, 130, 130), SyncOK, true, "streams again", true}}},
		{"strict: no reader streaming is reported even without a commit", 0, []step{
			{obs(0, 0, 0, 100, 100), SyncOK, true, "", true},
			{obs(2, 0, 0, 100, 100), SyncNoReader, true, "no reader has streamed", true}}},
		{"fallback: degrade, no promotion until a reader caught up", 5 * time.Second, []step{
			{obs(0, 1, 0, 100, 100), SyncOK, true, "", true},
			{obs(1, 0, 4.9, 120, 100), SyncOK, true, "", true},
			{obs(2, 0, 5, 120, 100), SyncDegraded, false, "falling back to asynchronous", false},
			{obs(30, 0, 0, 900, 100), SyncDegraded, false, "", false},
			{obs(31, 1, 0, 1000, 400), SyncCatchingUp, true, "flushed up to 0/3E8", false},
			{obs(32, 1, 0, 1100, 999), SyncCatchingUp, true, "", false},
			{obs(33, 1, 0, 1200, 1000), SyncOK, true, "promotion allowed again", true}}},
		{"fallback: starving again while catching up degrades again", 2 * time.Second, []step{
			{obs(0, 0, 2, 100, 50), SyncDegraded, false, "falling back", false},
			{obs(1, 1, 0, 200, 50), SyncCatchingUp, true, "streams again", false},
			{obs(4, 1, 2.5, 300, 60), SyncDegraded, false, "again", false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.fallback
			if limit == 0 {
				limit = 2 * time.Second
			}
			g := &SyncGuard{Fallback: tc.fallback, Limit: limit}
			for i, s := range tc.steps {
				d := g.Observe(s.o)
				if d.State != s.state || d.Standbys != s.standbys || (s.event == "") != (d.Event == "") || !strings.Contains(d.Event, s.event) {
					t.Fatalf("step %d: got %+v, want %s standbys %v event %q", i, d, s.state, s.standbys, s.event)
				}
				if ok, why := g.PromotionAllowed(); ok != s.promote || (!ok && !strings.Contains(why, "asynchronous mode to accept")) {
					t.Fatalf("step %d: promotion allowed %v (%s), want %v", i, ok, why, s.promote)
				}
			}
		})
	}
	g := &SyncGuard{Fallback: time.Second, Limit: time.Second}
	g.Resume(t0)
	if ok, _ := g.PromotionAllowed(); ok || g.State() != SyncDegraded {
		t.Fatal("a resumed degraded guard must not allow promotion")
	}
	if ValidateSyncFallback(0) != nil || ValidateSyncFallback(3600) != nil || ValidateSyncFallback(3601) == nil || ValidateSyncFallback(-1) == nil {
		t.Fatal("ValidateSyncFallback bounds")
	}
}
