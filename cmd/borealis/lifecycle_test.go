package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestLifecycleWaitAndStoppedCluster is what a new user tried: `cluster stop|start|reboot
// --wait` show each change of status and return once it is reached; a stopped cluster answers
// what to do, with Aurora's fault codes and exit 1: modify-current-capacity names the state
// (InvalidDBClusterStateFault, not DBClusterAlreadyExistsFault), a client is refused at once
// without the router claiming it was held for its whole hold timeout; an unknown instance is
// DBInstanceNotFound. Nothing is lost: the row written before the stop is there after start.
func TestLifecycleWaitAndStoppedCluster(t *testing.T) {
	code, _, errOut := cli(t, "cluster", "modify", "--name", "x", "--auto-pause", "--no-auto-pause")
	if code != 2 || !strings.Contains(errOut, "--auto-pause and --no-auto-pause contradict") {
		t.Fatalf("--auto-pause --no-auto-pause: exit %d, %s", code, errOut)
	}
	pgtest.RequireInstalled(t)
	home := newHome(t)
	ports := freePorts(t, 1)
	startServe(t, home, fmt.Sprintf("127.0.0.1:%d", ports[0]))
	const password = "life-cycle-pw"
	if code, _, errOut := cli(t, "cluster", "create", "--name", "life", "--readers", "0", "--max-capacity", "2", "--wait", "--home", home,
		"--master-username", "life", "--master-user-password", password); code != 0 {
		t.Fatalf("cluster create: exit %d: %s", code, errOut)
	}
	// A taken endpoint port: create --wait says so at once rather than waiting out its timeout.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	code, _, errOut = cli(t, "cluster", "create", "--name", "clash", "--readers", "0", "--port", strconv.Itoa(takenPort), "--wait", "--home", home,
		"--master-username", "life", "--master-user-password", password)
	if code != 1 || !strings.Contains(errOut, "clash is incompatible-network") || !strings.Contains(errOut, strconv.Itoa(takenPort)) {
		t.Fatalf("create --wait on a taken port: exit %d, %s", code, errOut)
	}
	if code, _, errOut := cli(t, "cluster", "delete", "clash", "--skip-final-snapshot", "--home", home); code != 0 {
		t.Fatalf("delete clash: exit %d, %s", code, errOut)
	}
	d := describeJSON(t, home, "life").DBClusters[0]
	uri := fmt.Sprintf("postgres://life:%s@%s/postgres?sslmode=disable", password, d.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	exec := func(sql string) error {
		c, err := pgx.Connect(ctx, uri)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}

	// auto-pause on, then off with --no-auto-pause.
	if code, _, errOut := cli(t, "cluster", "modify", "life", "--auto-pause", "--home", home); code != 0 || !describeJSON(t, home, "life").DBClusters[0].ScalingConfigurationInfo.AutoPause {
		t.Fatalf("--auto-pause: exit %d: %s", code, errOut)
	}
	if code, _, errOut := cli(t, "cluster", "modify", "life", "--no-auto-pause", "--home", home); code != 0 || describeJSON(t, home, "life").DBClusters[0].ScalingConfigurationInfo.AutoPause {
		t.Fatalf("--no-auto-pause: exit %d, %s; auto-pause still on", code, errOut)
	}

	code, out, errOut := cli(t, "cluster", "stop", "life", "--wait", "--home", home, "--output", "json")
	if code != 0 {
		t.Fatalf("stop --wait: exit %d: %s", code, errOut)
	}
	// The progress shows the transition and ends in the wanted state; the JSON is aws rds
	// stop-db-cluster's {"DBCluster": {...}}, so `jq .DBCluster.Status` says stopped.
	if !strings.Contains(errOut, "life stopping") || !strings.Contains(errOut, "life stopped: life-1 stopped") {
		t.Fatalf("stop --wait: progress\n%s\noutput\n%s", errOut, out)
	}
	if st := oneClusterJSON(t, out).Status; st != "stopped" {
		t.Fatalf("stop --wait --output json: DBCluster.Status %q\n%s", st, out)
	}
	if st := describeJSON(t, home, "life").DBClusters[0].Status; st != "stopped" {
		t.Fatalf("after stop --wait, describe says %s", st)
	}
	if code, out, _ := cli(t, "cluster", "describe", "life", "--home", home); code != 0 || !strings.Contains(out, "clients are refused until `borealis cluster start --name life`") {
		t.Fatalf("describe of a stopped cluster does not say how to start it: exit %d\n%s", code, out)
	}

	code, _, errOut = cli(t, "cluster", "modify-current-capacity", "life", "--capacity", "1.5", "--home", home)
	if code != 1 || !strings.Contains(errOut, "InvalidDBClusterStateFault") || !strings.Contains(errOut, "borealis cluster start --name life") {
		t.Fatalf("capacity change of a stopped cluster: exit %d, %s", code, errOut)
	}
	code, _, errOut = cli(t, "cluster", "stop", "life", "--home", home)
	if code != 1 || !strings.Contains(errOut, "InvalidDBClusterStateFault") {
		t.Fatalf("stop of a stopped cluster: exit %d, %s", code, errOut)
	}

	// A client is refused at once, told why and how to fix it, not that it was held 30 s.
	began := time.Now()
	err = exec("SELECT 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P03" || !strings.Contains(pe.Message, "borealis cluster start --name life") ||
		strings.Contains(pe.Hint, "held for") || !strings.Contains(pe.Hint, "refused without waiting") {
		t.Fatalf("connecting to a stopped cluster: %v (hint %q)", err, hintOf(pe))
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("refusal took %s", took)
	}

	// events: a mistyped cluster is an error, not an empty list; --since keeps the recent ones.
	code, _, errOut = cli(t, "events", "--cluster", "lief", "--home", home)
	if code != 1 || !strings.Contains(errOut, `cluster "lief": not found`) {
		t.Fatalf("events of an unknown cluster: exit %d, %s", code, errOut)
	}
	code, out, _ = cli(t, "events", "--cluster", "life", "--since", "1h", "--home", home)
	if code != 0 || !strings.Contains(out, "cluster.stopped") || !strings.Contains(out, "cluster.creating") {
		t.Fatalf("events --since 1h:\n%s", out)
	}
	code, out, _ = cli(t, "events", "--cluster", "life", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--home", home, "--output", "json")
	if evs := eventsOf(t, out); code != 0 || len(evs) != 0 {
		t.Fatalf("events since an hour from now: exit %d\n%s", code, out)
	}
	// aws rds describe-events' shape: Events[].{SourceIdentifier, SourceType, Message, Date}.
	code, out, _ = cli(t, "events", "--cluster", "life", "--since", "1h", "--home", home, "--output", "json")
	stopped := false
	for _, e := range eventsOf(t, out) {
		stopped = stopped || e.EventType == "cluster.stopped" && e.SourceType == "db-cluster" && e.SourceIdentifier == "life" &&
			e.DBClusterIdentifier == "life" && e.Message != "" && time.Since(e.Date) < time.Hour
	}
	if code != 0 || !stopped {
		t.Fatalf("events --output json has no cluster.stopped event in aws rds's shape: exit %d\n%s", code, out)
	}

	code, out, errOut = cli(t, "cluster", "start", "life", "--wait", "--home", home, "--output", "json")
	if code != 0 || !strings.Contains(errOut, "life available: life-1 available") || !strings.Contains(out, `"Status": "available"`) {
		t.Fatalf("start --wait: exit %d\nprogress\n%s\noutput\n%s", code, errOut, out)
	}
	// Available means a client gets in, and the row is still there.
	c, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect after start --wait: %v", err)
	}
	var x int
	if err := c.QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Fatalf("row after stop and start: %d, %v", x, err)
	}
	c.Close(ctx)

	code, _, errOut = cli(t, "cluster", "reboot", "life", "--instance", "life-9", "--home", home)
	if code != 1 || !strings.Contains(errOut, `no instance "life-9"`) || !strings.Contains(errOut, "DBInstanceNotFound") {
		t.Fatalf("reboot of an unknown instance: exit %d, %s", code, errOut)
	}
	// A session with a temporary table cannot move: describe shows it pinned, and why, before
	// any reboot (the router's snapshot of an idle session finds it), and the reboot closes it
	// with a retryable 57P01 and names it in its event.
	pinned, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close(ctx)
	if _, err := pinned.Exec(ctx, "CREATE TEMP TABLE scratch (x int)"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ps := describeJSON(t, home, "life").DBClusters[0].PinnedSessions
		if len(ps) == 1 && ps[0].User == "life" && ps[0].Database == "postgres" && strings.Join(ps[0].Reasons, ",") == "temp_tables" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe never showed the temp-table session pinned: %+v", ps)
		}
	}
	if code, out, _ := cli(t, "cluster", "describe", "life", "--home", home); code != 0 || !strings.Contains(out, "cluster endpoint, life@postgres: temp_tables") {
		t.Fatalf("the describe table does not show the pinned session: exit %d\n%s", code, out)
	}
	pid := describeJSON(t, home, "life").DBClusters[0].DBClusterMembers[0].PID
	// aws rds's flag names work too.
	code, out, errOut = cli(t, "cluster", "reboot", "--db-cluster-identifier", "life", "--db-instance-identifier", "life-1", "--wait", "--home", home, "--output", "json")
	if code != 0 || !strings.Contains(errOut, "life-1 rebooting") || !strings.HasSuffix(strings.TrimSpace(errOut), "life available: life-1 available") {
		t.Fatalf("reboot --wait: exit %d\n%s", code, errOut)
	}
	if st := oneClusterJSON(t, out).Status; st != "available" {
		t.Fatalf("reboot --wait --output json: DBCluster.Status %q", st)
	}
	if after := describeJSON(t, home, "life").DBClusters[0].DBClusterMembers[0].PID; after == pid || after == 0 {
		t.Fatalf("reboot --wait returned, but the writer pid is %d (was %d)", after, pid)
	}
	if err := exec("SELECT 1"); err != nil {
		t.Fatalf("query after reboot --wait: %v", err)
	}
	if _, err := pinned.Exec(ctx, "SELECT 1"); !errors.As(err, &pe) || pe.Code != "57P01" || !strings.Contains(pe.Message, "temp_tables") {
		t.Fatalf("the pinned session after the reboot: %v, want a 57P01 naming temp_tables", err)
	}
	// The event is recorded as the reboot's moves finish, which may be just after --wait saw
	// the cluster available.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		code, out, _ = cli(t, "events", "--cluster", "life", "--since", "10m", "--home", home)
		if code == 0 && strings.Contains(out, "1 closed with a retryable error (57P01) (1 pinned, life@postgres: temp_tables)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reboot's member.sessions-moved event does not name the pinned session:\n%s", out)
		}
	}
	code, _, errOut = cli(t, "cluster", "reboot", "--name", "life", "--db-cluster-identifier", "other", "--home", home)
	if code != 2 || !strings.Contains(errOut, `given twice, as "life" and "other"`) {
		t.Fatalf("--name and --db-cluster-identifier differing: exit %d, %s", code, errOut)
	}
}

// oneClusterJSON reads the {"DBCluster": {...}} that a single-cluster command prints with
// --output json, refusing describe's list shape.
func oneClusterJSON(t *testing.T, out string) cluster.Description {
	t.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &body); err != nil || len(body) != 1 || body["DBCluster"] == nil {
		t.Fatalf("want {\"DBCluster\": {...}}, as aws rds prints it (%v):\n%s", err, out)
	}
	var d cluster.Description
	if err := json.Unmarshal(body["DBCluster"], &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// eventsOf reads `events --output json`.
func eventsOf(t *testing.T, out string) []eventJSON {
	t.Helper()
	var body eventsJSON
	if err := json.Unmarshal([]byte(out), &body); err != nil || body.Events == nil {
		t.Fatalf("events JSON (%v):\n%s", err, out)
	}
	return body.Events
}

func hintOf(pe *pgconn.PgError) string {
	if pe == nil {
		return ""
	}
	return pe.Hint
}
