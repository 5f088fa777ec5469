package logs

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	common "go.opentelemetry.io/proto/otlp/common/v1"
	otlplogs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is a real OTLP/HTTP logs endpoint: it decodes the official protobufs and can be
// told to fail.
type receiver struct {
	mu       sync.Mutex
	records  []*otlplogs.LogRecord
	resource []*common.KeyValue
	failing  bool
	requests int
	srv      *http.Server
	addr     string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "wrong path or content type", http.StatusBadRequest)
		return
	}
	if rc.failing {
		http.Error(w, "collector overloaded", http.StatusServiceUnavailable)
		return
	}
	var req otlplogs.LogsData // wire-identical to ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rl := range req.ResourceLogs {
		rc.resource = rl.Resource.Attributes
		for _, sl := range rl.ScopeLogs {
			rc.records = append(rc.records, sl.LogRecords...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) listen(t *testing.T, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc.addr = ln.Addr().String()
	rc.srv = &http.Server{Handler: rc}
	go rc.srv.Serve(ln)
}

func (rc *receiver) bodies() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, r := range rc.records {
		out = append(out, r.Body.GetStringValue())
	}
	return out
}

func attr(kvs []*common.KeyValue, k string) *common.AnyValue {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value
		}
	}
	return nil
}

// TestExportThroughFailures: a collector that fails (503), then is down (connection refused),
// then comes back receives every record exactly once and in order, with severity, timestamps,
// cluster, instance and SQLSTATE; lag and failures are measured meanwhile.
func TestExportThroughFailures(t *testing.T) {
	rc := &receiver{failing: true}
	rc.listen(t, "127.0.0.1:0")
	defer func() { rc.srv.Close() }()
	e := newEnv(t, []string{TypePostgreSQL})
	s := e.start(ExportOptions{Endpoint: "http://" + rc.addr, Batch: 7, Interval: 20 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	e.node.write("postgresql-1.json", jsonLine("ERROR", "42P01", "relation \"nope\" does not exist"))
	for i := 1; i <= 20; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("msg %d", i)))
	}
	waitCount(t, s, GroupName("demo", TypePostgreSQL), 21)
	waitUntil(t, "failed requests while the collector answers 503", func() bool {
		st, _ := s.ExportStats()
		return st.Failures >= 3 && st.LagRecords == 21
	})
	rc.mu.Lock()
	rc.failing = false
	rc.mu.Unlock()
	waitUntil(t, "21 records exported", func() bool { return len(rc.bodies()) >= 21 })

	// Down: connection refused. Then back on the same address.
	rc.srv.Close()
	for i := 21; i <= 40; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("msg %d", i)))
	}
	waitUntil(t, "lag while the collector is down", func() bool {
		st, _ := s.ExportStats()
		return st.LagRecords == 20 && st.LastError != ""
	})
	rc.listen(t, rc.addr)
	waitUntil(t, "every record exported", func() bool { return len(rc.bodies()) >= 41 })
	time.Sleep(200 * time.Millisecond)
	got := rc.bodies()
	want := append([]string{`relation "nope" does not exist`}, seq("msg", 1, 40)...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %d records:\n%v\nwant\n%v", len(got), got, want)
	}
	rc.mu.Lock()
	first := rc.records[0]
	res := rc.resource
	rc.mu.Unlock()
	if first.SeverityText != "ERROR" || first.SeverityNumber != otlplogs.SeverityNumber_SEVERITY_NUMBER_ERROR ||
		attr(first.Attributes, "db.response.status_code").GetStringValue() != "42P01" ||
		attr(res, "borealis.cluster").GetStringValue() != "demo" ||
		attr(res, "borealis.instance").GetStringValue() != "demo-1" ||
		attr(res, "borealis.log_group").GetStringValue() != "/borealis/cluster/demo/postgresql" ||
		attr(res, "service.instance.id").GetStringValue() != "demo-1" {
		t.Fatalf("first record: %v / resource %v", first, res)
	}
	if d := time.Since(time.Unix(0, int64(first.TimeUnixNano))); d < 0 || d > time.Minute || first.ObservedTimeUnixNano < first.TimeUnixNano-uint64(time.Second) {
		t.Fatalf("timestamps: time %d observed %d", first.TimeUnixNano, first.ObservedTimeUnixNano)
	}
	st, _ := s.ExportStats()
	if st.LagRecords != 0 || st.Exported != 41 || st.Dropped != 0 {
		t.Fatalf("stats: %+v", st)
	}

	// A restarted service resumes from the stored cursor: nothing is sent twice.
	s.Close()
	s = e.start(ExportOptions{Endpoint: "http://" + rc.addr, Interval: 20 * time.Millisecond})
	e.node.write("postgresql-1.json", jsonLine("LOG", "", "msg 41"))
	waitUntil(t, "msg 41 exported", func() bool { return len(rc.bodies()) >= 42 })
	time.Sleep(200 * time.Millisecond)
	if got := rc.bodies(); len(got) != 42 || got[41] != "msg 41" {
		t.Fatalf("after restart: %d records, last %q", len(got), got[len(got)-1])
	}
	if st, _ := s.ExportStats(); st.FromMemory != 1 {
		t.Fatalf("msg 41, sent on time, not from the stream's memory: %+v", st)
	}

	// Records stored while the collector is down and the service restarts are not in the
	// new service's memory: they are read back from the segments, once and in order.
	rc.srv.Close()
	for i := 42; i <= 45; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("msg %d", i)))
	}
	waitCount(t, s, GroupName("demo", TypePostgreSQL), 46)
	s.Close()
	rc.listen(t, rc.addr)
	s = e.start(ExportOptions{Endpoint: "http://" + rc.addr, Interval: 20 * time.Millisecond})
	e.node.write("postgresql-1.json", jsonLine("LOG", "", "msg 46"))
	waitUntil(t, "msg 46 exported", func() bool { return len(rc.bodies()) >= 47 })
	time.Sleep(200 * time.Millisecond)
	if got, want := rc.bodies(), append(append([]string{`relation "nope" does not exist`}, seq("msg", 1, 40)...), seq("msg", 41, 46)...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a restart with records waiting: %v", got[40:])
	}
	if st, _ := s.ExportStats(); st.FromMemory > 1 || st.Exported != 5 {
		t.Fatalf("records stored before the restart should be read back from the segments: %+v", st)
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The reference for otlpwire.go: the same request built from the official messages.

func strAttr(k, v string) *common.KeyValue {
	return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *common.KeyValue {
	return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: v}}}
}

// buildRequest makes one OTLP request (the reference encode is compared with) of one stream's records: the resource is the instance,
// each record carries the PostgreSQL fields as attributes.
//
// The body is a LogsData message: the OTLP protobufs define it as wire-identical to the
// collector's ExportLogsServiceRequest (both are field 1, repeated ResourceLogs), and using it
// keeps the gRPC packages that the collector service's Go package imports out of the daemon.
func buildRequest(group, cluster, typ, instance string, recs []Record, original bool) *otlplogs.LogsData {
	lrs := make([]*otlplogs.LogRecord, 0, len(recs))
	for _, r := range recs {
		l, _, parsed := parseLine([]byte(r.Message))
		lr := &otlplogs.LogRecord{TimeUnixNano: uint64(r.Time) * 1e6, ObservedTimeUnixNano: uint64(r.Ingest) * 1e6}
		attrs := []*common.KeyValue{strAttr("log.record.uid", instance+"/"+strconv.FormatUint(r.Seq, 10))}
		if parsed {
			lr.SeverityText, lr.SeverityNumber = l.Severity, severity(l.Severity)
			lr.Body = &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: l.Message}}
			if l.StateCode != "" {
				attrs = append(attrs, strAttr("db.response.status_code", l.StateCode))
			}
			if l.PID != 0 {
				attrs = append(attrs, intAttr("process.pid", l.PID))
			}
			if l.DBName != "" {
				attrs = append(attrs, strAttr("db.namespace", l.DBName))
			}
			if l.User != "" {
				attrs = append(attrs, strAttr("db.user", l.User))
			}
			if l.BackendType != "" {
				attrs = append(attrs, strAttr("postgresql.backend_type", l.BackendType))
			}
			if original {
				attrs = append(attrs, strAttr("log.record.original", r.Message))
			}
		} else {
			lr.Body = &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: r.Message}}
		}
		lr.Attributes = attrs
		lrs = append(lrs, lr)
	}
	return &otlplogs.LogsData{ResourceLogs: []*otlplogs.ResourceLogs{{
		Resource: &resource.Resource{Attributes: []*common.KeyValue{strAttr("service.name", "borealis"),
			strAttr("service.instance.id", instance), strAttr("borealis.cluster", cluster), strAttr("borealis.instance", instance),
			strAttr("borealis.log_group", group), strAttr("borealis.log_type", typ)}},
		ScopeLogs: []*otlplogs.ScopeLogs{{Scope: &common.InstrumentationScope{Name: "github.com/borealisdb/borealis/controlplane/logs"}, LogRecords: lrs}},
	}}}
}

// TestWireRequestMatchesOfficialMessages: the hand-written request decodes, with the official
// messages, to exactly the request built from them, for parsed and unparsed lines; buffers
// reused from a larger batch leave nothing behind.
func TestWireRequestMatchesOfficialMessages(t *testing.T) {
	recs := []Record{
		{Seq: 1, Time: 1700000000123, Ingest: 1700000000456, Message: jsonLine("ERROR", "42P01", `relation "nope" does not exist`)},
		{Seq: 2, Time: 1700000000124, Ingest: 1700000000457, Message: jsonLine("LOG", "", "statement: SELECT 'é', \"q\"\n")},
		{Seq: 300, Time: 1, Ingest: 2, Message: "not json at all"},
		{Seq: 1 << 40, Time: 1700000000125, Ingest: 1700000000458, Message: `{"error_severity":"PANIC","pid":-3,"message":""}`},
	}
	for i := range recs {
		recs[i].Message = strings.TrimSuffix(recs[i].Message, "\n")
	}
	for _, original := range []bool{false, true} {
		w := wireRequest{original: original}
		for _, batch := range [][]Record{recs, recs[:1], recs[2:]} {
			want := buildRequest("/borealis/cluster/demo/postgresql", "demo", "postgresql", "demo-1", batch, original)
			var got otlplogs.LogsData
			items := make([]exportItem, len(batch))
			for i, r := range batch {
				items[i] = recordItem(r)
			}
			if err := proto.Unmarshal(w.encode("/borealis/cluster/demo/postgresql", "demo", "postgresql", "demo-1", items), &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, want) {
				t.Fatalf("original %v: wire request decodes to\n%v\nwant\n%v", original, &got, want)
			}
			if n := strings.Count(string(w.out), "log.record.original"); (n > 0) != original {
				t.Fatalf("original %v: log.record.original %d times", original, n)
			}
		}
	}
}

// TestExportFromMemoryMatchesSegments: records the exporter takes from a stream's memory
// (the node's bytes and the tailer's field spans) encode to the request built, with the
// official messages, from the same records read back from the segment: escapes, invalid
// UTF-8, unparsed lines, checkpoints between events, and a batch split across segments.
func TestExportFromMemoryMatchesSegments(t *testing.T) {
	old := segmentBytes
	segmentBytes = 2 << 10
	defer func() { segmentBytes = old }()
	st, err := openStream(t.TempDir(), "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	st.keepRecentUpTo(1 << 20)
	raw := []string{
		jsonLine("ERROR", "42P01", `relation "nope" does not exist`),
		jsonLine("LOG", "", "statement: SELECT 'é', \"q\"\n\ttab \\ end"),
		"not json at all \xff\xfe",
		`{"timestamp":"2026-12-01 10:00:00.123 UTC","error_severity":"LOG","message":"bad utf-8 \xff here \u00e9 \ud83d\ude00"}`,
		`{"error_severity":"PANIC","pid":-3,"message":""}`,
		`{"Error_Severity":"ERROR","message":"case"}`,
		`{"error_severity":"WARNING","message":"x","dbname":null,"user":"u\u0000v"}`,
	}
	var tc tsCache
	var lines []pending
	for i := 0; i < 40; i++ {
		l := []byte(strings.TrimSuffix(raw[i%len(raw)], "\n"))
		_, ms, f, fok := route(TypePostgreSQL, l, &tc)
		lines = append(lines, pending{time: ms, off: int64(i + 1), msg: l, f: f, fok: fok})
	}
	if err := st.appendLines("postgresql-1.json", lines[:25]); err != nil {
		t.Fatal(err)
	}
	if err := st.append([]Record{{Src: "postgresql-1.json", Off: 26, Checkpoint: true}}); err != nil {
		t.Fatal(err)
	}
	if err := st.appendLines("postgresql-1.json", lines[25:]); err != nil {
		t.Fatal(err)
	}
	w := wireRequest{original: true}
	for _, from := range []uint64{1, 7, 25, 26, 27} {
		var items []exportItem
		var body []byte
		ok := st.withRecent(from, 30, func(refs []recentRef) {
			for _, r := range refs {
				if !r.checkpoint() {
					m := r.rec()
					items = append(items, exportItem{seq: r.seq(), time: m.time, ingest: m.ingest, line: r.line(), f: m.f, fok: m.fok})
				}
			}
			body = append([]byte(nil), w.encode("/borealis/cluster/demo/postgresql", "demo", "postgresql", "demo-1", items)...)
		})
		if !ok {
			t.Fatalf("from %d: not in memory", from)
		}
		var recs []Record
		st.read(from, func(r Record) bool { recs = append(recs, r); return len(recs) < len(items) })
		if len(recs) != len(items) || len(items) == 0 || items[0].seq != recs[0].Seq {
			t.Fatalf("from %d: %d records in memory, %d read back", from, len(items), len(recs))
		}
		want := buildRequest("/borealis/cluster/demo/postgresql", "demo", "postgresql", "demo-1", recs, true)
		var got otlplogs.LogsData
		if err := proto.Unmarshal(body, &got); err != nil {
			t.Fatalf("from %d: %v", from, err)
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("from %d: wire request decodes to\n%v\nwant\n%v", from, &got, want)
		}
	}
	if st.withRecent(0, 10, func([]recentRef) {}) {
		t.Fatal("a record before memory's first reported as in memory")
	}
}

// TestExportSendsOnlySyncedRecords: records are written per batch and fsynced at most once
// per SyncInterval; the exporter sends none that is not synced yet (an OS crash may take
// them back), from memory or from the segments, and sends them once synced. A stream opened
// again after a kill -9 (written, never synced or closed) finds them and syncs them first.
func TestExportSendsOnlySyncedRecords(t *testing.T) {
	dir := t.TempDir()
	st, err := openStream(dir, "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	st.keepRecentUpTo(1 << 20)
	var tc tsCache
	var lines []pending
	for i := 0; i < 10; i++ {
		l := []byte(strings.TrimSuffix(jsonLine("LOG", "", fmt.Sprintf("line %d", i)), "\n"))
		_, ms, f, fok := route(TypePostgreSQL, l, &tc)
		lines = append(lines, pending{time: ms, off: int64(i + 1), msg: l, f: f, fok: fok})
	}
	if err := st.appendLines("postgresql-1.json", lines[:4]); err != nil {
		t.Fatal(err)
	}
	if synced, err := st.syncIfDue(time.Hour); err != nil || synced {
		t.Fatalf("synced before its interval: %v %v", synced, err)
	}
	inMemory := func(from uint64) int {
		n := 0
		if !st.withRecent(from, 100, func(refs []recentRef) { n = len(refs) }) {
			t.Fatalf("from %d: not in memory", from)
		}
		return n
	}
	if n := inMemory(1); n != 0 || st.durableSeq() != 0 {
		t.Fatalf("unsynced records offered to the exporter: %d (durable %d)", n, st.durableSeq())
	}
	if synced, err := st.syncIfDue(0); err != nil || !synced {
		t.Fatalf("sync: %v %v", synced, err)
	}
	if err := st.appendLines("postgresql-1.json", lines[4:]); err != nil {
		t.Fatal(err)
	}
	if n := inMemory(1); n != 4 || st.durableSeq() != 4 {
		t.Fatalf("%d records offered, durable %d; want 4 and 4", n, st.durableSeq())
	}

	// kill -9: the stream is neither synced nor closed; the page cache holds the records.
	st2, err := openStream(dir, "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	defer st2.close()
	if st2.durableSeq() != 10 || st2.next != 11 {
		t.Fatalf("reopened: durable %d, next %d; want 10, 11", st2.durableSeq(), st2.next)
	}
	if src, off := st2.position(); src != "postgresql-1.json" || off != 10 {
		t.Fatalf("reopened at %s:%d", src, off)
	}
	st.active.Close()
}

// TestServiceExportsAfterSync: with a sync interval longer than the test, the collector
// stores lines (readers see them) but the exporter sends none; a flush syncs them and the
// exporter sends each once.
func TestServiceExportsAfterSync(t *testing.T) {
	e := newEnv(t, []string{TypePostgreSQL})
	rc := &receiver{}
	rc.listen(t, "127.0.0.1:0")
	defer rc.srv.Close()
	s, err := New(Options{Home: e.home, Store: e.st, Logf: t.Logf, Poll: 20 * time.Millisecond, SyncInterval: time.Hour,
		Export: ExportOptions{Endpoint: "http://" + rc.addr, Interval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	for i := 1; i <= 5; i++ {
		e.node.write("postgresql-1.json", jsonLine("LOG", "", fmt.Sprintf("line %d", i)))
	}
	pg := GroupName("demo", TypePostgreSQL)
	if got := waitCount(t, s, pg, 5); len(got) != 5 {
		t.Fatalf("stored %v", got)
	}
	time.Sleep(300 * time.Millisecond) // some 15 export intervals
	if got := rc.bodies(); len(got) != 0 {
		t.Fatalf("exported before the records were synced: %v", got)
	}
	s.Flush("demo")
	deadline := time.Now().Add(20 * time.Second)
	for len(rc.bodies()) < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if got := strings.Join(rc.bodies(), ","); got != strings.Join(seq("line", 1, 5), ",") {
		t.Fatalf("exported after the flush: %s", got)
	}
}

// TestRecentForgetsExportedBatches: memory holds only what the exporter has still to send:
// batches wholly below its cursor are let go, a batch it is in the middle of stays.
func TestRecentForgetsExportedBatches(t *testing.T) {
	st, err := openStream(t.TempDir(), "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	st.keepRecentUpTo(1 << 20)
	var tc tsCache
	for b := 0; b < 3; b++ { // three batches of 4: records 1-4, 5-8, 9-12
		var lines []pending
		for i := 0; i < 4; i++ {
			l := []byte(strings.TrimSuffix(jsonLine("LOG", "", fmt.Sprintf("line %d", 4*b+i+1)), "\n"))
			_, ms, f, fok := route(TypePostgreSQL, l, &tc)
			lines = append(lines, pending{time: ms, off: int64(4*b + i + 1), msg: l, f: f, fok: fok})
		}
		if err := st.appendLines("postgresql-1.json", lines); err != nil {
			t.Fatal(err)
		}
	}
	st.syncIfDue(0)
	held := func() (n int, first uint64) {
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(st.recent) > 0 {
			first = st.recent[0].first
		}
		return len(st.recent), first
	}
	st.exportedUpTo(7) // in the middle of the second batch
	if n, first := held(); n != 2 || first != 5 {
		t.Fatalf("after sending 1-6: %d batches from %d; want 2 from 5", n, first)
	}
	if !st.withRecent(7, 100, func(refs []recentRef) {
		if len(refs) != 6 || refs[0].seq() != 7 {
			t.Fatalf("from 7: %d records from %d", len(refs), refs[0].seq())
		}
	}) {
		t.Fatal("record 7 not in memory")
	}
	if st.withRecent(4, 100, func([]recentRef) {}) {
		t.Fatal("a forgotten record reported as in memory")
	}
	st.exportedUpTo(13)
	if n, _ := held(); n != 0 {
		t.Fatalf("after sending everything: %d batches held", n)
	}
}
