package failover

import (
	"fmt"
	"time"
)

// DefaultGrace is the failover grace period: how long a writer may fail its probes, or stay
// down after dying, before a reader is promoted.
const DefaultGrace = 10 * time.Second

// MinGrace and MaxGrace bound the setting.
const (
	MinGrace = 1 * time.Second
	MaxGrace = 300 * time.Second
)

// ProbeResult is the outcome of one connect-and-query probe of the writer (a new connection
// each time, so a postmaster that no longer forks backends fails it even while old sessions
// still answer).
type ProbeResult int

const (
	// ProbeNone: no probe ran (the process is not running).
	ProbeNone ProbeResult = iota
	// ProbeOK: connected and SELECT 1 answered within the timeout.
	ProbeOK
	// ProbeBusy: the server answered, refusing the session (too many connections, starting
	// up, shutting down): it is alive, so the probe neither starts nor resets the clock.
	ProbeBusy
	// ProbeFailed: refused, timed out, or broke.
	ProbeFailed
)

// Observation is what the cluster saw of its writer at one instant.
type Observation struct {
	// At is when the observation began (a failure starts there); Ended, if set, when its
	// probes gave up (the failure has lasted at least until then).
	At, Ended time.Time
	// Running: the postmaster process exists (it may be stopped).
	Running bool
	// DataIntact: the data directory still holds PG_VERSION and global/pg_control.
	DataIntact bool
	Probe      ProbeResult
	ProbeError string
	// AgentSampledAt is the node agent's last heartbeat read through the probe (zero if none).
	AgentSampledAt time.Time
	// Readers is how many readers there are, ReadersStreaming how many of them have a WAL
	// receiver that heard from the writer within the grace period.
	Readers, ReadersStreaming int
	// SessionAlive: a session kept open on the writer answered a query within the probe
	// timeout. The server runs (it is neither frozen nor dead), even if new connections time
	// out: overloaded, or its postmaster takes no new sessions.
	SessionAlive bool
	// ProcState is the postmaster's state letter in /proc/<pid>/stat at the end of the
	// observation (0 when unknown). 'T' or 't' (stopped, traced) means the server is frozen: it
	// will answer nothing until someone resumes it. 'R', 'S' or 'D' mean it runs or waits: a
	// probe that times out then says it is slow (starved of CPU or disk), not gone.
	ProcState byte
	// LateAnswer, if not zero, is how long a probe of the current failure took to be answered
	// after outliving the probe timeout (the prober lets one probe of a failure go on, up to
	// AliveLimit). The server took a new session and answered its query, only slower than the
	// probe timeout: a writer starved of CPU does that (on a loaded machine a backend's fork and
	// start-up, or the prober itself, can wait longer than the timeout for a CPU), a writer whose
	// postmaster hangs, or a frozen one, does not.
	LateAnswer time.Duration
}

// Frozen reports that the postmaster is stopped (SIGSTOP) or traced.
func (o Observation) Frozen() bool { return o.ProcState == 'T' || o.ProcState == 't' }

// Scheduled reports that the postmaster runs, sleeps or waits on the disk: alive, maybe slow.
func (o Observation) Scheduled() bool {
	return o.ProcState == 'R' || o.ProcState == 'S' || o.ProcState == 'D'
}

// AliveLimit is how long new connections may keep failing while a kept session still answers
// before the writer is promoted away: three grace periods, and at least the grace period plus
// 10 s. On a loaded machine new connections can take longer than the probe timeout for a
// while; promoting away a writer that is only slow would lose the asynchronous mode's lag for
// nothing, while one whose postmaster really hangs is still replaced.
func AliveLimit(grace time.Duration) time.Duration {
	return max(3*grace, grace+10*time.Second)
}

// Action is what the detector asks the cluster to do.
type Action int

const (
	// None: the writer is healthy, or a failure is still within its grace period.
	None Action = iota
	// Restart: the process exited and its data is intact; start it again in place.
	Restart
	// Promote: fence the writer and promote a reader.
	Promote
)

func (a Action) String() string {
	return [...]string{"none", "restart", "promote"}[a]
}

// Decision is the detector's answer to one observation.
type Decision struct {
	Action Action
	// Reason says why, in words fit for an event.
	Reason string
	// Since is when the current failure was first seen (zero when healthy): the start of the
	// downtime.
	Since time.Time
}

// Detector turns a stream of observations of one writer into decisions. The rules:
//
//   - The data directory gone or unusable: promote at once (restarting cannot help).
//   - The process exited, data intact: restart in place (fast, loses nothing); if it is still
//     not answering probes once the grace period has passed since the exit, promote.
//   - The process runs but probes fail (time out, refused): suspect. While a session kept open on
//     it still answers (SessionAlive), it is slow or its postmaster is stuck, not frozen: promote
//     only once that has lasted AliveLimit. Otherwise promote once probes have
//     failed for the whole grace period, and at least MinFailures of them in a row (so that
//     one probe stalled on a loaded machine, or a prober that was itself not scheduled for a
//     while, never decides alone); after half of the grace period already when no reader's WAL
//     receiver has heard from the writer either (two independent paths agree it is gone). A
//     probe that the server answers with a refusal (too many connections, starting up) proves
//     it alive.
//   - A probe that succeeds clears everything, and so does a late answer (LateAnswer): a probe
//     that outlived its timeout and was answered within AliveLimit shows a writer that still
//     takes sessions, only slowly. Promoting away a healthy writer because the machine is short
//     of CPU would lose the asynchronous mode's lag, or stop a synchronous cluster's writes,
//     for a new writer on the same starved machine. A stale node-agent heartbeat alone is
//     reported in the reason but never causes a failover: the agent is not on the data path.
//
// The zero Detector is unusable; set Grace.
type Detector struct {
	Grace time.Duration
	// MinFailures is how many consecutive failed probes a running writer needs before it is
	// promoted away, whatever the time (0 or 1: one is enough). It does not apply to a failure
	// that began with the process exiting, which is certain.
	MinFailures int

	since    time.Time // first failed observation of the current failure; zero when healthy
	exited   bool      // the current failure began with the process exiting
	failures int       // consecutive failed probes of the current failure
}

// Observe takes one observation and returns the action it calls for.
func (d *Detector) Observe(o Observation) Decision {
	if !o.DataIntact {
		d.begin(o.At, !o.Running)
		return Decision{Action: Promote, Since: d.since, Reason: "the writer's data directory is missing or unusable"}
	}
	if !o.Running {
		d.begin(o.At, true)
		if down := o.At.Sub(d.since); down >= d.Grace {
			return Decision{Action: Promote, Since: d.since,
				Reason: fmt.Sprintf("the writer exited and was not back after the %s grace period (down %s)", d.Grace, down.Round(100*time.Millisecond))}
		}
		return Decision{Action: Restart, Since: d.since, Reason: "the writer process exited; its data is intact"}
	}
	if o.LateAnswer > 0 && o.Probe != ProbeOK {
		d.Reset()
		return Decision{Action: None, Reason: fmt.Sprintf("writer answers slowly: a new session took %s, longer than the probe timeout", o.LateAnswer.Round(10*time.Millisecond))}
	}
	switch o.Probe {
	case ProbeOK:
		reason := ""
		if !o.AgentSampledAt.IsZero() && o.At.Sub(o.AgentSampledAt) > d.Grace {
			reason = fmt.Sprintf("writer answers, but the node agent's heartbeat is %s old", o.At.Sub(o.AgentSampledAt).Round(time.Second))
		}
		d.Reset()
		return Decision{Action: None, Reason: reason}
	case ProbeBusy, ProbeNone:
		if d.since.IsZero() {
			return Decision{Action: None, Reason: "writer alive but refusing sessions: " + o.ProbeError}
		}
		// A restarted writer still in crash recovery, or one refusing sessions: the clock of
		// the current failure keeps running.
		return d.judge(o, "writer is not accepting sessions yet: "+o.ProbeError)
	}
	d.begin(o.At, false)
	d.failures++
	return d.judge(o, "writer probes failing: "+o.ProbeError)
}

func (d *Detector) judge(o Observation, what string) Decision {
	end := o.At
	if o.Ended.After(end) {
		end = o.Ended
	}
	down := end.Sub(d.since)
	limit := d.Grace
	readersLost := o.Readers > 0 && o.ReadersStreaming == 0
	alive := o.SessionAlive && !d.exited
	// The kernel's word on the postmaster, when the process runs: frozen is certain (no
	// scheduling accident makes a process 'T'), scheduled means starved at worst.
	frozen := o.Frozen() && !d.exited && !alive
	slow := o.Scheduled() && !d.exited && !alive
	minFailures := d.MinFailures
	switch {
	case alive:
		limit = AliveLimit(d.Grace)
	case frozen:
		limit, minFailures = d.Grace/2, 1
	case slow:
		limit = AliveLimit(d.Grace)
	case readersLost && !d.exited:
		limit = d.Grace / 2
	}
	if down < limit || (!d.exited && d.failures < minFailures) {
		if slow && down >= d.Grace {
			what += fmt.Sprintf("; its postmaster is scheduled (state %c): slow, not gone, so it gets %s", o.ProcState, AliveLimit(d.Grace))
		}
		return Decision{Action: None, Since: d.since, Reason: what}
	}
	reason := fmt.Sprintf("%s for %s (grace period %s)", what, down.Round(100*time.Millisecond), d.Grace)
	if !d.exited && d.failures > 1 {
		reason = fmt.Sprintf("%s for %s, %d probes in a row (grace period %s)", what, down.Round(100*time.Millisecond), d.failures, d.Grace)
	}
	switch {
	case alive:
		reason += fmt.Sprintf("; a session kept open on it still answers, but it has taken no new session for %s (the limit while it answers)", AliveLimit(d.Grace))
	case frozen:
		reason += "; its postmaster is stopped (state T): frozen"
	case slow:
		reason += fmt.Sprintf("; its postmaster is scheduled (state %c) but has answered nothing for %s (the limit while it runs)", o.ProcState, AliveLimit(d.Grace))
	case readersLost:
		reason += "; no reader is receiving WAL from it either"
	case o.Readers > 0:
		reason += fmt.Sprintf("; %d of %d readers still hear its WAL sender, but it takes no new sessions", o.ReadersStreaming, o.Readers)
	}
	return Decision{Action: Promote, Since: d.since, Reason: reason}
}

func (d *Detector) begin(at time.Time, exited bool) {
	if d.since.IsZero() {
		d.since, d.exited = at, exited
	}
}

// Since is when the current failure was first seen (zero when healthy).
func (d *Detector) Since() time.Time { return d.since }

// Reset forgets the current failure (after a promotion or a clean restart).
func (d *Detector) Reset() { d.since, d.exited, d.failures = time.Time{}, false, 0 }
