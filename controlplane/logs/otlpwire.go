package logs

import (
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The export request is written in the protobuf wire format directly: building the official
// Go messages (a dozen small objects a record) and marshalling them by reflection was most of
// the exporter's CPU. The tests decode what this writes with the official messages
// (go.opentelemetry.io/proto/otlp) and compare it with the same request built from them.
//
// Field numbers, from opentelemetry/proto/logs/v1/logs.proto and common/v1/common.proto:
//   LogsData.resource_logs = 1; ResourceLogs.resource = 1, .scope_logs = 2;
//   Resource.attributes = 1; ScopeLogs.scope = 1, .log_records = 2; InstrumentationScope.name = 1;
//   LogRecord.time_unix_nano = 1 (fixed64), .severity_number = 2, .severity_text = 3, .body = 5,
//   .attributes = 6, .observed_time_unix_nano = 11 (fixed64);
//   KeyValue.key = 1, .value = 2; AnyValue.string_value = 1, .int_value = 3.

const scopeName = "github.com/borealisdb/borealis/controlplane/logs"

// wireRequest holds the buffers of one request, reused from one batch to the next.
type wireRequest struct {
	out, rl, scope, rec []byte
	original            bool // add log.record.original (ExportOptions.Original)
}

func appendLenField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStringField[T []byte | string](b []byte, num protowire.Number, v T) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendAnyString appends field num holding AnyValue{string_value: v}.
func appendAnyString[T []byte | string](b []byte, num protowire.Number, v T) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(v))))
	return appendStringField(b, 1, v)
}

// appendStrAttr appends field num holding KeyValue{key: k, value: {string_value: v}}.
func appendStrAttr[T []byte | string](b []byte, num protowire.Number, k string, v T) []byte {
	any := 1 + protowire.SizeBytes(len(v))
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(k))+1+protowire.SizeBytes(any)))
	b = appendStringField(b, 1, k)
	return appendAnyString(b, 2, v)
}

func appendIntAttr(b []byte, num protowire.Number, k string, v int64) []byte {
	any := 1 + protowire.SizeVarint(uint64(v))
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(k))+1+protowire.SizeBytes(any)))
	b = appendStringField(b, 1, k)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(any))
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// exportItem is one record to send: its node line and, when the tailer scanned it (fok), the
// line's fields.
type exportItem struct {
	seq          uint64
	time, ingest int64
	line         []byte
	f            lineFields
	fok          bool
}

// recordItem is a record read back from a segment (its message is valid UTF-8).
func recordItem(r Record) exportItem {
	line := []byte(r.Message)
	f, fok := scanFields(line)
	return exportItem{seq: r.Seq, time: r.Time, ingest: r.Ingest, line: line, f: f, fok: fok}
}

// exportFields are the attributes of a line, from its spans (nothing copied unless
// unescaped); ok is false when one needs what only parseLine does.
type exportFields struct {
	sev, state, msg, btype, user, db []byte
	pid                              int64
}

func (it *exportItem) fields() (exportFields, bool) {
	var x exportFields
	var ok [6]bool
	x.sev, ok[0] = text(it.f.sev.in(it.line))
	x.state, ok[1] = text(it.f.state.in(it.line))
	x.msg, ok[2] = text(it.f.msg.in(it.line))
	x.btype, ok[3] = text(it.f.btype.in(it.line))
	x.user, ok[4] = text(it.f.user.in(it.line))
	x.db, ok[5] = text(it.f.db.in(it.line))
	x.pid = it.f.pid
	return x, ok == [6]bool{true, true, true, true, true, true}
}

// encode writes one OTLP request (a LogsData message) of one stream's records: the resource
// is the instance (its cluster, instance and log group are resource attributes, said once per
// request rather than once per record), each record carries the PostgreSQL fields as
// attributes. The result is valid until the next call.
//
// LogsData is wire-identical to the collector's ExportLogsServiceRequest (both are field 1,
// repeated ResourceLogs); writing it keeps the gRPC packages that the collector service's Go
// package imports out of the daemon.
func (w *wireRequest) encode(group, cluster, typ, instance string, items []exportItem) []byte {
	scope := w.scope[:0]
	scope = protowire.AppendTag(scope, 1, protowire.BytesType)
	scope = protowire.AppendVarint(scope, uint64(1+protowire.SizeBytes(len(scopeName))))
	scope = appendStringField(scope, 1, scopeName)
	uidPrefix := instance + "/"
	var uid []byte
	for i := range items {
		it := &items[i]
		var x exportFields
		parsed := false
		if it.fok {
			x, parsed = it.fields()
		}
		if !parsed {
			var l pgLine
			if l, _, parsed = parseLine(it.line); parsed {
				x = exportFields{sev: []byte(l.Severity), state: []byte(l.StateCode), msg: []byte(l.Message),
					btype: []byte(l.BackendType), user: []byte(l.User), db: []byte(l.DBName), pid: l.PID}
			}
		}
		original := it.line
		if !utf8.Valid(original) {
			original = []byte(validText(original))
		}
		rec := w.rec[:0]
		rec = protowire.AppendTag(rec, 1, protowire.Fixed64Type)
		rec = protowire.AppendFixed64(rec, uint64(it.time)*1e6)
		if parsed {
			if sev := severity(string(x.sev)); sev != 0 {
				rec = protowire.AppendTag(rec, 2, protowire.VarintType)
				rec = protowire.AppendVarint(rec, uint64(sev))
			}
			if len(x.sev) > 0 {
				rec = appendStringField(rec, 3, x.sev)
			}
			rec = appendAnyString(rec, 5, x.msg)
		} else {
			rec = appendAnyString(rec, 5, original)
		}
		uid = strconv.AppendUint(append(uid[:0], uidPrefix...), it.seq, 10)
		rec = appendStrAttr(rec, 6, "log.record.uid", uid)
		if parsed {
			if len(x.state) > 0 {
				rec = appendStrAttr(rec, 6, "db.response.status_code", x.state)
			}
			if x.pid != 0 {
				rec = appendIntAttr(rec, 6, "process.pid", x.pid)
			}
			if len(x.db) > 0 {
				rec = appendStrAttr(rec, 6, "db.namespace", x.db)
			}
			if len(x.user) > 0 {
				rec = appendStrAttr(rec, 6, "db.user", x.user)
			}
			if len(x.btype) > 0 {
				rec = appendStrAttr(rec, 6, "postgresql.backend_type", x.btype)
			}
			if w.original {
				rec = appendStrAttr(rec, 6, "log.record.original", original)
			}
		}
		rec = protowire.AppendTag(rec, 11, protowire.Fixed64Type)
		rec = protowire.AppendFixed64(rec, uint64(it.ingest)*1e6)
		scope = appendLenField(scope, 2, rec)
		w.rec = rec
	}
	w.scope = scope

	rl := w.rl[:0]
	res := make([]byte, 0, 256)
	res = appendStrAttr(res, 1, "service.name", "borealis")
	res = appendStrAttr(res, 1, "service.instance.id", instance)
	res = appendStrAttr(res, 1, "borealis.cluster", cluster)
	res = appendStrAttr(res, 1, "borealis.instance", instance)
	res = appendStrAttr(res, 1, "borealis.log_group", group)
	res = appendStrAttr(res, 1, "borealis.log_type", typ)
	rl = appendLenField(rl, 1, res)
	rl = appendLenField(rl, 2, scope)
	w.rl = rl

	w.out = appendLenField(w.out[:0], 1, rl)
	return w.out
}
