package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
)

// waitTimeout bounds --wait: long enough for a start or reboot on a loaded machine, short
// enough that a script does not hang on a cluster that will never get there.
const waitTimeout = 10 * time.Minute

// waitStatus polls the cluster until it and all its members are in want, printing each change
// of status (the cluster's and its members') to progress as it happens, like `aws rds wait` with
// a progress line. It fails, naming what to look at, when the cluster ends up failed or the
// timeout passes. body is the call's answer (the first state) and gets the last one.
func waitStatus(c *apiClient, name, want string, body *api.ClusterBody, progress io.Writer, timeout time.Duration) error {
	start := time.Now()
	deadline := start.Add(timeout)
	last := ""
	for {
		d := body.DBCluster
		line := statusLine(d)
		if line != last {
			fmt.Fprintf(progress, "%6.1fs  %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		if reached(d, want) {
			return nil
		}
		switch d.Status {
		case cluster.StatusFailed:
			return fmt.Errorf("cluster %s failed while waiting for %s; see `borealis events --cluster %s`", name, want, name)
		case cluster.StatusIncompatibleNetwork:
			// The router keeps retrying the port, but nobody should wait minutes for that.
			return fmt.Errorf("cluster %s is %s: an endpoint port (%d or %d) could not be opened, most likely it is in use; free it (the router keeps retrying), or delete the cluster and create it with other --port/--reader-port; see `borealis events --cluster %s`",
				name, d.Status, d.Port, d.ReaderPort, name)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster %s is still %s after %s (waiting for %s); see `borealis events --cluster %s`", name, d.Status, timeout, want, name)
		}
		time.Sleep(500 * time.Millisecond)
		if err := c.call("GET", "/v1/clusters/"+url.PathEscape(name), nil, body); err != nil {
			return err
		}
	}
}

// reached: the cluster is in want, and so is every member (a stopped cluster's members are
// stopped; a rebooted member is available again).
func reached(d cluster.Description, want string) bool {
	if d.Status != want {
		return false
	}
	for _, m := range d.DBClusterMembers {
		if m.Status != want {
			return false
		}
	}
	return true
}

// statusLine is the cluster's status and its members', e.g. "borealis stopping: borealis-1
// stopped, borealis-2 stopping".
func statusLine(d cluster.Description) string {
	var ms []string
	for _, m := range d.DBClusterMembers {
		ms = append(ms, m.DBInstanceIdentifier+" "+m.Status)
	}
	return fmt.Sprintf("%s %s: %s", d.DBClusterIdentifier, d.Status, strings.Join(ms, ", "))
}
