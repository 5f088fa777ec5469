package logs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// A stream's records are JSON lines, as encoding/json writes Record; they are written and read
// here by hand because each is a whole jsonlog line quoted inside JSON, and reflection cost
// more per line than everything else the collector does. decodeRecord falls back to
// encoding/json for any line it does not recognise, so records written either way read the same.

const hexDigits = "0123456789abcdef"

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
		i = plainRun(s, i)
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
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

// appendLineRecord appends the record of a line read from a node (r.Message is not read): the
// header appendRecord writes without a message, a tab in place of its newline, then the
// line's own bytes and a newline. A line holds no newline (the tailer splits on them) and a
// header no raw tab (appendString escapes it), so the first tab ends the header. Storing the
// line as it is costs a copy, where quoting it inside JSON cost a pass over every byte and
// unquoting another on every read; the stored bytes are the node's own.
func appendLineRecord(b []byte, r *Record, line []byte) []byte {
	b = appendRecord(b, r, nil)
	b[len(b)-1] = '\t'
	return append(append(b, line...), '\n')
}

// decodeRecord reads one stored line (without its newline).
func decodeRecord(line []byte) (Record, error) {
	if i := bytes.IndexByte(line, '\t'); i > 0 && line[i-1] == '}' {
		r, err := decodeRecord(line[:i])
		if err != nil || r.Message != "" {
			return Record{}, fmt.Errorf("stored record %.40q: a header with a message", line)
		}
		r.Message = validText(line[i+1:])
		return r, nil
	}
	if r, ok := scanRecord(line); ok {
		return r, nil
	}
	var r Record
	err := json.Unmarshal(line, &r)
	return r, err
}

// validText is a node's line as a string, each byte that is not UTF-8 replaced by U+FFFD (as
// appendString wrote it into JSON records, so readers see what they saw from those).
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return string(out)
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

// Eight bytes at a time (SWAR): a JSON string's text is mostly bytes that need nothing, and
// the collector goes over every line twice, so the scans skip such runs a word at a time.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func load64[T []byte | string](s T, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// plainRun returns the index of the first byte at or after i that is a quote, a backslash,
// a control character or not ASCII (len(s) if none).
func plainRun[T []byte | string](s T, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := load64(s, i)
		q, bs := w^('"'*lsb), w^('\\'*lsb)
		if special(w, q, bs) {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return i
		}
	}
	return i
}

// special reports whether a word has a byte below 0x20, a quote, a backslash or a byte with
// its high bit set (w is the word, q and bs the word xor quotes and xor backslashes).
func special(w, q, bs uint64) bool {
	return ((w-0x20*lsb)&^w|(q-lsb)&^q|(bs-lsb)&^bs|w)&msb != 0
}
