package logs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The collector's hand-written JSON must agree with encoding/json on every input: the stored
// records (written by appendRecord, read by decodeRecord, and by encoding/json in older
// segments) and the jsonlog fields taken from a node's lines.

func FuzzRecordCodec(f *testing.F) {
	f.Add(uint64(1), int64(1700000000123), int64(1700000000456), `{"timestamp":"2026-12-01 10:00:00.123 UTC","message":"a \"q\" \\ tab\t nl\n é \u2028 <&>"}`, "postgresql-1.json", int64(42), false)
	f.Add(uint64(0), int64(0), int64(0), "", "", int64(0), true)
	f.Add(uint64(18446744073709551615), int64(-5), int64(9), "bad utf-8 \xff\xfe end \x00\x1f", "f\"ile", int64(-1), false)
	f.Add(uint64(7), int64(1), int64(2), "\xed\xa0\x80 surrogate half, \U0001F600 emoji", "x", int64(3), true)
	f.Fuzz(func(t *testing.T, seq uint64, tm, ingest int64, msg, src string, off int64, cp bool) {
		in := Record{Seq: seq, Time: tm, Ingest: ingest, Message: msg, Src: src, Off: off, Checkpoint: cp}
		var want Record
		std, _ := json.Marshal(in)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		ours := appendRecord(nil, &in, nil)
		if !bytes.HasSuffix(ours, []byte("\n")) || bytes.Count(ours, []byte("\n")) != 1 {
			t.Fatalf("record line %q: one newline, at the end", ours)
		}
		ours = ours[:len(ours)-1]
		if msg != "" {
			if byMsg := appendRecord(nil, &Record{Seq: seq, Time: tm, Ingest: ingest, Src: src, Off: off, Checkpoint: cp}, []byte(msg)); !bytes.Equal(byMsg[:len(byMsg)-1], ours) {
				t.Fatalf("message as bytes %q, as string %q", byMsg, ours)
			}
		}
		var viaStd Record
		if err := json.Unmarshal(ours, &viaStd); err != nil || !reflect.DeepEqual(viaStd, want) {
			t.Fatalf("encoding/json reads our %q as %+v (%v), want %+v", ours, viaStd, err, want)
		}
		if !strings.Contains(msg, "\n") && !cp {
			// A node's line stored as it is, after its header and a tab.
			lineRec := appendLineRecord(nil, &Record{Seq: seq, Time: tm, Ingest: ingest, Src: src, Off: off}, []byte(msg))
			if bytes.Count(lineRec, []byte("\n")) != 1 {
				t.Fatalf("line record %q: one newline, at the end", lineRec)
			}
			got, err := decodeRecord(lineRec[:len(lineRec)-1])
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("decodeRecord(%q) = %+v (%v), want %+v", lineRec, got, err, want)
			}
			if q, ok := recordSeq(lineRec); !ok || q != seq {
				t.Fatalf("recordSeq(%q) = %d %v", lineRec, q, ok)
			}
		}
		for _, line := range [][]byte{ours, std} {
			got, err := decodeRecord(line)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("decodeRecord(%q) = %+v (%v), want %+v", line, got, err, want)
			}
			if q, ok := recordSeq(line); !ok || q != seq {
				t.Fatalf("recordSeq(%q) = %d %v", line, q, ok)
			}
		}
	})
}

func FuzzJSONLogLine(f *testing.F) {
	for _, s := range []string{
		`{"timestamp":"2026-12-01 10:00:00.123 UTC","user":"postgres","dbname":"postgres","pid":1234,"remote_host":"127.0.0.1","session_id":"6564a1b2.3e8","line_num":5,"ps":"SELECT","vxid":"3/5","txid":0,"error_severity":"LOG","message":"statement: SELECT \"a\" FROM t WHERE b = 'x\\y'","application_name":"pgbench","backend_type":"client backend","query_id":0}`,
		`{"timestamp":"2026-12-01 10:00:00.123 +01","error_severity":"ERROR","state_code":"22012","message":"division by zero","pid":-1}`,
		`{"timestamp":"2026-12-01 10:00:00.999 CET","error_severity":"WARNING","message":"\u00e9\ud83d\ude00 \ud800 lone","dbname":null}`,
		`{"timestamp":"2026-12-01 10:00:00.12 UTC","error_severity":"FATAL"}`,
		`{"Error_Severity":"ERROR","message":"case"}`,
		`{"error_severity":"ERROR","pid":"12"}`, `{"pid":1.5}`, `{"pid":99999999999999999999}`, `{"message":5}`,
		`{"a":[1,2]}`, `{"a":{"b":1}}`, `{"message":"x"} trailing`, `{"message":"unterminated`, `{"message":"bad \x escape"}`,
		"{\"message\":\"raw\tcontrol\"}", "{\"message\":\"bad utf-8 \xff\"}", `null`, `[]`, ``, `{}`, ` { "pid" : 0 , "message" : "" } `,
		`{"pid":-0,"x":1e5,"y":-1.5E-3,"z":true,"w":false}`, `{"pid":01}`, `{"x":.5}`, `{"x":1.}`, `{"x":tru}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var want pgLine
		wantParsed := json.Unmarshal([]byte(line), &want) == nil
		if !wantParsed {
			want = pgLine{}
		}
		wantMS := int64(0)
		if wantParsed {
			wantMS = tsMillis[string](nil, want.Timestamp)
		}
		var tc tsCache
		for range 2 { // the second time through the timestamp cache
			got, ms, parsed := parseLineCached([]byte(line), &tc)
			if parsed != wantParsed || (parsed && (got != want || ms != wantMS)) {
				t.Fatalf("parseLine(%q) = %+v %d %v, encoding/json says %+v %d %v", line, got, ms, parsed, want, wantMS, wantParsed)
			}
		}
		// The spans the tailer keeps give the exporter parseLine's fields.
		it := exportItem{line: []byte(line)}
		if it.f, it.fok = scanFields(it.line); it.fok {
			if x, ok := it.fields(); ok {
				got := pgLine{Severity: string(x.sev), StateCode: string(x.state), Message: string(x.msg), PID: x.pid,
					BackendType: string(x.btype), User: string(x.user), DBName: string(x.db), Timestamp: want.Timestamp}
				if !wantParsed || got != want {
					t.Fatalf("fields of %q = %+v, encoding/json says %+v %v", line, got, want, wantParsed)
				}
			}
		}
		for _, typ := range LogTypes {
			ok, ms := keep(typ, []byte(line), &tc)
			wantKeep := typ == TypePostgreSQL || (wantParsed && errorSeverities[want.Severity])
			if ok != wantKeep || (ok && wantParsed && ms != wantMS) {
				t.Fatalf("keep(%s, %q) = %v %d, want %v %d", typ, line, ok, ms, wantKeep, wantMS)
			}
		}
	})
}

// TestTimestampCache: the cache gives what parsing gives, across seconds, zones and forms.
func TestTimestampCache(t *testing.T) {
	var tc tsCache
	for _, ts := range []string{"2026-12-01 10:00:00.123 UTC", "2026-12-01 10:00:00.999 UTC", "2026-12-01 10:00:01.000 UTC",
		"2026-12-01 10:00:01.000 +01", "2026-12-01 10:00:01.500 -07", "2026-12-01 10:00:01.500 UTC", "garbage", "2026-12-01 10:00:01.5 UTC"} {
		if got, want := tsMillis(&tc, ts), tsMillis[string](nil, ts); got != want {
			t.Errorf("%s: cached %d, parsed %d", ts, got, want)
		}
	}
	if tsMillis[string](nil, "2026-12-01 10:00:01.000 +01") != tsMillis[string](nil, "2026-12-01 09:00:01.000 UTC") {
		t.Error("zone offset ignored")
	}
}

// TestPlainRun: the word-at-a-time scan finds what a byte loop finds, for each special byte at
// each position of a run longer than a word.
func TestPlainRun(t *testing.T) {
	naive := func(s []byte, i int) int {
		for ; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				return i
			}
		}
		return i
	}
	for _, special := range []byte{0, 0x1f, '"', '\\', 0x80, 0xff} {
		for _, near := range []byte{' ', '!', '#', '[', ']', '~', 0x7f, 0x21} {
			for n := 0; n < 20; n++ {
				for pos := 0; pos <= n; pos++ {
					s := bytes.Repeat([]byte{near}, n)
					if pos < n {
						s[pos] = special
					}
					for from := 0; from <= min(n, 3); from++ {
						if got, want := plainRun(s, from), naive(s, from); got != want {
							t.Fatalf("plainRun(%q, %d) = %d, want %d", s, from, got, want)
						}
						if got, want := plainRun(string(s), from), naive(s, from); got != want {
							t.Fatalf("plainRun(string %q, %d) = %d, want %d", s, from, got, want)
						}
					}
				}
			}
		}
	}
}
