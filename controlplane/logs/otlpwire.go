package logs

import (
	"strconv"

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
}

func appendLenField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStringField(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// appendAnyString appends field num holding AnyValue{string_value: v}.
func appendAnyString(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(v))))
	return appendStringField(b, 1, v)
}

// appendStrAttr appends field num holding KeyValue{key: k, value: {string_value: v}}.
func appendStrAttr(b []byte, num protowire.Number, k, v string) []byte {
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

// encode writes one OTLP request (a LogsData message) of one stream's records: the resource
// is the instance, each record carries the PostgreSQL fields as attributes. The result is
// valid until the next call.
//
// LogsData is wire-identical to the collector's ExportLogsServiceRequest (both are field 1,
// repeated ResourceLogs); writing it keeps the gRPC packages that the collector service's Go
// package imports out of the daemon.
func (w *wireRequest) encode(group, cluster, typ, instance string, recs []Record) []byte {
	scope := w.scope[:0]
	scope = protowire.AppendTag(scope, 1, protowire.BytesType)
	scope = protowire.AppendVarint(scope, uint64(1+protowire.SizeBytes(len(scopeName))))
	scope = appendStringField(scope, 1, scopeName)
	uidPrefix := instance + "/"
	var uid []byte
	for i := range recs {
		r := &recs[i]
		l, _, parsed := parseLine([]byte(r.Message))
		rec := w.rec[:0]
		rec = protowire.AppendTag(rec, 1, protowire.Fixed64Type)
		rec = protowire.AppendFixed64(rec, uint64(r.Time)*1e6)
		if parsed {
			if sev := severity(l.Severity); sev != 0 {
				rec = protowire.AppendTag(rec, 2, protowire.VarintType)
				rec = protowire.AppendVarint(rec, uint64(sev))
			}
			if l.Severity != "" {
				rec = appendStringField(rec, 3, l.Severity)
			}
			rec = appendAnyString(rec, 5, l.Message)
		} else {
			rec = appendAnyString(rec, 5, r.Message)
		}
		rec = appendStrAttr(rec, 6, "borealis.cluster", cluster)
		rec = appendStrAttr(rec, 6, "borealis.instance", instance)
		rec = appendStrAttr(rec, 6, "borealis.log_group", group)
		uid = strconv.AppendUint(append(uid[:0], uidPrefix...), r.Seq, 10)
		rec = appendStrAttr(rec, 6, "log.record.uid", string(uid))
		if parsed {
			if l.StateCode != "" {
				rec = appendStrAttr(rec, 6, "db.response.status_code", l.StateCode)
			}
			if l.PID != 0 {
				rec = appendIntAttr(rec, 6, "process.pid", l.PID)
			}
			if l.DBName != "" {
				rec = appendStrAttr(rec, 6, "db.namespace", l.DBName)
			}
			if l.User != "" {
				rec = appendStrAttr(rec, 6, "db.user", l.User)
			}
			if l.BackendType != "" {
				rec = appendStrAttr(rec, 6, "postgresql.backend_type", l.BackendType)
			}
			rec = appendStrAttr(rec, 6, "log.record.original", r.Message)
		}
		rec = protowire.AppendTag(rec, 11, protowire.Fixed64Type)
		rec = protowire.AppendFixed64(rec, uint64(r.Ingest)*1e6)
		scope = appendLenField(scope, 2, rec)
		w.rec = rec
	}
	w.scope = scope

	rl := w.rl[:0]
	res := make([]byte, 0, 256)
	res = appendStrAttr(res, 1, "service.name", "borealis")
	res = appendStrAttr(res, 1, "service.instance.id", instance)
	res = appendStrAttr(res, 1, "borealis.cluster", cluster)
	res = appendStrAttr(res, 1, "borealis.log_type", typ)
	rl = appendLenField(rl, 1, res)
	rl = appendLenField(rl, 2, scope)
	w.rl = rl

	w.out = appendLenField(w.out[:0], 1, rl)
	return w.out
}
