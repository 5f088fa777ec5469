package logs

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	common "go.opentelemetry.io/proto/otlp/common/v1"
	otlplogs "go.opentelemetry.io/proto/otlp/logs/v1"
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
		attr(first.Attributes, "borealis.cluster").GetStringValue() != "demo" ||
		attr(first.Attributes, "borealis.instance").GetStringValue() != "demo-1" ||
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
