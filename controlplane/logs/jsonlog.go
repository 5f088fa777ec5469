package logs

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Every line a node logs passes through here twice (collection, then export), so the jsonlog
// fields are taken by a scanner of flat JSON objects instead of encoding/json, which costs
// several µs and a dozen allocations a line through reflection: the scanner only unescapes the
// values it is asked for. A line it does not understand (nested values, bad escapes) goes to
// encoding/json, so the answer is always encoding/json's.

// pgLine is the part of a jsonlog record the groups and the exporter use.
type pgLine struct {
	Timestamp   string `json:"timestamp"`
	Severity    string `json:"error_severity"`
	StateCode   string `json:"state_code"`
	Message     string `json:"message"`
	PID         int64  `json:"pid"`
	BackendType string `json:"backend_type"`
	User        string `json:"user"`
	DBName      string `json:"dbname"`
}

// pgTimeLayouts are jsonlog's timestamp forms: log_timezone's abbreviation, or a numeric offset
// for a zone without one (America/Sao_Paulo logs "-03"). The numeric form goes first: Go's
// MST layout also accepts "-03", as an unknown abbreviation at offset zero.
var pgTimeLayouts = []string{"2006-01-02 15:04:05.000 -07", "2006-01-02 15:04:05.000 MST"}

// parseLine decodes a jsonlog line's fields; parsed is false when the line is not a JSON
// object of them. The time is ms since the epoch, 0 when the timestamp has no known form.
func parseLine(line []byte) (l pgLine, ms int64, parsed bool) {
	return parseLineCached(line, nil)
}

func parseLineCached(line []byte, tc *tsCache) (pgLine, int64, bool) {
	l, ok := scanPgLine(line)
	if !ok {
		l = pgLine{}
		if json.Unmarshal(line, &l) != nil {
			return pgLine{}, 0, false
		}
	}
	return l, tsMillis(tc, l.Timestamp), true
}

// scanPgLine is parseLine's fast path; ok is false when the line needs encoding/json. It
// unescapes the spans scanFields found, so both paths read a line's fields one way.
func scanPgLine(line []byte) (pgLine, bool) {
	f, ok := scanFields(line)
	if !ok {
		return pgLine{}, false
	}
	l := pgLine{PID: f.pid}
	for _, field := range [...]struct {
		dst *string
		at  span
	}{{&l.Timestamp, f.ts}, {&l.Severity, f.sev}, {&l.StateCode, f.state}, {&l.Message, f.msg},
		{&l.BackendType, f.btype}, {&l.User, f.user}, {&l.DBName, f.db}} {
		if field.at.n < 0 {
			continue
		}
		s, good := unescape(field.at.in(line))
		if !good {
			return pgLine{}, false
		}
		*field.dst = s
	}
	return l, true
}

// flatFields calls fn for each member of a JSON object whose values are strings (raw is the
// text between the quotes, still escaped) or literals (numbers, true, false, null). It reports
// false, perhaps after some calls, when line is not such an object.
func flatFields(line []byte, fn func(key, raw []byte, isStr bool)) bool {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return skipSpace(line, i+1) == len(line)
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return false
		}
		end, esc := stringEnd(line, i+1)
		if end < 0 || esc {
			return false
		}
		key := line[i+1 : end]
		i = skipSpace(line, end+1)
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i = skipSpace(line, i+1)
		if i >= len(line) {
			return false
		}
		if line[i] == '"' {
			end, _ := stringEnd(line, i+1)
			if end < 0 {
				return false
			}
			fn(key, line[i+1:end], true)
			i = end + 1
		} else {
			j := i
			for j < len(line) && line[j] != ',' && line[j] != '}' && !isSpace(line[j]) {
				j++
			}
			if !validLiteral(line[i:j]) {
				return false
			}
			fn(key, line[i:j], false)
			i = j
		}
		i = skipSpace(line, i)
		if i >= len(line) {
			return false
		}
		if line[i] == '}' {
			return skipSpace(line, i+1) == len(line)
		}
		if line[i] != ',' {
			return false
		}
		i = skipSpace(line, i+1)
	}
}

// lowerASCII reports whether a key has no upper-case or non-ASCII letter (which encoding/json
// could match to a field of another spelling).
func lowerASCII(key []byte) bool {
	for _, c := range key {
		if c >= 'A' && c <= 'Z' || c >= 0x80 {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing a JSON string whose text starts at i, and
// whether the text has escapes; -1 when the string is not closed or holds a control character
// or a bad escape.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for ; i < len(b); i++ {
		i = plainRun(b, i)
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i, esc
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return -1, esc
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1, esc
				}
				i += 5
			default:
				return -1, esc
			}
		case c < 0x20:
			return -1, esc
		}
	}
	return -1, esc
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// validLiteral accepts JSON's true, false, null and numbers.
func validLiteral(b []byte) bool {
	switch string(b) {
	case "true", "false", "null":
		return true
	case "":
		return false
	}
	i := 0
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && b[start] == '0') {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// unescape decodes a JSON string's text (checked by stringEnd); ok is false for what only
// encoding/json decodes as it does (invalid UTF-8, which it replaces).
func unescape(raw []byte) (string, bool) {
	if plainRun(raw, 0) == len(raw) {
		return string(raw), true
	}
	if !utf8.Valid(raw) {
		var s string
		q := make([]byte, 0, len(raw)+2)
		q = append(append(append(q, '"'), raw...), '"')
		return s, json.Unmarshal(q, &s) == nil
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			out = append(out, raw[i:]...)
			break
		}
		out = append(out, raw[i:i+j]...)
		i += j
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hex4(raw[i+3 : i+7])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default: // " \ /
			out = append(out, raw[i])
		}
	}
	return string(out), true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// tsCache turns jsonlog timestamps into ms since the epoch, parsing each second and zone once
// (a busy node writes thousands of lines in the same second). A nil cache parses every time.
type tsCache struct {
	sec, zone string // the timestamp's "2006-01-02 15:04:05" and its zone, as last parsed
	base      int64  // that second in ms
}

func tsMillis[T []byte | string](c *tsCache, ts T) int64 {
	// "2006-01-02 15:04:05.000 ZONE": the milliseconds are ts[20:23].
	fixed := len(ts) > 24 && ts[19] == '.' && ts[23] == ' ' && isDigit(ts[20]) && isDigit(ts[21]) && isDigit(ts[22])
	if fixed && c != nil && c.sec != "" && string(ts[:19]) == c.sec && string(ts[24:]) == c.zone {
		return c.base + int64(ts[20]-'0')*100 + int64(ts[21]-'0')*10 + int64(ts[22]-'0')
	}
	str := string(ts)
	for _, layout := range pgTimeLayouts {
		t, err := time.Parse(layout, str)
		if err != nil {
			continue
		}
		ms := t.UnixMilli()
		if fixed && c != nil {
			c.sec, c.zone = str[:19], str[24:]
			c.base = ms - (int64(str[20]-'0')*100 + int64(str[21]-'0')*10 + int64(str[22]-'0'))
		}
		return ms
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
