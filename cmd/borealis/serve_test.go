package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/borealisdb/borealis/controlplane/api"
	"github.com/borealisdb/borealis/controlplane/cluster"
	"github.com/borealisdb/borealis/controlplane/router"
	"github.com/borealisdb/borealis/internal/pgtest"
)

// TestMain lets a test start this test binary as the real `borealis` command (a separate
// process that can be killed with -9) by setting BOREALIS_TEST_RUN_CLI.
func TestMain(m *testing.M) {
	if os.Getenv("BOREALIS_TEST_RUN_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startServe runs `borealis serve` as its own process and waits for its API.
func startServe(t *testing.T, home, apiAddr string) *exec.Cmd {
	t.Helper()
	return startServeWith(t, home, apiAddr)
}

// startServeWith is startServe with extra flags. The output buffer is shared with the
// process's copying goroutines, hence syncBuffer.
func startServeWith(t *testing.T, home, apiAddr string, extra ...string) *exec.Cmd {
	t.Helper()
	os.Remove(filepath.Join(home, apiInfoFile))
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--home", home, "--api", apiAddr}, extra...)...)
	cmd.Env = append(os.Environ(), "BOREALIS_TEST_RUN_CLI=1")
	var logBuf syncBuffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("borealis serve output:\n%s", logBuf.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(home, apiInfoFile)); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("borealis serve did not write %s:\n%s", apiInfoFile, logBuf.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func describeJSON(t *testing.T, home, name string) api.ClustersBody {
	t.Helper()
	code, out, errOut := cli(t, "cluster", "describe", name, "--home", home, "--output", "json")
	if code != 0 {
		t.Fatalf("describe %s: exit %d: %s", name, code, errOut)
	}
	var body api.ClustersBody
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("describe JSON: %v\n%s", err, out)
	}
	return body
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return !strings.Contains(string(stat), ") Z ")
}

// TestControlPlaneKill9KeepsClusters kills `borealis serve` with -9 while it runs a cluster:
// the nodes keep serving, a new control plane adopts them (same pids), the cluster is neither
// lost nor duplicated, and a clean SIGTERM then stops everything.
func TestControlPlaneKill9KeepsClusters(t *testing.T) {
	pgtest.RequireInstalled(t)
	home := newHome(t)
	ports := freePorts(t, 1)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	serve := startServe(t, home, apiAddr)

	code, out, errOut := cli(t, "cluster", "create", "--name", "keep", "--readers", "1", "--max-capacity", "4", "--wait", "--home", home,
		"--manage-master-user-password", "--master-username", "keeper")
	if code != 0 {
		t.Fatalf("cluster create: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "keep") || !strings.Contains(out, "available") || !strings.Contains(out, "MEMBER") {
		t.Fatalf("create table output:\n%s", out)
	}
	before := describeJSON(t, home, "keep").DBClusters[0]
	pids := []int{before.DBClusterMembers[0].PID, before.DBClusterMembers[1].PID}
	if before.MasterUsername != "keeper" || before.MasterUserSecret == nil {
		t.Fatalf("describe names no master user or managed password: %+v", before)
	}
	secret, err := os.ReadFile(before.MasterUserSecret.SecretFile)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(secret))

	if err := serve.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	serve.Wait()
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("node pid %d died with the control plane", pid)
		}
	}
	// The endpoints belong to the control plane, but the nodes still serve directly.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct, err := pgx.Connect(ctx, fmt.Sprintf("postgres://keeper:%s@127.0.0.1:%d/postgres?sslmode=disable", password, before.DBClusterMembers[0].Port))
	if err != nil {
		t.Fatalf("writer unreachable while the control plane is down: %v", err)
	}
	if _, err := direct.Exec(ctx, "CREATE TABLE survived (v int); INSERT INTO survived VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	direct.Close(ctx)

	serve = startServe(t, home, apiAddr)
	var after api.ClustersBody
	deadline := time.Now().Add(2 * time.Minute)
	for {
		after = describeJSON(t, home, "")
		if len(after.DBClusters) == 1 && after.DBClusters[0].Status == "available" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %+v", after)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d := after.DBClusters[0]
	if d.DBClusterIdentifier != "keep" || d.Endpoint != before.Endpoint || d.ScalingConfigurationInfo.MaxCapacity != 4 {
		t.Fatalf("cluster changed across the restart: %+v", d)
	}
	for i, m := range d.DBClusterMembers {
		if m.PID != pids[i] {
			t.Fatalf("member %s pid %d -> %d: restarted instead of adopted", m.DBInstanceIdentifier, pids[i], m.PID)
		}
	}
	code, out, _ = cli(t, "events", "--cluster", "keep", "--home", home, "--output", "json")
	if code != 0 || strings.Count(out, `"member.adopted"`) != 2 {
		t.Fatalf("want two member.adopted events: %s", out)
	}
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://keeper:%s@%s/postgres?sslmode=disable", password, d.ReaderEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	var v int
	for c.QueryRow(ctx, "SELECT v FROM survived").Scan(&v) != nil && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	c.Close(ctx)
	if v != 42 {
		t.Fatal("the row written while the control plane was down never reached the reader endpoint")
	}

	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Fatalf("node pid %d still running after a clean control-plane stop", pid)
		}
	}
}

// TestClusterCommandsBadInvocations: bad flags exit 2 naming the flag, before any API call;
// a missing control plane exits 1 with a hint.
func TestClusterCommandsBadInvocations(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"cluster"}, 2, "which cluster command"},
		{[]string{"cluster", "frob"}, 2, `unknown cluster command "frob"`},
		{[]string{"cluster", "create"}, 2, "--name: is required"},
		{[]string{"cluster", "create", "--name", "Bad_Name"}, 2, "--name"},
		{[]string{"cluster", "create", "--name", "ok", "--readers", "16"}, 2, "--readers: 16 is out of range"},
		{[]string{"cluster", "create", "--name", "ok", "--readers", "two"}, 2, "invalid value"},
		{[]string{"cluster", "create", "--name", "ok", "--min-capacity", "0.3"}, 2, "--min-capacity"},
		{[]string{"cluster", "create", "--name", "ok", "--min-capacity", "16", "--max-capacity", "8"}, 2, "--min-capacity: 16 ACU is above MaxCapacity"},
		{[]string{"cluster", "create", "--name", "ok", "--seconds-before-timeout", "700"}, 2, "--seconds-before-timeout"},
		{[]string{"cluster", "create", "--name", "ok", "--timeout-action", "Shrug"}, 2, "--timeout-action"},
		{[]string{"cluster", "create", "--name", "ok", "--output", "yaml"}, 2, "--output must be json or table"},
		{[]string{"cluster", "modify", "--name", "ok"}, 2, "nothing to modify"},
		{[]string{"cluster", "modify", "--max-capacity", "4"}, 2, "--name is required"},
		{[]string{"cluster", "delete"}, 2, "--name is required"},
		{[]string{"cluster", "delete", "--name", "ok"}, 2, "pass --skip-final-snapshot to confirm"},
		{[]string{"cluster", "create", "--name", "ok", "--master-username", "postgres"}, 2, "--master-username"},
		{[]string{"cluster", "create", "--name", "ok", "--master-user-password", "short"}, 2, "--master-user-password: must be 8"},
		{[]string{"cluster", "modify", "--name", "ok", "--deletion-protection", "--no-deletion-protection"}, 2, "contradict"},
		{[]string{"serve", "--tls", "maybe", "--home", home}, 2, "--tls must be auto or off"},
		{[]string{"cluster", "describe", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"cluster", "list", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"events", "--limit", "0"}, 2, "--limit must be from 1 to 10000"},
		{[]string{"events", "--cluster", "NO!"}, 2, "--cluster"},
		{[]string{"events", "--since", "yesterday"}, 2, `--since "yesterday": use a number and a unit`},
		{[]string{"cluster", "create", "--name", "ok", "--min-capacity", "0"}, 2, "--min-capacity: 0 ACU is not allowed"},
		{[]string{"up", "--max-capacity", "0", "--home", home}, 2, "--max-capacity: 0 ACU is not allowed"},
		{[]string{"up", "--min-capacity", "0.3", "--home", home}, 2, "--min-capacity: 0.3 ACU is not allowed"},
		{[]string{"up", "--auto-pause", "--seconds-until-auto-pause", "1", "--home", home}, 2, "--seconds-until-auto-pause: 1 is out of range"},
		{[]string{"serve", "--api-address", "example.com:8433", "--home", home}, 2, "is not an IP address"},
		{[]string{"serve", "--listen-address", "everywhere", "--home", home}, 2, "--listen-address"},
		{[]string{"up", "--port", "80", "--home", home}, 2, "--port: 80 is not a usable port"},
		{[]string{"cluster", "list", "--home", home}, 1, "no control plane is running for home " + home},
		{[]string{"cluster", "list", "--home", "no-such-home"}, 1, "--home DIR (BOREALIS_HOME)"},
	} {
		code, _, errOut := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

// TestServeRefusesBadPoolIdleTimeout: a bad BOREALIS_ROUTER_POOL_IDLE_TIMEOUT stops serve at
// once, naming the variable, before it touches the home.
func TestServeRefusesBadPoolIdleTimeout(t *testing.T) {
	for _, v := range []string{"5 minutes", "0", "-30s", "2h"} {
		t.Setenv(router.PoolIdleTimeoutEnv, v)
		home := filepath.Join(t.TempDir(), "home")
		code, _, errOut := cli(t, "serve", "--home", home, "--api", "127.0.0.1:0")
		if code != 2 || !strings.Contains(errOut, router.PoolIdleTimeoutEnv) {
			t.Fatalf("serve with %s=%q: exit %d, %q; want 2 naming the variable", router.PoolIdleTimeoutEnv, v, code, errOut)
		}
		if _, err := os.Stat(home); !os.IsNotExist(err) {
			t.Fatalf("serve made its home before refusing %q: %v", v, err)
		}
	}
}

// TestDescribeTextShowsPool: describe's table output shows the router's pool counters, closes
// by reason included, and nothing for a pool where nothing happened.
func TestDescribeTextShowsPool(t *testing.T) {
	var b bytes.Buffer
	printSessions(&b, cluster.Description{BackendPool: &cluster.BackendPool{Idle: 2, InUse: 1, Reused: 5, Opened: 4,
		Closed: map[string]int64{"settings": 1, "ddl": 2}, DDLDrains: 2, SettingsMisses: 1}})
	want := "backend pool 2 idle, 1 in use, 5 reused, 4 opened, closed: ddl 2, settings 1 (2 DATABASE DDL drains, 1 logins under changed role settings)"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("describe text:\n%s\nwant it to contain %q", b.String(), want)
	}
	b.Reset()
	printSessions(&b, cluster.Description{BackendPool: &cluster.BackendPool{}})
	if b.Len() != 0 {
		t.Fatalf("describe text for an unused pool: %q", b.String())
	}
}
