package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	otlplogs "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/borealisdb/borealis/controlplane/logs"
	"github.com/borealisdb/borealis/internal/pgtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// otlpSink is an OTLP/HTTP receiver decoding the official protobufs; it counts bodies.
type otlpSink struct {
	mu     sync.Mutex
	bodies map[string]int
}

func (o *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	var req otlplogs.LogsData
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				o.bodies[lr.Body.GetStringValue()]++
			}
		}
	}
}

func (o *otlpSink) count(body string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bodies[body]
}

func tailJSON(t *testing.T, home, group string, extra ...string) []logs.Event {
	t.Helper()
	code, out, errOut := cli(t, append([]string{"logs", "tail", group, "--since", "1h", "--output", "json", "--home", home}, extra...)...)
	if code != 0 {
		t.Fatalf("logs tail %s: exit %d: %s", group, code, errOut)
	}
	var evs []logs.Event
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e logs.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("tail output: %v\n%s", err, out)
		}
		evs = append(evs, e)
	}
	return evs
}

func pgMessage(t *testing.T, raw string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("event message is not a jsonlog record: %v: %s", err, raw)
	}
	return m
}

// TestLogGroupsAcrossControlPlaneKill9: a node logs numbered lines while its log files are
// rotated and the control plane is killed with -9 and restarted; the postgresql group then has
// every line exactly once; the error group has the error with its SQLSTATE; `logs tail
// --follow` prints new lines; OTLP export received them; the groups outlive the cluster.
func TestLogGroupsAcrossControlPlaneKill9(t *testing.T) {
	pgtest.RequireInstalled(t)
	home := newHome(t)
	ports := freePorts(t, 1)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	sink := &otlpSink{bodies: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sink}
	go srv.Serve(ln)
	defer srv.Close()
	otlpFlag := "--otlp-logs-endpoint=http://" + ln.Addr().String() + "/v1/logs"
	serve := startServeWith(t, home, apiAddr, otlpFlag)

	code, _, errOut := cli(t, "cluster", "create", "--name", "lg", "--readers", "0", "--enable-logs-exports", "error,postgresql", "--wait", "--home", home)
	if code != 0 {
		t.Fatalf("cluster create: exit %d: %s", code, errOut)
	}
	d := describeJSON(t, home, "lg").DBClusters[0]
	if fmt.Sprint(d.EnabledLogsExports) != "[error postgresql]" {
		t.Fatalf("EnabledLogsExports %v", d.EnabledLogsExports)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// As the superuser (pg_rotate_logfile), through the node's private socket.
	node, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable",
		filepath.Join(home, "clusters", "lg"), d.DBClusterMembers[0].Port))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(context.Background())

	const batches, per = 30, 100
	produced := make(chan error, 1)
	killAt := make(chan struct{})
	go func() {
		for b := 0; b < batches; b++ {
			if b == 10 {
				close(killAt)
			}
			if _, err := node.Exec(ctx, fmt.Sprintf("DO $$ BEGIN FOR i IN %d..%d LOOP RAISE LOG 'marker %%', i; END LOOP; END $$", b*per+1, (b+1)*per)); err != nil {
				produced <- err
				return
			}
			if b%4 == 3 {
				if _, err := node.Exec(ctx, "SELECT pg_rotate_logfile()"); err != nil {
					produced <- err
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		produced <- nil
	}()
	<-killAt
	if err := serve.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	serve.Wait()
	time.Sleep(500 * time.Millisecond)
	var doneWhileDown bool
	select {
	case err := <-produced:
		produced <- err
		doneWhileDown = true
	default:
	}
	serve = startServeWith(t, home, apiAddr, otlpFlag)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	t.Logf("control plane killed at batch 10 of %d; all batches written while it was down: %v", batches, doneWhileDown)
	if _, err := node.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("1/0 succeeded")
	}

	pgGroup, errGroup := logs.GroupName("lg", logs.TypePostgreSQL), logs.GroupName("lg", logs.TypeError)
	var evs []logs.Event
	deadline := time.Now().Add(2 * time.Minute)
	for {
		evs = tailJSON(t, home, pgGroup, "--filter-pattern", "marker")
		if len(evs) >= batches*per || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, e := range evs {
		if e.LogStreamName != "lg-1" {
			t.Fatalf("stream %q", e.LogStreamName)
		}
		seen[pgMessage(t, e.Message)["message"].(string)]++
	}
	for i := 1; i <= batches*per; i++ {
		if n := seen[fmt.Sprintf("marker %d", i)]; n != 1 {
			t.Fatalf("marker %d stored %d times (%d events in all)", i, n, len(evs))
		}
	}
	rotated, _ := filepath.Glob(filepath.Join(home, "clusters", "lg", "lg-1", "log", "*.json"))
	if len(rotated) < 3 {
		t.Fatalf("expected several rotated jsonlog files, found %v", rotated)
	}

	var errEvs []logs.Event
	for deadline := time.Now().Add(time.Minute); len(errEvs) == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		errEvs = tailJSON(t, home, errGroup, "--filter-pattern", "division by zero")
	}
	if len(errEvs) != 1 || pgMessage(t, errEvs[0].Message)["state_code"] != "22012" {
		t.Fatalf("error group: %+v", errEvs)
	}
	if all := tailJSON(t, home, errGroup); len(all) == 0 || strings.Contains(all[0].Message, "marker") {
		t.Fatalf("the error group holds LOG lines: %+v", all)
	}

	t.Run("TailFollow", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "logs", "tail", pgGroup, "--follow", "--since", "1m", "--format", "short", "--filter-pattern", "followme", "--home", home)
		cmd.Env = append(os.Environ(), "BOREALIS_TEST_RUN_CLI=1")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		time.Sleep(1500 * time.Millisecond) // the first poll finds nothing
		if _, err := node.Exec(ctx, "DO $$ BEGIN RAISE LOG 'followme now'; END $$"); err != nil {
			t.Fatal(err)
		}
		select {
		case l := <-lines:
			if !strings.Contains(l, "followme now") {
				t.Fatalf("follow printed %q", l)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("tail --follow printed nothing")
		}
	})

	t.Run("ExportedOverOTLP", func(t *testing.T) {
		deadline := time.Now().Add(time.Minute)
		for i := 1; i <= batches*per; i++ {
			for sink.count(fmt.Sprintf("marker %d", i)) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("marker %d never reached the OTLP receiver", i)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})

	t.Run("GroupsOutliveTheCluster", func(t *testing.T) {
		node.Close(context.Background())
		if code, _, errOut := cli(t, "cluster", "delete", "lg", "--skip-final-snapshot", "--home", home); code != 0 {
			t.Fatalf("delete: %s", errOut)
		}
		code, out, errOut := cli(t, "logs", "describe-log-groups", "--home", home, "--output", "json")
		var body struct{ LogGroups []logs.Description }
		if code != 0 || json.Unmarshal([]byte(out), &body) != nil || len(body.LogGroups) != 2 || body.LogGroups[0].StoredBytes == 0 {
			t.Fatalf("describe-log-groups after delete: %d %s %s", code, out, errOut)
		}
		// The shutdown's last lines were collected before the data went.
		if evs := tailJSON(t, home, pgGroup, "--filter-pattern", `"database system is shut down"`); len(evs) != 1 {
			t.Fatalf("shutdown line: %+v", evs)
		}
		if code, _, errOut := cli(t, "logs", "put-retention-policy", pgGroup, "--retention-in-days", "14", "--home", home); code != 0 {
			t.Fatal(errOut)
		}
		if code, _, errOut := cli(t, "logs", "delete-log-group", errGroup, "--home", home); code != 0 {
			t.Fatal(errOut)
		}
		code, out, _ = cli(t, "logs", "describe-log-groups", "--home", home)
		if code != 0 || strings.Contains(out, errGroup) || !strings.Contains(out, "14 days") {
			t.Fatalf("after delete-log-group:\n%s", out)
		}
		if code, _, errOut := cli(t, "logs", "tail", errGroup, "--home", home); code != 1 || !strings.Contains(errOut, "log group not found") {
			t.Fatalf("tail of a deleted group: %d %s", code, errOut)
		}
	})
}

// TestLogsBadInvocations: bad flags exit 2 before any API call.
func TestLogsBadInvocations(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"logs"}, 2, "which logs command"},
		{[]string{"logs", "frob"}, 2, `unknown logs command "frob"`},
		{[]string{"logs", "tail"}, 2, "a log group name is required"},
		{[]string{"logs", "tail", "/aws/rds/x"}, 2, "names are /borealis/cluster/<cluster>/error"},
		{[]string{"logs", "tail", "/borealis/cluster/x/error", "--since", "soon"}, 2, "--since"},
		{[]string{"logs", "tail", "/borealis/cluster/x/error", "--format", "fancy"}, 2, "--format must be detailed or short"},
		{[]string{"logs", "tail", "/borealis/cluster/x/error", "--output", "yaml"}, 2, "--output"},
		{[]string{"logs", "put-retention-policy", "/borealis/cluster/x/error"}, 2, "--retention-in-days is required"},
		{[]string{"logs", "put-retention-policy", "/borealis/cluster/x/error", "--retention-in-days", "9999"}, 2, "--retention-in-days"},
		{[]string{"cluster", "create", "--name", "x", "--enable-logs-exports", "slowquery"}, 2, `--enable-logs-exports: unknown log type "slowquery"`},
		{[]string{"serve", "--home", home, "--api", "127.0.0.1:0", "--otlp-logs-endpoint", "grpc://x"}, 2, "use an http:// or https:// URL"},
		{[]string{"logs", "describe-log-groups", "--home", home}, 1, "no control plane is running"},
	} {
		code, _, errOut := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{"10m": now.Add(-10 * time.Minute), "2h": now.Add(-2 * time.Hour), "1d": now.AddDate(0, 0, -1),
		"1w": now.AddDate(0, 0, -7), "30s": now.Add(-30 * time.Second), "2026-01-01T00:00:00Z": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
}
