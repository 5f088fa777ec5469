package failover

import (
	"strings"
	"testing"
	"time"
)

func TestFollowWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	streaming := func(s float64, tli, writer uint32) FollowObservation {
		return FollowObservation{At: at(s), Status: "streaming", ReceivedTimeline: tli, WriterTimeline: writer}
	}
	none := func(s float64) FollowObservation { return FollowObservation{At: at(s), WriterTimeline: 3} }
	type step struct {
		o      FollowObservation
		reset  bool
		repair bool
		why    string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"streaming the writer's timeline is following", []step{
			{o: streaming(0, 3, 3)}, {o: streaming(100, 3, 3)},
		}},
		{"unknown writer timeline: streaming is enough", []step{
			{o: streaming(0, 2, 0)}, {o: streaming(100, 2, 0)},
		}},
		{"no WAL receiver for the bound", []step{
			{o: none(0)}, {o: none(14.9)}, {o: none(15), repair: true, why: "no WAL receiver"},
		}},
		{"streaming an old timeline (forked past it) counts as not following", []step{
			{o: streaming(0, 2, 3)}, {o: streaming(16, 2, 3), repair: true, why: "streaming timeline 2, the writer is on timeline 3"},
		}},
		{"a receiver stuck in waiting", []step{
			{o: FollowObservation{At: at(0), Status: "waiting", ReceivedTimeline: 2, WriterTimeline: 3}},
			{o: FollowObservation{At: at(20), Status: "waiting", ReceivedTimeline: 2, WriterTimeline: 3}, repair: true, why: "WAL receiver waiting (on timeline 2)"},
		}},
		{"a short gap (restart, failover) is not repaired", []step{
			{o: streaming(0, 3, 3)}, {o: none(1)}, {o: none(10)}, {o: streaming(12, 4, 4)}, {o: none(13)}, {o: none(27)},
		}},
		{"a reset (writer failing, reader down) restarts the clock", []step{
			{o: none(0)}, {o: none(10)}, {reset: true}, {o: none(20)}, {o: none(34)}, {o: none(35), repair: true},
		}},
		{"repairs back off: 15 s, then 30 s, until it follows a full bound", []step{
			{o: none(0)}, {o: none(15), repair: true},
			{o: none(16)}, {o: none(45)}, {o: none(46), repair: true},
			{o: none(47)}, {o: none(100)}, {o: none(106)}, {o: none(107), repair: true}, // 60 s
			{o: streaming(110, 3, 3)}, {o: none(111)}, // followed 1 s only: still backed off
			{o: none(230)}, {o: none(231), repair: true}, // 120 s from 111
			{o: streaming(240, 3, 3)}, {o: streaming(255, 3, 3)}, // a full bound following
			{o: none(256)}, {o: none(271), repair: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w FollowWatch
			for i, s := range tc.steps {
				if s.reset {
					w.Reset()
					continue
				}
				repair, why := w.Observe(s.o)
				if repair != s.repair {
					t.Fatalf("step %d (%+v): repair %v, want %v (%s)", i, s.o, repair, s.repair, why)
				}
				if repair && !strings.Contains(why, s.why) {
					t.Fatalf("step %d: why %q, want it to contain %q", i, why, s.why)
				}
			}
		})
	}
}
