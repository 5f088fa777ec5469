package logs

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// A stream's records are JSON lines, as encoding/json writes Record; they are written and read
// here by hand because each is a whole jsonlog line quoted inside JSON, and reflection cost
// more per line than everything else the collector does. decodeRecord falls back to
// encoding/json for any line it does not recognise, so records written either way read the same.

const hexDigits = "0123456789abcdef"

// quoteASCII marks the ASCII bytes a JSON string must escape.
var quoteASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// appendRecord appends r's JSON line (with its newline). msg, when not nil, is the message
// (r.Message is then not read), so a tailer stores a line without copying it into a string.
func appendRecord(b []byte, r *Record, msg []byte) []byte {
	b = append(b, `{"q":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, r.Time, 10)
	b = append(b, `,"i":`...)
	b = strconv.AppendInt(b, r.Ingest, 10)
	if msg != nil || r.Message != "" {
		b = append(b, `,"m":`...)
		if msg != nil {
			b = appendString(b, msg)
		} else {
			b = appendString(b, r.Message)
		}
	}
	if r.Src != "" {
		b = append(b, `,"f":`...)
		b = appendString(b, r.Src)
	}
	if r.Off != 0 {
		b = append(b, `,"o":`...)
		b = strconv.AppendInt(b, r.Off, 10)
	}
	if r.Checkpoint {
		b = append(b, `,"c":true`...)
	}
	return append(b, '}', '\n')
}

// appendString quotes s as JSON: invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString[T []byte | string](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !quoteASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeRecord reads one stored line (without its newline).
func decodeRecord(line []byte) (Record, error) {
	if r, ok := scanRecord(line); ok {
		return r, nil
	}
	var r Record
	err := json.Unmarshal(line, &r)
	return r, err
}

func scanRecord(line []byte) (Record, bool) {
	var r Record
	ok := true
	num := func(raw []byte, isStr bool) int64 {
		v, err := strconv.ParseInt(string(raw), 10, 64)
		if isStr || err != nil {
			ok = false
		}
		return v
	}
	if !flatFields(line, func(key, raw []byte, isStr bool) {
		if len(key) != 1 {
			ok = false // not a field of Record: let encoding/json decide
			return
		}
		switch key[0] {
		case 'q':
			v, err := strconv.ParseUint(string(raw), 10, 64)
			if isStr || err != nil {
				ok = false
			}
			r.Seq = v
		case 't':
			r.Time = num(raw, isStr)
		case 'i':
			r.Ingest = num(raw, isStr)
		case 'o':
			r.Off = num(raw, isStr)
		case 'm', 'f':
			s, good := unescape(raw)
			if !isStr || !good {
				ok = false
			}
			if key[0] == 'm' {
				r.Message = s
			} else {
				r.Src = s
			}
		case 'c':
			r.Checkpoint = string(raw) == "true"
			ok = ok && !isStr && (r.Checkpoint || string(raw) == "false")
		default:
			ok = false
		}
	}) {
		return Record{}, false
	}
	return r, ok
}

// recordSeq is the sequence number of a stored line, read from its start without decoding
// the rest (a reader skipping to a position); ok is false for a line not written as
// appendRecord and encoding/json write them.
func recordSeq(line []byte) (uint64, bool) {
	const prefix = `{"q":`
	if len(line) < len(prefix) || string(line[:len(prefix)]) != prefix {
		return 0, false
	}
	var v uint64
	i := len(prefix)
	for ; i < len(line) && line[i] >= '0' && line[i] <= '9'; i++ {
		v = v*10 + uint64(line[i]-'0')
	}
	if i == len(prefix) || i >= len(line) || (line[i] != ',' && line[i] != '}') {
		return 0, false
	}
	return v, true
}
