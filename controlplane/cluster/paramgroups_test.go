package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/paramgroup"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// showOn reads settings straight from one node (pg_settings.setting: base units, no suffix).
func showOn(t *testing.T, port int, names ...string) map[string]string {
	t.Helper()
	c := connectTo(t, fmt.Sprintf("127.0.0.1:%d", port))
	defer c.Close(context.Background())
	out := map[string]string{}
	for _, n := range names {
		var v string
		if err := c.QueryRow(context.Background(), "SELECT setting FROM pg_settings WHERE name = $1", n).Scan(&v); err != nil {
			t.Fatalf("reading %s on port %d: %v", n, port, err)
		}
		out[n] = v
	}
	return out
}

func waitInSync(t *testing.T, m *Manager, name string) Description {
	t.Helper()
	var d Description
	waitFor(t, "every member in-sync with its parameter group", 3*time.Minute, func() bool {
		d = m.mustDescribe(t, name)
		for _, mb := range d.DBClusterMembers {
			if mb.DBClusterParameterGroupStatus != "in-sync" || mb.Status != StatusAvailable {
				return false
			}
		}
		return d.Status == StatusAvailable
	})
	return d
}

// TestParameterGroupsOnRealNodes: a custom group given at create time is on both nodes from
// the start; a dynamic change reloads every node (checked with pg_settings on each); a static
// one goes through a forced capacity change on each node (an idle session through the endpoint
// is moved, not broken); bad changes and deleting a group in use change nothing; the defaults the
// catalogue lists are PostgreSQL's own.
func TestParameterGroupsOnRealNodes(t *testing.T) {
	pgtest.RequireInstalled(t)
	t.Setenv(AutoPauseFloorEnv, "3")
	m := newManager(t, newHome(t))
	gs := m.ParamGroups()
	if _, err := gs.Create("verbose", "", "verbose logging"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ModifyParamGroup("verbose", []paramgroup.Change{{ParameterName: "log_lock_waits", ParameterValue: "on"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "pg", Readers: 1, DBClusterParameterGroupName: "ghost"}); err == nil || !strings.Contains(err.Error(), `"ghost" does not exist`) {
		t.Fatalf("create with a missing group: %v", err)
	}
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "pg", Readers: 1, DBClusterParameterGroupName: "verbose"}); err != nil {
		t.Fatal(err)
	}
	d := waitInSync(t, m, "pg")
	if d.DBClusterParameterGroup != "verbose" {
		t.Fatalf("group: %q", d.DBClusterParameterGroup)
	}
	ports := []int{d.DBClusterMembers[0].Port, d.DBClusterMembers[1].Port}
	for _, p := range ports {
		got := showOn(t, p, "log_lock_waits", "log_connections", "log_disconnections", "log_hostname", "log_statement")
		want := map[string]string{"log_lock_waits": "on", "log_connections": "on", "log_disconnections": "on", "log_hostname": "off", "log_statement": "none"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("port %d: %v, want %v", p, got, want)
		}
	}

	t.Run("DefaultsArePostgresDefaults", func(t *testing.T) {
		c := connectTo(t, fmt.Sprintf("127.0.0.1:%d", ports[0]))
		for _, p := range paramgroup.Catalog() {
			if !p.Modifiable() {
				continue
			}
			var boot string
			if err := c.QueryRow(context.Background(), "SELECT boot_val FROM pg_settings WHERE name = $1", p.Name).Scan(&boot); err != nil {
				t.Fatalf("%s: %v", p.Name, err)
			}
			if boot != p.Default {
				t.Errorf("%s: catalogue default %q, PostgreSQL's %q", p.Name, p.Default, boot)
			}
		}
	})

	t.Run("DynamicReloadsEveryNode", func(t *testing.T) {
		pids := []int{d.DBClusterMembers[0].PID, d.DBClusterMembers[1].PID}
		after := lastSeq(t, m)
		if _, err := m.ModifyParamGroup("verbose", []paramgroup.Change{{ParameterName: "log_statement", ParameterValue: "all"},
			{ParameterName: "log_min_duration_statement", ParameterValue: "250"}}); err != nil {
			t.Fatal(err)
		}
		d := waitInSync(t, m, "pg")
		for i, p := range ports {
			got := showOn(t, p, "log_statement", "log_min_duration_statement")
			if got["log_statement"] != "all" || got["log_min_duration_statement"] != "250" {
				t.Fatalf("port %d: %v", p, got)
			}
			if d.DBClusterMembers[i].PID != pids[i] {
				t.Fatalf("a dynamic change restarted %s", d.DBClusterMembers[i].DBInstanceIdentifier)
			}
		}
		evs, _ := m.Events("pg", 0)
		applied := 0
		for _, e := range evs {
			if e.Seq > after && e.Type == "member.parameters-applied" {
				applied++
				if !strings.Contains(e.Message, "log_statement=all (dynamic, reloaded)") {
					t.Errorf("event: %s", e.Message)
				}
			}
		}
		if applied != 2 {
			t.Fatalf("%d parameters-applied events, want one per node", applied)
		}
	})

	t.Run("BadInputChangesNothing", func(t *testing.T) {
		var ie *paramgroup.InvalidError
		var se *paramgroup.StateError
		before, _ := gs.UserValues("verbose")
		for _, bad := range [][]paramgroup.Change{
			{{ParameterName: "log_statement", ParameterValue: "none"}, {ParameterName: "shared_buffers", ParameterValue: "2GB"}},
			{{ParameterName: "log_statement", ParameterValue: "none"}, {ParameterName: "log_hostname", ParameterValue: "on"}},
			{{ParameterName: "log_statement", ParameterValue: "none"}, {ParameterName: "log_temp_files", ParameterValue: "big"}},
		} {
			if _, err := m.ModifyParamGroup("verbose", bad); !errors.As(err, &ie) {
				t.Fatalf("%v: %v", bad, err)
			}
		}
		if _, err := m.ModifyParamGroup(paramgroup.DefaultGroup, []paramgroup.Change{{ParameterName: "log_statement", ParameterValue: "ddl"}}); !errors.As(err, &se) {
			t.Fatalf("default group: %v", err)
		}
		if err := m.DeleteParamGroup("verbose"); !errors.As(err, &se) || !strings.Contains(err.Error(), "pg") {
			t.Fatalf("delete in use: %v", err)
		}
		after, _ := gs.UserValues("verbose")
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Fatalf("group changed: %v -> %v", before, after)
		}
		if got := showOn(t, ports[0], "log_statement")["log_statement"]; got != "all" {
			t.Fatalf("node changed: log_statement=%s", got)
		}
	})

	t.Run("StaticThroughForcedCapacityChange", func(t *testing.T) {
		// An idle session through the writer endpoint must survive the restart (moved).
		idle := connectTo(t, fmt.Sprintf("127.0.0.1:%d", d.Port))
		var pidBefore int
		if err := idle.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pidBefore); err != nil {
			t.Fatal(err)
		}
		after := lastSeq(t, m)
		if _, err := m.ModifyParamGroup("verbose", []paramgroup.Change{{ParameterName: "track_commit_timestamp", ParameterValue: "on"}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "forced capacity changes", 3*time.Minute, func() bool { return hasEvent(t, m, "pg", "pg-1", "capacity.changed", after) })
		waitInSync(t, m, "pg")
		for _, p := range ports {
			if got := showOn(t, p, "track_commit_timestamp")["track_commit_timestamp"]; got != "on" {
				t.Fatalf("port %d: track_commit_timestamp=%s", p, got)
			}
		}
		evs, _ := m.Events("pg", 0)
		seen := map[string]int{}
		for _, e := range evs {
			if e.Seq <= after {
				continue
			}
			switch {
			case e.Type == "capacity.scaling" && strings.Contains(e.Message, "forced capacity change applies static parameters of parameter group verbose") &&
				strings.Contains(e.Message, "track_commit_timestamp=on"):
				seen["scaling "+e.Member]++
			case e.Type == "member.parameters-applied" && strings.Contains(e.Message, "track_commit_timestamp=on (static, forced capacity change at"):
				seen["applied "+e.Member]++
			case e.Type == "member.sessions-moved" && e.Member == "pg-1" && strings.HasPrefix(e.Message, "1 session(s) moved"):
				seen["moved"]++
			case e.Type == "member.restarting" || e.Type == "member.rebooting":
				t.Errorf("the reboot path ran: %s %s", e.Type, e.Message)
			}
		}
		for _, k := range []string{"scaling pg-1", "scaling pg-2", "applied pg-1", "applied pg-2", "moved"} {
			if seen[k] != 1 {
				t.Errorf("%q: %d events, want 1 (%v)", k, seen[k], seen)
			}
		}
		var pidAfter int
		var ts string
		if err := idle.QueryRow(context.Background(), "SELECT pg_backend_pid(), current_setting('track_commit_timestamp')").Scan(&pidAfter, &ts); err != nil {
			t.Fatalf("the idle session did not survive the forced capacity change: %v", err)
		}
		if pidAfter == pidBefore || ts != "on" {
			t.Fatalf("idle session: backend %d -> %d, track_commit_timestamp=%s (want a new backend with on)", pidBefore, pidAfter, ts)
		}
	})

	t.Run("BackToDefaultGroup", func(t *testing.T) {
		def := paramgroup.DefaultGroup
		if _, err := m.Modify("pg", ModifyInput{DBClusterParameterGroupName: &def}); err != nil {
			t.Fatal(err)
		}
		d := waitInSync(t, m, "pg")
		if d.DBClusterParameterGroup != def {
			t.Fatalf("group %q", d.DBClusterParameterGroup)
		}
		for _, p := range ports {
			got := showOn(t, p, "log_statement", "log_lock_waits", "track_commit_timestamp")
			if got["log_statement"] != "none" || got["log_lock_waits"] != "off" || got["track_commit_timestamp"] != "off" {
				t.Fatalf("port %d: %v", p, got)
			}
		}
		if err := m.DeleteParamGroup("verbose"); err != nil {
			t.Fatalf("delete once unused: %v", err)
		}
	})

	t.Run("PausedClusterResumesToApply", func(t *testing.T) {
		on, secs := true, 3
		if _, err := m.Modify("pg", ModifyInput{AutoPause: &on, SecondsUntilAutoPause: &secs}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the cluster to pause", 90*time.Second, func() bool { return m.mustDescribe(t, "pg").Status == StatusPaused })
		if _, err := gs.Create("late", "", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := m.ModifyParamGroup("late", []paramgroup.Change{{ParameterName: "log_temp_files", ParameterValue: "1024"},
			{ParameterName: "track_activity_query_size", ParameterValue: "2048"}}); err != nil {
			t.Fatal(err)
		}
		after := lastSeq(t, m)
		late := "late"
		if _, err := m.Modify("pg", ModifyInput{DBClusterParameterGroupName: &late}); err != nil {
			t.Fatal(err)
		}
		applied := func(want string) func() bool {
			return func() bool {
				evs, _ := m.Events("pg", 0)
				for _, e := range evs {
					if e.Seq > after && e.Type == "member.parameters-applied" && e.Member == "pg-1" && strings.Contains(e.Message, want) {
						return true
					}
				}
				return false
			}
		}
		waitFor(t, "the writer resumed with the new group", 2*time.Minute, applied("log_temp_files=1024 (dynamic, reloaded)"))
		waitFor(t, "the static parameter through a forced capacity change", 2*time.Minute, applied("track_activity_query_size=2048 (static, forced capacity change"))
		waitInSync(t, m, "pg")
		if got := showOn(t, ports[0], "track_activity_query_size", "log_temp_files"); got["track_activity_query_size"] != "2048" || got["log_temp_files"] != "1024" {
			t.Fatalf("writer after resume: %v", got)
		}
		if !hasEvent(t, m, "pg", "", "cluster.resuming-for-parameters", after) || !hasEvent(t, m, "pg", "", "cluster.resumed", after) {
			t.Fatal("no resume events")
		}
		off := false
		if _, err := m.Modify("pg", ModifyInput{AutoPause: &off}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStaticParameterForcedAfterTimeout: a static change waits for a scaling point like any
// capacity change, and when a session holds a transaction past the timeout the change is
// forced (a parameter group's timeout action is always ForceApplyCapacityChange): the session
// gets the retryable 57P01 and the node restarts with the value.
func TestStaticParameterForcedAfterTimeout(t *testing.T) {
	pgtest.RequireInstalled(t)
	m := newManagerWith(t, newHome(t), Options{HoldTimeout: 20 * time.Second, ScalingTimeout: 3 * time.Second})
	if _, err := m.ParamGroups().Create("st", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(CreateInput{MasterUserInput: testMaster, Name: "ft", DBClusterParameterGroupName: "st"}); err != nil {
		t.Fatal(err)
	}
	d := waitInSync(t, m, "ft")
	ctx := context.Background()
	inTx := connectTo(t, fmt.Sprintf("127.0.0.1:%d", d.Port))
	if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := inTx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	after := lastSeq(t, m)
	if _, err := m.ModifyParamGroup("st", []paramgroup.Change{{ParameterName: "track_commit_timestamp", ParameterValue: "on"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forced change", 2*time.Minute, func() bool { return hasEvent(t, m, "ft", "ft-1", "capacity.timeout", after) })
	waitInSync(t, m, "ft")
	if got := showOn(t, d.DBClusterMembers[0].Port, "track_commit_timestamp")["track_commit_timestamp"]; got != "on" {
		t.Fatalf("track_commit_timestamp=%s after the forced change", got)
	}
	if _, err := inTx.Exec(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "57P01") {
		t.Fatalf("session in a transaction: %v, want the retryable 57P01", err)
	}
	evs, _ := m.Events("ft", 0)
	forced := false
	for _, e := range evs {
		if e.Seq > after && e.Type == "member.parameters-applied" && strings.Contains(e.Message, "track_commit_timestamp=on (static, forced capacity change at 1 ACU, forced after 3s without a scaling point)") {
			forced = true
		}
	}
	if !forced {
		t.Fatal("no parameters-applied event naming the forced change")
	}
}
