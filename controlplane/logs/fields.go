package logs

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// One pass over a line serves both of its users: the tailer routes it by timestamp and
// severity, and the exporter writes its attributes. scanFields records where the fields the
// groups and the exporter use are in the line (offsets, nothing copied or unescaped); the
// tailer hands them, with the line, to the exporter in memory (stream.recent), so a line
// exported on time is scanned once. Its answer is scanPgLine's: ok is false wherever that
// would go to encoding/json, and the caller then does.

// span is a field's value in its line: the text between a string's quotes (still escaped) or
// a literal. n < 0: absent (or null, which leaves a field as it was, as encoding/json does).
type span struct {
	off, n int32
}

var noSpan = span{n: -1}

func (s span) in(line []byte) []byte {
	if s.n < 0 {
		return nil
	}
	return line[s.off : s.off+s.n]
}

// lineFields are the jsonlog fields pgLine holds, as spans of the line.
type lineFields struct {
	ts, sev, state, msg, btype, user, db span
	pid                                  int64
}

func scanFields(line []byte) (lineFields, bool) {
	f := lineFields{ts: noSpan, sev: noSpan, state: noSpan, msg: noSpan, btype: noSpan, user: noSpan, db: noSpan}
	if len(line) > 1<<30 {
		return f, false
	}
	ok := true
	str := func(dst *span, raw []byte, isStr bool) {
		switch {
		case isStr:
			*dst = span{off: int32(cap(line) - cap(raw)), n: int32(len(raw))}
		case string(raw) != "null":
			ok = false // a string field with a number: encoding/json's type error
		}
	}
	if !flatFields(line, func(key, raw []byte, isStr bool) {
		switch string(key) {
		case "timestamp":
			str(&f.ts, raw, isStr)
		case "error_severity":
			str(&f.sev, raw, isStr)
		case "state_code":
			str(&f.state, raw, isStr)
		case "message":
			str(&f.msg, raw, isStr)
		case "backend_type":
			str(&f.btype, raw, isStr)
		case "user":
			str(&f.user, raw, isStr)
		case "dbname":
			str(&f.db, raw, isStr)
		case "pid":
			if isStr || string(raw) == "null" {
				ok = ok && !isStr
				return
			}
			v, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				ok = false
			}
			f.pid = v
		default:
			ok = ok && lowerASCII(key)
		}
	}) {
		return f, false
	}
	return f, ok
}

// plain reports whether a string span needs no unescaping: no backslash, and valid UTF-8
// (encoding/json replaces invalid bytes, so those go through unescape).
func plain(raw []byte) bool {
	return bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw)
}

// text is a string field's value, unescaped as encoding/json would (a copy only when it had
// escapes or invalid UTF-8); ok is false for what unescape refuses.
func text(raw []byte) ([]byte, bool) {
	if plain(raw) {
		return raw, true
	}
	s, ok := unescape(raw)
	return []byte(s), ok
}
