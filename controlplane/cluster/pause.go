package cluster

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// AutoPauseFloorEnv names the dev-only setting that lowers the smallest SecondsUntilAutoPause
// accepted, from Aurora's 300 s down to as little as 1 s, so tests and demos need not wait five
// minutes. Both the CLI and the control plane read it; production leaves it unset.
const AutoPauseFloorEnv = "BOREALIS_DEV_AUTO_PAUSE_FLOOR_SECONDS"

// AutoPauseFloorSeconds is the smallest SecondsUntilAutoPause accepted: 300, or the value of
// AutoPauseFloorEnv when it is an integer from 1 to 300.
func AutoPauseFloorSeconds() int {
	if v, err := strconv.Atoi(os.Getenv(AutoPauseFloorEnv)); err == nil && v >= 1 && v <= 300 {
		return v
	}
	return 300
}

// PauseObservation is what the control plane knows when deciding whether to pause a cluster.
type PauseObservation struct {
	Now time.Time
	// Status is the cluster's status; only an available cluster pauses.
	Status                string
	AutoPause             bool
	SecondsUntilAutoPause int
	// Connections are the client connections open on either endpoint, whatever their state: a
	// session idle in a transaction, or idle with no transaction, is a connection.
	Connections int64
	// HeldClients are clients waiting at the router's gate (they are connections too).
	HeldClients int64
	// LastActivity is when a client last connected to or disconnected from either endpoint,
	// or when the cluster last became available, whichever is later.
	LastActivity time.Time
}

// PauseDecision says whether to pause now and why (or why not), for events and logs.
type PauseDecision struct {
	Pause  bool
	Reason string
	// Remaining is how long until the cluster would pause if nothing happens; 0 when Pause or
	// when it will not pause at all.
	Remaining time.Duration
}

// DecidePause decides from observations alone, with no I/O: a cluster pauses when auto-pause
// is on, it is available, and no client has been connected to either endpoint for
// SecondsUntilAutoPause.
func DecidePause(o PauseObservation) PauseDecision {
	switch {
	case !o.AutoPause:
		return PauseDecision{Reason: "auto-pause is off"}
	case o.Status != StatusAvailable:
		return PauseDecision{Reason: "the cluster is " + o.Status}
	case o.Connections > 0 || o.HeldClients > 0:
		return PauseDecision{Reason: fmt.Sprintf("%d client connection(s) open", o.Connections+o.HeldClients)}
	}
	after := time.Duration(o.SecondsUntilAutoPause) * time.Second
	idle := o.Now.Sub(o.LastActivity)
	if idle < after {
		return PauseDecision{Reason: fmt.Sprintf("no connections for %s of %s", idle.Truncate(time.Second), after), Remaining: after - idle}
	}
	return PauseDecision{Pause: true, Reason: fmt.Sprintf("no connections for %s (SecondsUntilAutoPause %d)", idle.Truncate(time.Second), o.SecondsUntilAutoPause)}
}
