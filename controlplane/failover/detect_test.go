package failover

import (
	"strings"
	"testing"
	"time"
)

func TestDetector(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ok := func(s float64) Observation {
		return Observation{At: at(s), Running: true, DataIntact: true, Probe: ProbeOK, Readers: 2, ReadersStreaming: 2}
	}
	hung := func(s float64, streaming int) Observation {
		return Observation{At: at(s), Running: true, DataIntact: true, Probe: ProbeFailed, ProbeError: "timeout", Readers: 2, ReadersStreaming: streaming}
	}
	exited := func(s float64) Observation { return Observation{At: at(s), DataIntact: true, Readers: 2} }
	withState := func(o Observation, st byte) Observation { o.ProcState = st; return o }
	alive := func(o Observation) Observation { o.SessionAlive = true; return o }
	late := func(o Observation, after float64) Observation {
		o.LateAnswer = time.Duration(after * float64(time.Second))
		return o
	}
	busy := func(s float64) Observation {
		o := ok(s)
		o.Probe, o.ProbeError = ProbeBusy, "the database system is starting up"
		return o
	}
	type step struct {
		obs    Observation
		want   Action
		reason string // substring of the reason, if not empty
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"healthy", []step{{ok(0), None, ""}, {ok(1), None, ""}}},
		{"hung writer, readers still streaming: full grace", []step{
			{ok(0), None, ""}, {hung(1, 2), None, "probes failing"}, {hung(6, 2), None, ""},
			{hung(10.9, 2), None, ""}, {hung(11, 2), Promote, "2 of 2 readers still hear"}}},
		{"hung writer, readers lost it too: half the grace", []step{
			{hung(1, 0), None, ""}, {hung(5.9, 0), None, ""}, {hung(6, 0), Promote, "no reader is receiving WAL"}}},
		{"a probe success resets the clock", []step{
			{hung(0, 2), None, ""}, {hung(9, 2), None, ""}, {ok(9.5), None, ""}, {hung(10, 2), None, ""}, {hung(19, 2), None, ""}, {hung(20, 2), Promote, ""}}},
		{"busy proves alive", []step{{busy(0), None, "refusing sessions"}, {busy(30), None, ""}}},
		{"kill -9, data intact: restart, then back", []step{
			{ok(0), None, ""}, {exited(1), Restart, "data is intact"}, {busy(2), None, "not accepting sessions yet"}, {ok(3), None, ""}}},
		{"kill -9 and restart never completes: promote after grace", []step{
			{exited(1), Restart, ""}, {exited(5), Restart, ""}, {busy(9), None, ""}, {busy(11), Promote, "not accepting sessions yet"}}},
		{"died and stays dead", []step{{exited(0), Restart, ""}, {exited(10), Promote, "exited and was not back"}}},
		{"restart in crash recovery is not halved by lost readers", []step{
			{exited(0), Restart, ""}, {hung(6, 0), None, ""}, {hung(10, 0), Promote, ""}}},
		{"data directory removed while running", []step{{ok(0), None, ""},
			{Observation{At: at(1), Running: true, Probe: ProbeOK}, Promote, "data directory"}}},
		{"data directory removed and dead", []step{{Observation{At: at(1)}, Promote, "data directory"}}},
		{"frozen postmaster (state T): half the grace, one probe enough", []step{
			{withState(hung(1, 2), 'T'), None, "probes failing"}, {withState(hung(5.9, 2), 'T'), None, ""},
			{withState(hung(6, 2), 'T'), Promote, "stopped (state T): frozen"}}},
		{"starved writer (state R or S), readers lost too: slow, AliveLimit", []step{
			{withState(hung(1, 0), 'R'), None, ""}, {withState(hung(11, 0), 'S'), None, "scheduled (state S): slow, not gone"},
			{withState(hung(30.9, 0), 'R'), None, ""}, {withState(hung(31, 0), 'R'), Promote, "scheduled (state R) but has answered nothing for 30s"}}},
		{"starved, then answers: never failed over", []step{
			{withState(hung(0, 2), 'R'), None, ""}, {withState(hung(20, 2), 'D'), None, ""}, {ok(21), None, ""}, {withState(hung(22, 2), 'S'), None, ""}}},
		{"a kept session that answers wins over state T (only the postmaster stopped)", []step{
			{alive(withState(hung(1, 2), 'T')), None, ""}, {alive(withState(hung(11, 2), 'T')), None, ""}, {alive(withState(hung(31, 2), 'T')), Promote, "kept open on it still answers"}}},
		{"new sessions slower than the probe timeout but answered late: never failed over", []step{
			{alive(withState(hung(0, 2), 'S')), None, ""}, {alive(withState(hung(20, 2), 'S')), None, ""},
			{late(alive(withState(hung(25, 2), 'S')), 24), None, "answers slowly: a new session took 24s"},
			{alive(withState(hung(29, 2), 'S')), None, ""}, {withState(hung(40, 0), 'R'), None, ""}, {alive(withState(hung(58.9, 2), 'S')), None, ""},
			{alive(withState(hung(59, 2), 'S')), Promote, "kept open on it still answers"}}},
		{"a late answer does not bring back an exited writer or its data", []step{
			{late(exited(0), 1), Restart, ""}, {late(exited(10), 1), Promote, "exited"},
			{late(Observation{At: at(11), Running: true, Probe: ProbeFailed}, 1), Promote, "data directory"}}},
		{"stale agent alone is only reported", []step{{func() Observation { o := ok(100); o.AgentSampledAt = at(50); return o }(), None, "heartbeat is 50s old"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Detector{Grace: 10 * time.Second}
			for i, s := range tc.steps {
				got := d.Observe(s.obs)
				if got.Action != s.want || !strings.Contains(got.Reason, s.reason) {
					t.Fatalf("step %d (%+v): got %s %q, want %s with %q", i, s.obs, got.Action, got.Reason, s.want, s.reason)
				}
				if got.Action == Promote && got.Since.IsZero() {
					t.Fatalf("step %d: promote without the failure's start", i)
				}
			}
		})
	}
}

func TestDetectorDowntimeStartsAtFirstFailure(t *testing.T) {
	d := &Detector{Grace: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	d.Observe(Observation{At: t0, Running: true, DataIntact: true, Probe: ProbeFailed})
	got := d.Observe(Observation{At: t0.Add(3 * time.Second), Running: true, DataIntact: true, Probe: ProbeFailed})
	if got.Action != Promote || !got.Since.Equal(t0) {
		t.Fatalf("%+v", got)
	}
	d.Reset()
	if got := d.Observe(Observation{At: t0.Add(4 * time.Second), Running: true, DataIntact: true, Probe: ProbeFailed}); got.Action != None || !got.Since.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("after reset: %+v", got)
	}
}

func TestDetectorJudgesAtTheProbesEnd(t *testing.T) {
	d := &Detector{Grace: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	hung := func(start, end float64) Observation {
		return Observation{At: t0.Add(time.Duration(start * float64(time.Second))), Ended: t0.Add(time.Duration(end * float64(time.Second))),
			Running: true, DataIntact: true, Probe: ProbeFailed, ProbeError: "timeout", Readers: 1, ReadersStreaming: 1}
	}
	if got := d.Observe(hung(0, 1)); got.Action != None {
		t.Fatalf("first failed probe: %+v", got)
	}
	// The second probe began 1.1 s after the first and gave up 2.1 s after it: the writer
	// has not answered for the whole grace period.
	if got := d.Observe(hung(1.1, 2.1)); got.Action != Promote || !got.Since.Equal(t0) {
		t.Fatalf("second failed probe: %+v", got)
	}
}

// TestDetectorMinFailures: a running writer is promoted away only after MinFailures failed
// probes in a row, even when one stalled probe alone spans the grace period; a success in
// between starts the count afresh; a failure that began with an exit is not counted.
func TestDetectorMinFailures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	probe := func(start, end float64, r ProbeResult) Observation {
		return Observation{At: sec(start), Ended: sec(end), Running: true, DataIntact: true, Probe: r, ProbeError: "timeout", Readers: 2, ReadersStreaming: 2}
	}
	exited := func(s float64) Observation { return Observation{At: sec(s), DataIntact: true, Readers: 2} }
	cases := []struct {
		name  string
		min   int
		steps []Observation
		want  []Action
	}{
		{"one stalled probe spanning the grace decides nothing", 3,
			[]Observation{probe(0, 5, ProbeFailed)}, []Action{None}},
		{"the third failure in a row promotes", 3,
			[]Observation{probe(0, 5, ProbeFailed), probe(5, 5.5, ProbeFailed), probe(5.5, 6, ProbeFailed)}, []Action{None, None, Promote}},
		{"enough failures but not the grace", 3,
			[]Observation{probe(0, 0.5, ProbeFailed), probe(0.5, 1, ProbeFailed), probe(1, 1.5, ProbeFailed), probe(1.5, 2, ProbeFailed)}, []Action{None, None, None, Promote}},
		{"a success in between starts afresh", 3,
			[]Observation{probe(0, 0.5, ProbeFailed), probe(0.5, 1, ProbeFailed), probe(1, 1.1, ProbeOK), probe(1.1, 2.5, ProbeFailed), probe(2.5, 3.5, ProbeFailed), probe(3.5, 4, ProbeFailed)},
			[]Action{None, None, None, None, None, Promote}},
		{"a busy answer does not count as a failure", 3,
			[]Observation{probe(0, 1, ProbeFailed), probe(1, 2, ProbeBusy), probe(2, 3, ProbeFailed), probe(3, 3.5, ProbeFailed)}, []Action{None, None, None, Promote}},
		{"an exit is certain: no count", 3,
			[]Observation{exited(0), exited(2.1)}, []Action{Restart, Promote}},
		{"a restart still starting up after an exit: no count", 3,
			[]Observation{exited(0), probe(1, 2.2, ProbeBusy)}, []Action{Restart, Promote}},
		{"zero means one", 0,
			[]Observation{probe(0, 2, ProbeFailed)}, []Action{Promote}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Detector{Grace: 2 * time.Second, MinFailures: tc.min}
			for i, o := range tc.steps {
				got := d.Observe(o)
				if got.Action != tc.want[i] {
					t.Fatalf("step %d (%+v): got %s %q, want %s", i, o, got.Action, got.Reason, tc.want[i])
				}
				if got.Action == Promote && !strings.Contains(got.Reason, "grace period") {
					t.Fatalf("step %d: reason %q", i, got.Reason)
				}
			}
		})
	}
}

// TestDetectorSessionAlive: new connections timing out while a kept session answers is a slow
// or stuck postmaster, not a frozen server: promoted only after AliveLimit, whatever the
// readers say; the moment the kept session stops answering too, the grace period counts from
// the first failure.
func TestDetectorSessionAlive(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	probe := func(start float64, alive bool, streaming int) Observation {
		return Observation{At: sec(start), Ended: sec(start + 0.5), Running: true, DataIntact: true, Probe: ProbeFailed, ProbeError: "timeout",
			Readers: 2, ReadersStreaming: streaming, SessionAlive: alive}
	}
	if got := AliveLimit(2 * time.Second); got != 12*time.Second {
		t.Fatalf("AliveLimit(2s) = %s", got)
	}
	if got := AliveLimit(10 * time.Second); got != 30*time.Second {
		t.Fatalf("AliveLimit(10s) = %s", got)
	}
	cases := []struct {
		name  string
		steps []Observation
		want  []Action
		last  string
	}{
		{"slow new connections, kept session answers: not at the grace period",
			[]Observation{probe(0, true, 2), probe(0.5, true, 2), probe(1, true, 2), probe(1.5, true, 2), probe(3, true, 2), probe(6, true, 0)},
			[]Action{None, None, None, None, None, None}, ""},
		{"... but at the alive limit",
			[]Observation{probe(0, true, 2), probe(0.5, true, 2), probe(1, true, 2), probe(11.5, true, 2)},
			[]Action{None, None, None, Promote}, "still answers"},
		{"the kept session stops answering too: the grace period from the first failure",
			[]Observation{probe(0, true, 2), probe(0.5, true, 2), probe(1, false, 2), probe(1.5, false, 2)},
			[]Action{None, None, None, Promote}, "2 of 2 readers"},
		{"frozen: nothing answers",
			[]Observation{probe(0, false, 2), probe(0.5, false, 2), probe(1, false, 2), probe(1.5, false, 2)},
			[]Action{None, None, None, Promote}, "probes failing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Detector{Grace: 2 * time.Second, MinFailures: 3}
			var got Decision
			for i, o := range tc.steps {
				got = d.Observe(o)
				if got.Action != tc.want[i] {
					t.Fatalf("step %d (%+v): got %s %q, want %s", i, o, got.Action, got.Reason, tc.want[i])
				}
			}
			if !strings.Contains(got.Reason, tc.last) {
				t.Fatalf("last reason %q, want %q in it", got.Reason, tc.last)
			}
		})
	}
}
