package logs

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// pgbenchLines writes n jsonlog lines of the shape log_statement = all gives pgbench -S.
func pgbenchLines(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	now := time.Now().UTC()
	var size int64
	for i := 0; i < n; i++ {
		line, _ := json.Marshal(map[string]any{"timestamp": now.Format("2006-01-02 15:04:05.000 MST"), "user": "postgres", "dbname": "postgres",
			"pid": 1000 + i%8, "remote_host": "127.0.0.1", "remote_port": 40000 + i%8, "session_id": "6564a1b2.3e8", "line_num": i,
			"ps": "SELECT", "session_start": "2026-01-01 00:00:00 UTC", "vxid": "3/" + strconv.Itoa(i), "txid": 0, "error_severity": "LOG",
			"message":          fmt.Sprintf("statement: SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i*7919%1000000),
			"application_name": "pgbench", "backend_type": "client backend", "query_id": 0})
		line = append(line, '\n')
		f.Write(line)
		size += int64(len(line))
	}
	return size
}

// BenchmarkCollect is the tailer and the stream: reading a jsonlog file into a group.
func BenchmarkCollect(b *testing.B) {
	dir := b.TempDir()
	logDir := filepath.Join(dir, "node", "log")
	os.MkdirAll(logDir, 0o700)
	pgbenchLines(b, filepath.Join(logDir, "postgresql-1.json"), b.N)
	st, err := openStream(filepath.Join(dir, "stream"), "bench-1")
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	tl := newTailer("bench", "bench-1", TypePostgreSQL, logDir, st)
	b.ReportAllocs()
	b.ResetTimer()
	total := 0
	for total < b.N {
		_, n, err := tl.step(false)
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
}

// BenchmarkExport is the exporter: stored records to OTLP/HTTP requests (the receiver reads
// and discards the bodies).
func BenchmarkExport(b *testing.B) {
	e := newEnv(b, []string{TypePostgreSQL})
	pgbenchLines(b, filepath.Join(e.node.logDir, "postgresql-1.json"), b.N)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	// Not started (collection and export are stepped here), so not closed either.
	s, err := New(Options{Home: e.home, Store: e.st})
	if err != nil {
		b.Fatal(err)
	}
	ex := newExporter(s, ExportOptions{Endpoint: srv.URL})
	s.syncTailers()
	for s.Snapshot().Ingested[GroupName("demo", TypePostgreSQL)] < int64(b.N) {
		s.collectOnce(false, "")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for {
		sent, err := ex.exportOnce()
		if err != nil {
			b.Fatal(err)
		}
		if !sent {
			break
		}
	}
	b.StopTimer()
	if st := ex.Stats(); st.Exported != int64(b.N) {
		b.Fatalf("exported %d of %d", st.Exported, b.N)
	}
}

// BenchmarkCollectAndExport is the pipeline as `borealis serve` runs it, stepped: a batch is
// collected (one read), then exported from the stream's memory (the receiver, in this process,
// reads and discards).
func BenchmarkCollectAndExport(b *testing.B) {
	e := newEnv(b, []string{TypePostgreSQL})
	pgbenchLines(b, filepath.Join(e.node.logDir, "postgresql-1.json"), b.N)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	s, err := New(Options{Home: e.home, Store: e.st, Export: ExportOptions{Endpoint: srv.URL}})
	if err != nil {
		b.Fatal(err)
	}
	ex := s.exporter // not started: stepped here
	s.syncTailers()
	b.ReportAllocs()
	b.ResetTimer()
	var tl *tailer
	for _, t := range s.tailers {
		tl = t
	}
	cpu0 := processCPU()
	for ex.Stats().Exported < int64(b.N) {
		if _, _, err := tl.step(false); err != nil { // one read of up to 1 MiB
			b.Fatal(err)
		}
		if _, err := tl.s.syncIfDue(0); err != nil { // as the service does every SyncInterval
			b.Fatal(err)
		}
		for {
			sent, err := ex.exportOnce()
			if err != nil {
				b.Fatal(err)
			}
			if !sent {
				break
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/line")
	if st := ex.Stats(); st.FromMemory != int64(b.N) {
		b.Fatalf("%d of %d records exported from memory", st.FromMemory, b.N)
	}
}

// processCPU is the CPU this process used (user and system), the receiver's included.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
