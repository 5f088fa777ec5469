package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	otlplogs "go.opentelemetry.io/proto/otlp/logs/v1"
)

// ExportOptions configure the OTLP/HTTP exporter.
type ExportOptions struct {
	// Endpoint is the collector's logs URL (http://host:4318/v1/logs); a URL without a path
	// gets /v1/logs, as OTEL_EXPORTER_OTLP_ENDPOINT does.
	Endpoint string
	// Batch is the most records in one request; 0 means 2048 (about 1 MiB of pgbench
	// statements; fewer, larger requests keep the exporter within the streams' memory).
	Batch int
	// Interval is how often stores are checked for new records, besides each time the
	// collector stores a batch; 0 means 500 ms.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after a failed request; 0 means 500 ms
	// and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request; 0 means 10 s.
	Timeout time.Duration
	// Original adds each record's jsonlog line as the attribute log.record.original (the
	// OpenTelemetry convention for it is "MAY"). Off by default: the body and attributes carry
	// the message, severity, times, SQLSTATE, pid, database, user and backend type, and the
	// line would double the bytes sent (and the collector's CPU for them).
	Original bool
}

// ExportStats are the exporter's counters, for metrics.
type ExportStats struct {
	Exported   int64   // records the collector accepted
	FromMemory int64   // records sent from the streams' memory of recent batches (the others were read back from segments)
	Dropped    int64   // records never exported: expired before export, or refused (4xx) by the collector
	Failures   int64   // failed requests (retried)
	LagRecords int64   // records stored but not yet exported
	LagSeconds float64 // age of the oldest record not yet exported
	LastError  string
	Backoff    time.Duration
}

// exporter ships every group's streams, each from its own cursor (a file beside the stream:
// the next sequence number to send), so a collector that is down loses nothing: records wait
// in the local store and are sent, in order, once it answers. Delivery is at least once: a
// crash between a collector's answer and the cursor's write sends that batch again.
type exporter struct {
	s      *Service
	opts   ExportOptions
	client *http.Client

	// Used by the run goroutine only.
	wire  wireRequest
	items []exportItem

	mu          sync.Mutex
	cursors     map[string]uint64   // by stream dir
	cursorFiles map[string]*os.File // by stream dir, open for setCursor
	stats       ExportStats

	stop   chan struct{}
	done   chan struct{}
	stored chan struct{} // a batch was stored: export now rather than at the next interval
}

// wake tells the exporter that records were stored.
func (e *exporter) wake() {
	select {
	case e.stored <- struct{}{}:
	default:
	}
}

func newExporter(s *Service, o ExportOptions) *exporter {
	if !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(o.Endpoint, "http://"), "https://"), "/") {
		o.Endpoint = strings.TrimRight(o.Endpoint, "/") + "/v1/logs"
	}
	if o.Batch == 0 {
		o.Batch = 2048
	}
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	return &exporter{s: s, opts: o, wire: wireRequest{original: o.Original}, client: &http.Client{Timeout: o.Timeout}, cursors: map[string]uint64{},
		cursorFiles: map[string]*os.File{}, stored: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (e *exporter) start() { go e.run() }

func (e *exporter) close() {
	close(e.stop)
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, f := range e.cursorFiles {
		f.Close()
		delete(e.cursorFiles, k)
	}
}

func cursorPath(st *stream) string { return filepath.Join(st.dir, "export.cursor") }

func (e *exporter) cursor(st *stream) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.cursors[st.dir]; ok {
		return c
	}
	c := uint64(1)
	if data, err := os.ReadFile(cursorPath(st)); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil {
			c = v
		}
	}
	e.cursors[st.dir] = c
	return c
}

// setCursor records the next sequence number to send, in place: one pwrite of a fixed-width
// line into a file kept open (a process crash cannot tear a write; the previous write-and-
// rename cost more than the records of a batch).
func (e *exporter) setCursor(st *stream, c uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cursors[st.dir] = c
	f := e.cursorFiles[st.dir]
	if f == nil {
		var err error
		if f, err = os.OpenFile(cursorPath(st), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return err
		}
		e.cursorFiles[st.dir] = f
	}
	var b [21]byte
	v := strconv.AppendUint(b[:0], c, 10)
	line := append(append(bytes.Repeat([]byte{'0'}, 20-len(v)), v...), '\n')
	_, err := f.WriteAt(line, 0)
	return err
}

// forget drops a deleted group's cursors.
func (e *exporter) forget(group string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prefix := groupDir(e.s.root, group) + string(os.PathSeparator)
	for k := range e.cursors {
		if strings.HasPrefix(k, prefix) {
			delete(e.cursors, k)
		}
	}
	for k, f := range e.cursorFiles {
		if strings.HasPrefix(k, prefix) {
			f.Close()
			delete(e.cursorFiles, k)
		}
	}
}

// segmentDropped counts the records of a dropped segment the cursor had not reached.
func (e *exporter) segmentDropped(group string, sg segInfo) {
	c := e.cursor(sg.s)
	if sg.end <= c {
		return
	}
	e.mu.Lock()
	e.stats.Dropped += int64(sg.end - max(c, sg.first))
	e.mu.Unlock()
	_ = e.setCursor(sg.s, sg.end)
}

// Stats returns the exporter's counters, with the lag measured now.
func (e *exporter) Stats() ExportStats {
	var lag int64
	var oldest int64
	for _, g := range e.s.groupList() {
		for _, st := range g.streamList() {
			c := e.cursor(st)
			st.mu.Lock()
			next := st.next
			st.mu.Unlock()
			if next > c {
				lag += int64(next - c)
				_ = st.read(c, func(r Record) bool {
					if oldest == 0 || r.Ingest < oldest {
						oldest = r.Ingest
					}
					return false
				})
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.stats
	out.LagRecords = lag
	if oldest > 0 {
		out.LagSeconds = time.Since(time.UnixMilli(oldest)).Seconds()
	}
	return out
}

func (e *exporter) run() {
	defer close(e.done)
	backoff := time.Duration(0)
	for {
		wait := e.opts.Interval
		sent, err := e.exportOnce()
		switch {
		case err != nil:
			backoff = min(max(backoff*2, e.opts.MinBackoff), e.opts.MaxBackoff)
			wait = backoff
			e.mu.Lock()
			e.stats.Failures++
			e.stats.LastError, e.stats.Backoff = err.Error(), backoff
			e.mu.Unlock()
		case sent:
			backoff, wait = 0, 0 // more may be waiting
			e.mu.Lock()
			e.stats.Backoff = 0
			e.mu.Unlock()
		default:
			backoff = 0
		}
		var woken <-chan struct{}
		if err == nil {
			woken = e.stored // not while backing off from a failing collector
		}
		select {
		case <-e.stop:
			return
		case <-woken:
		case <-time.After(wait):
		}
	}
}

// exportOnce sends one batch of every stream that has records past its cursor.
func (e *exporter) exportOnce() (bool, error) {
	sent := false
	for _, g := range e.s.groupList() {
		for _, st := range g.streamList() {
			n, err := e.exportStream(g, st)
			if err != nil {
				return sent, err
			}
			sent = sent || n > 0
		}
	}
	return sent, nil
}

func (e *exporter) exportStream(g *Group, st *stream) (int, error) {
	c := e.cursor(st)
	cluster, typ, _ := ParseGroupName(g.Name())
	items := e.items[:0]
	last := uint64(0)
	skipped := uint64(0) // checkpoints read past, when no event follows them
	var body []byte
	// Records stored lately are encoded from memory, under the stream's lock (their buffers
	// are reused once the stream lets them go); older ones are read back from the segments.
	inMemory := st.withRecent(c, e.opts.Batch, func(refs []recentRef) {
		for _, r := range refs {
			skipped = r.seq()
			if !r.checkpoint() {
				m := r.rec()
				items = append(items, exportItem{seq: r.seq(), time: m.time, ingest: m.ingest, line: r.line(), f: m.f, fok: m.fok})
				last = r.seq()
			}
		}
		if len(items) > 0 {
			body = e.wire.encode(g.Name(), cluster, typ, st.name, items)
		}
	})
	if inMemory {
		e.mu.Lock()
		e.stats.FromMemory += int64(len(items))
		e.mu.Unlock()
	} else {
		durable := st.durableSeq()
		err := st.read(c, func(r Record) bool {
			if r.Seq > durable {
				return false // written but not yet synced: sent after the next sync
			}
			items = append(items, recordItem(r))
			last = r.Seq
			return len(items) < e.opts.Batch
		})
		if err != nil {
			return 0, err
		}
		if len(items) > 0 {
			body = e.wire.encode(g.Name(), cluster, typ, st.name, items)
		}
	}
	n := len(items)
	clear(items)
	e.items = items[:0]
	if n == 0 {
		if skipped >= c {
			st.exportedUpTo(skipped + 1)
			return 0, e.setCursor(st, skipped+1) // only checkpoints: nothing to send
		}
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", e.opts.Endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("OTLP collector %s: %w", e.opts.Endpoint, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		e.mu.Lock()
		e.stats.Exported += int64(n)
		e.mu.Unlock()
	case resp.StatusCode == 429 || resp.StatusCode >= 500 || resp.StatusCode == 408:
		return 0, fmt.Errorf("OTLP collector %s answered %s (retrying)", e.opts.Endpoint, resp.Status)
	default:
		// The collector refuses this data for good (OTLP: do not retry other 4xx).
		e.mu.Lock()
		e.stats.Dropped += int64(n)
		e.stats.LastError = fmt.Sprintf("OTLP collector %s refused %d records: %s", e.opts.Endpoint, n, resp.Status)
		e.mu.Unlock()
	}
	st.exportedUpTo(last + 1)
	return n, e.setCursor(st, last+1)
}

// severity maps PostgreSQL's levels to OpenTelemetry's severity numbers.
func severity(pg string) otlplogs.SeverityNumber {
	switch pg {
	case "DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "DEBUG":
		return otlplogs.SeverityNumber_SEVERITY_NUMBER_DEBUG
	case "INFO", "LOG":
		return otlplogs.SeverityNumber_SEVERITY_NUMBER_INFO
	case "NOTICE":
		return otlplogs.SeverityNumber_SEVERITY_NUMBER_INFO2
	case "WARNING":
		return otlplogs.SeverityNumber_SEVERITY_NUMBER_WARN
	case "ERROR":
		return otlplogs.SeverityNumber_SEVERITY_NUMBER_ERROR
	case "FATAL":
		return otlplogs.SeverityNumber_SEVERITY_NUMBER_FATAL
	case "PANIC":
		return otlplogs.SeverityNumber_SEVERITY_NUMBER_FATAL4
	}
	return otlplogs.SeverityNumber_SEVERITY_NUMBER_UNSPECIFIED
}

// ExportStats returns the exporter's counters; ok is false when export is not configured.
func (s *Service) ExportStats() (ExportStats, bool) {
	if s.exporter == nil {
		return ExportStats{}, false
	}
	return s.exporter.Stats(), true
}
