package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// `cluster modify-current-capacity`: bad flags exit 2 before any call; through a running
// control plane a valid change is accepted (aws rds JSON shape) and applied, an out-of-range
// one exits 1 with the API's message.
func TestModifyCurrentCapacityCLI(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"cluster", "modify-current-capacity", "--capacity", "2"}, "--name is required"},
		{[]string{"cluster", "modify-current-capacity", "--name", "x"}, "--capacity is required"},
		{[]string{"cluster", "modify-current-capacity", "--name", "x", "--capacity", "1.3"}, "--capacity: 1.3 ACU is not allowed"},
		{[]string{"cluster", "modify-current-capacity", "--name", "x", "--capacity", "2", "--seconds-before-timeout", "5"}, "--seconds-before-timeout: 5 is out of range"},
		{[]string{"cluster", "modify-current-capacity", "--name", "x", "--capacity", "2", "--timeout-action", "Maybe"}, "--timeout-action"},
	} {
		code, _, errOut := cli(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.msg)
		}
	}

	pgtest.RequireInstalled(t)
	home := newHome(t)
	ports := freePorts(t, 1)
	startServe(t, home, fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if code, _, errOut := cli(t, "cluster", "create", "--name", "grow", "--readers", "0", "--max-capacity", "2", "--wait", "--home", home); code != 0 {
		t.Fatalf("cluster create: exit %d: %s", code, errOut)
	}
	code, out, errOut := cli(t, "cluster", "modify-current-capacity", "grow", "--capacity", "1.5", "--home", home, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got cluster.CapacityOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.PendingCapacity != 1.5 || got.CurrentCapacity != 1 ||
		got.DBClusterIdentifier != "grow" || got.TimeoutAction != cluster.RollbackCapacityChange || got.SecondsBeforeTimeout != 300 {
		t.Fatalf("answer %+v (%v): %s", got, err, out)
	}
	deadline := time.Now().Add(time.Minute)
	for describeJSON(t, home, "grow").DBClusters[0].Capacity != 1.5 {
		if time.Now().After(deadline) {
			t.Fatalf("capacity never became 1.5: %+v", describeJSON(t, home, "grow"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, _, errOut = cli(t, "cluster", "modify-current-capacity", "grow", "--capacity", "4", "--home", home)
	if code != 1 || !strings.Contains(errOut, "outside the cluster's range 1-2 ACU") {
		t.Fatalf("out of range: exit %d, %s", code, errOut)
	}
	code, out, _ = cli(t, "events", "--cluster", "grow", "--home", home)
	if code != 0 || !strings.Contains(out, "Scaling DB cluster from 1 capacity units to 1.5 capacity units for this reason: The customer initiated the scaling") {
		t.Fatalf("events:\n%s", out)
	}
}
