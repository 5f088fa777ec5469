package logs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/borealisdb/borealis/controlplane/store"
)

// fakeNode is a member whose log directory the test writes as PostgreSQL would.
type fakeNode struct {
	t      testing.TB
	logDir string
}

func jsonLine(sev, code, msg string) string {
	l := map[string]any{"timestamp": time.Now().UTC().Format("2006-01-02 15:04:05.000 MST"), "pid": 42,
		"error_severity": sev, "message": msg, "backend_type": "client backend", "dbname": "postgres", "user": "postgres"}
	if code != "" {
		l["state_code"] = code
	}
	data, _ := json.Marshal(l)
	return string(data) + "\n"
}

func (n fakeNode) write(file, text string) {
	n.t.Helper()
	f, err := os.OpenFile(filepath.Join(n.logDir, file), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		n.t.Fatal(err)
	}
}

type env struct {
	t    testing.TB
	home string
	st   *store.Store
	node fakeNode
}

func newEnv(t testing.TB, exports []string) *env {
	home := t.TempDir()
	st, err := store.Open(filepath.Join(home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dataDir := filepath.Join(home, "clusters", "demo", "demo-1")
	if err := os.MkdirAll(filepath.Join(dataDir, "log"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateCluster(store.Cluster{Name: "demo", LogExports: exports,
		Members: []store.Member{{ID: "demo-1", Writer: true, DataDir: dataDir}}}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, home: home, st: st, node: fakeNode{t: t, logDir: filepath.Join(dataDir, "log")}}
}

func (e *env) start(export ExportOptions) *Service {
	s, err := New(Options{Home: e.home, Store: e.st, Logf: e.t.Logf, Poll: 20 * time.Millisecond, Export: export})
	if err != nil {
		e.t.Fatal(err)
	}
	s.Start()
	e.t.Cleanup(s.Close)
	return s
}

func messages(t *testing.T, s *Service, group string) []string {
	t.Helper()
	out, err := s.Filter(FilterInput{LogGroupName: group, Limit: 10000})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range out.Events {
		var l pgLine
		if json.Unmarshal([]byte(e.Message), &l) == nil && l.Message != "" {
			msgs = append(msgs, l.Message)
		} else {
			msgs = append(msgs, e.Message)
		}
	}
	return msgs
}

func waitCount(t *testing.T, s *Service, group string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := messages(t, s, group)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s %d", prefix, i))
	}
	return out
}

// TestRotationMidLineAndRestart: a file that ends in the middle of a line when a newer file
// appears, and is finished afterwards; a service restart (the store is the position) and a
// torn record at the end of a segment (a crash mid-write): every line once, in order.
func TestRotationMidLineAndRestart(t *testing.T) {
	e := newEnv(t, []string{TypePostgreSQL, TypeError})
	pg := GroupName("demo", TypePostgreSQL)
	s := e.start(ExportOptions{})
	for i := 1; i <= 3; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("line %d", i)))
	}
	half := jsonLine("ERROR", "22012", "line 4")
	e.node.write("postgresql-1.json", half[:20])
	if got := waitCount(t, s, pg, 3); len(got) != 3 {
		t.Fatalf("before rotation: %v", got)
	}
	// Rotation mid-line: the newer file appears while line 4 is unfinished, then line 4 ends.
	e.node.write("postgresql-2.json", jsonLine("LOG", "", "line 5"))
	time.Sleep(300 * time.Millisecond)
	e.node.write("postgresql-1.json", half[20:])
	got := waitCount(t, s, pg, 5)
	if strings.Join(got, ",") != strings.Join(seq("line", 1, 5), ",") {
		t.Fatalf("after rotation mid-line: %v", got)
	}
	if errs := waitCount(t, s, GroupName("demo", TypeError), 1); len(errs) != 1 || errs[0] != "line 4" {
		t.Fatalf("error group: %v", errs)
	}

	// Restart of the service, with lines written while it is down.
	s.Close()
	e.node.write("postgresql-2.json", jsonLine("LOG", "", "line 6"))
	e.node.write("postgresql-3.json", jsonLine("LOG", "", "line 7"))
	// A crash mid-write leaves half a record at the end of the active segment.
	segs, _ := filepath.Glob(filepath.Join(e.home, "logs", "borealis", "cluster", "demo", "postgresql", "streams", "demo-1", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	f, _ := os.OpenFile(segs[0], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"q":99,"t":1,"m":"torn`)
	f.Close()
	s = e.start(ExportOptions{})
	got = waitCount(t, s, pg, 7)
	time.Sleep(200 * time.Millisecond)
	got = messages(t, s, pg)
	if strings.Join(got, ",") != strings.Join(seq("line", 1, 7), ",") {
		t.Fatalf("after restart: %v", got)
	}

	// An unfinished line in a file no newer file follows stays until it ends.
	last := jsonLine("LOG", "", "line 8")
	e.node.write("postgresql-3.json", last[:len(last)-5])
	time.Sleep(2*partialGrace + 200*time.Millisecond)
	if got := messages(t, s, pg); len(got) != 7 {
		t.Fatalf("an unfinished last line was taken: %v", got)
	}
	e.node.write("postgresql-3.json", last[len(last)-5:])
	if got := waitCount(t, s, pg, 8); got[7] != "line 8" {
		t.Fatalf("finished line: %v", got)
	}
}

// TestErrorGroupCheckpoints: the error group keeps WARNING and above only, and records its
// position so a restart does not re-read what it skipped.
func TestErrorGroupCheckpoints(t *testing.T) {
	e := newEnv(t, nil) // default: error only
	s := e.start(ExportOptions{})
	for i := 0; i < 50; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("noise %d", i)))
	}
	e.node.write("postgresql-1.json", jsonLine("WARNING", "01000", "careful"))
	e.node.write("postgresql-1.json", jsonLine("FATAL", "28P01", "password authentication failed"))
	for i := 0; i < 50; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("noise %d", i)))
	}
	eg := GroupName("demo", TypeError)
	if got := waitCount(t, s, eg, 2); strings.Join(got, "|") != "careful|password authentication failed" {
		t.Fatalf("error group: %v", got)
	}
	if _, err := s.Filter(FilterInput{LogGroupName: GroupName("demo", TypePostgreSQL)}); err == nil {
		t.Fatal("the postgresql group exists though not exported")
	}
	s.Flush("demo") // forces the checkpoint of the skipped tail
	g, _ := s.Group(eg)
	src, off := g.streamList()[0].position()
	st, _ := os.Stat(filepath.Join(e.node.logDir, "postgresql-1.json"))
	if src != "postgresql-1.json" || off != st.Size() {
		t.Fatalf("position %s:%d, file size %d", src, off, st.Size())
	}
}

// TestFilterAndFollow: time window, pattern terms and phrases, limits, and a nextToken that
// returns only what came after.
func TestFilterAndFollow(t *testing.T) {
	e := newEnv(t, []string{TypePostgreSQL})
	s := e.start(ExportOptions{})
	pg := GroupName("demo", TypePostgreSQL)
	e.node.write("postgresql-1.json", jsonLine("LOG", "", "alpha one"))
	e.node.write("postgresql-1.json", jsonLine("ERROR", "42P01", "relation \"t\" does not exist"))
	e.node.write("postgresql-1.json", jsonLine("LOG", "", "alpha two"))
	waitCount(t, s, pg, 3)
	out, err := s.Filter(FilterInput{LogGroupName: pg, FilterPattern: "alpha"})
	if err != nil || len(out.Events) != 2 {
		t.Fatalf("pattern: %v %+v", err, out)
	}
	out, _ = s.Filter(FilterInput{LogGroupName: pg, FilterPattern: `"does not exist" 42P01`})
	if len(out.Events) != 1 || out.Events[0].LogStreamName != "demo-1" || out.Events[0].EventID == "" {
		t.Fatalf("phrase: %+v", out)
	}
	out, _ = s.Filter(FilterInput{LogGroupName: pg, StartTime: time.Now().Add(time.Hour).UnixMilli()})
	if len(out.Events) != 0 {
		t.Fatalf("future start: %+v", out)
	}
	page, _ := s.Filter(FilterInput{LogGroupName: pg, Limit: 2})
	rest, _ := s.Filter(FilterInput{LogGroupName: pg, NextToken: page.NextToken})
	if len(page.Events) != 2 || len(rest.Events) != 1 || !strings.Contains(rest.Events[0].Message, "alpha two") {
		t.Fatalf("pages: %+v %+v", page, rest)
	}
	e.node.write("postgresql-1.json", jsonLine("LOG", "", "alpha three"))
	deadline := time.Now().Add(10 * time.Second)
	tok := rest.NextToken
	var follow []Event
	for len(follow) == 0 && time.Now().Before(deadline) {
		o, _ := s.Filter(FilterInput{LogGroupName: pg, NextToken: tok})
		follow, tok = o.Events, o.NextToken
		time.Sleep(20 * time.Millisecond)
	}
	if len(follow) != 1 || !strings.Contains(follow[0].Message, "alpha three") {
		t.Fatalf("follow: %+v", follow)
	}
	for _, bad := range []FilterInput{{LogGroupName: "/borealis/cluster/demo/slow"}, {LogGroupName: pg, Limit: 20000},
		{LogGroupName: pg, NextToken: "garbage!"}, {LogGroupName: pg, FilterPattern: `"open`}, {LogGroupName: GroupName("other", TypeError)}} {
		if _, err := s.Filter(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestSizeBoundAndDeleteGroup: a group over its bound loses its oldest segments, counted;
// a deleted group is gone with its files, and the cluster's next lines start a new one.
func TestSizeBoundAndDeleteGroup(t *testing.T) {
	old := segmentBytes
	segmentBytes = 4 << 10
	defer func() { segmentBytes = old }()
	e := newEnv(t, []string{TypePostgreSQL})
	s, err := New(Options{Home: e.home, Store: e.st, Poll: 20 * time.Millisecond, MaxGroupBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	pg := GroupName("demo", TypePostgreSQL)
	for i := 0; i < 400; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("bulk %d", i)))
	}
	waitCount(t, s, pg, 1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.Flush("demo")
		if got := messages(t, s, pg); len(got) > 0 && got[len(got)-1] == "bulk 399" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bulk lines not collected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.enforceRetention()
	d := s.Describe("/borealis/cluster/demo/")
	if len(d) != 1 || d[0].StoredBytes > 16<<10+segmentBytes {
		t.Fatalf("over the bound: %+v", d)
	}
	got := messages(t, s, pg)
	if len(got) >= 400 || got[len(got)-1] != "bulk 399" || s.Snapshot().Expired == 0 {
		t.Fatalf("kept %d, last %q, expired %d", len(got), got[len(got)-1], s.Snapshot().Expired)
	}
	if err := s.PutRetention(pg, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRetention(pg, -1); err == nil {
		t.Fatal("negative retention accepted")
	}
	if d := s.Describe(""); d[0].RetentionInDays != 7 {
		t.Fatalf("retention: %+v", d)
	}
	if err := s.DeleteGroup(pg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(groupDir(s.root, pg)); !os.IsNotExist(err) {
		t.Fatalf("group files left: %v", err)
	}
	e.node.write("postgresql-2.json", jsonLine("LOG", "", "after delete"))
	if got := waitCount(t, s, pg, 1); len(got) == 0 {
		t.Fatal("no new group after delete")
	}
}

// TestLinksInTheLogDirectoryAreRefused: the node's user owns its log directory; a symbolic
// link there (to a file of the control plane's) is not published, and later files still are.
func TestLinksInTheLogDirectoryAreRefused(t *testing.T) {
	e := newEnv(t, []string{TypePostgreSQL})
	secret := filepath.Join(e.home, "secret.json")
	os.WriteFile(secret, []byte(jsonLine("LOG", "", "the control plane's secret")), 0o600)
	e.node.write("postgresql-1.json", jsonLine("LOG", "", "before"))
	if err := os.Symlink(secret, filepath.Join(e.node.logDir, "postgresql-2.json")); err != nil {
		t.Fatal(err)
	}
	e.node.write("postgresql-3.json", jsonLine("LOG", "", "after"))
	s := e.start(ExportOptions{})
	got := waitCount(t, s, GroupName("demo", TypePostgreSQL), 2)
	time.Sleep(200 * time.Millisecond)
	if got = messages(t, s, GroupName("demo", TypePostgreSQL)); strings.Join(got, "|") != "before|after" {
		t.Fatalf("published: %v", got)
	}
}
