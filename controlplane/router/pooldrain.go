package router

// Database DDL against the warm pool's idle backends (pool.go).
//
// A pooled idle backend whose client left is still a session on its database, so PostgreSQL
// refuses the statements that need a database to themselves — DROP DATABASE (without FORCE),
// CREATE DATABASE ... TEMPLATE (the template, template1 by default), ALTER DATABASE ... RENAME
// and SET TABLESPACE — with 55006 "database is being accessed by other users", where a direct
// connection would have succeeded. So the router drains them itself: the client direction of
// the relay (relay.go) runs a small SQL lexer over each simple Query and each Parse, and before
// it forwards a statement that starts DROP DATABASE, CREATE DATABASE or ALTER DATABASE it closes
// (Terminate, then close) the node's idle pooled backends on the databases the statement names,
// and makes those checked out now (or being reset for the pool) close rather than return. A
// name the lexer cannot read for sure (Unicode escapes, over 63 bytes, non-ASCII unquoted,
// a statement out of shape) drains every idle pooled backend of the node: that is cheap.
// Every ALTER DATABASE drains its database (RENAME and SET TABLESPACE need it; SET and RESET
// make pooled backends stale anyway; the other forms are rare). A named prepared statement
// found to be such DDL drains again at each Bind (pgx caches statements and binds them
// without another Parse).
//
// Why closing before forwarding is enough: PostgreSQL's CountOtherDBBackends (dropdb,
// createdb's template, movedb, RenameDatabase) waits up to 5 s for the other sessions of the
// database to exit before it fails; a backend that reads Terminate or the end of its socket
// exits within milliseconds. TestDatabaseDDLDrainsPool proves it with psql, pgx and psycopg2
// in every relay mode.
//
// Fallback: a backend that answers 55006 anyway (a statement the lexer did not recognise, a
// cached statement prepared before the router saw it) makes the router close the node's idle
// pooled backends, and the client sees the error, as from a direct connection; its retry then
// finds none. The statement is not retried by the router: a retry needs the ErrorResponse and
// ReadyForQuery held back and the statement sent again, which is safe only for a lone
// simple-Query DROP/CREATE DATABASE outside a transaction block, and the drain before
// forwarding already covers that case.
//
// The lexer follows PostgreSQL's scan.l where it matters for finding statement starts and
// names: whitespace, -- and nested /* */ comments, '' strings (E'' with backslash escapes,
// U&'' and B''/X''/N'' prefixes), "quoted identifiers" (U&"" marked unreadable), $tag$
// dollar quotes, $1 parameters and ';'. It reads a message incrementally, so a Query or Parse
// larger than the relay's buffer is followed across reads without being copied; it never
// fails (bad SQL is the backend's to reject), and keeps at most a few hundred bytes of state.

import (
	"bytes"
	"strings"
)

// maxDDLName is the longest database name the lexer reads (NAMEDATALEN-1): a longer one is
// truncated by PostgreSQL in ways not worth following, so it drains the whole node.
const maxDDLName = 63

// maxDollarTag bounds a dollar quote's tag: past it the lexer stops following the text.
const maxDollarTag = 256

// ddlTarget is what a statement needs gone from the pool before it runs.
type ddlTarget struct {
	all bool     // every idle pooled backend of the node
	dbs []string // the idle pooled backends on these databases
}

func (t ddlTarget) none() bool { return !t.all && len(t.dbs) == 0 }

func (t *ddlTarget) addDB(name string) {
	for _, d := range t.dbs {
		if d == name {
			return
		}
	}
	t.dbs = append(t.dbs, name)
}

// token kinds the lexer hands the classifier.
const (
	tkWord   = iota // an unquoted identifier or keyword
	tkQuoted        // a "quoted identifier"
	tkString        // a string literal
	tkNumber        // a number or a $1 parameter
	tkPunct         // any other character (operators, parentheses, commas)
	tkEnd           // ';' or the end of the statement text
)

// lexer states.
const (
	lxNormal     = iota
	lxWord       // in a word: text holds it
	lxDash       // saw '-': a comment if another follows
	lxSlash      // saw '/': a comment if '*' follows
	lxLine       // in a -- comment
	lxBlock      // in a /* comment (depth deep)
	lxBlockStar  // in a comment, saw '*'
	lxBlockSlash // in a comment, saw '/'
	lxSQuote     // in a string
	lxSQuoteEnd  // in a string, saw a quote: its end or a doubled quote
	lxSQuoteBS   // in an E'' string, saw a backslash
	lxDQuote     // in a quoted identifier
	lxDQuoteEnd  // in a quoted identifier, saw a quote
	lxUAmp       // saw the word U and '&': a Unicode-escaped string or identifier may follow
	lxTag        // saw '$' outside a word: tag holds "$..." so far
	lxDollar     // in a dollar-quoted string; matched bytes of its closing tag
	lxLost       // a dollar tag too long to follow: ignore the rest
)

// sqlLexer finds DATABASE DDL in SQL text fed to it in pieces.
type sqlLexer struct {
	state   int
	depth   int    // /* */ nesting
	esc     bool   // the string being read is E'': backslash escapes
	unicode bool   // the string or identifier being read is U&: not readable here
	bad     bool   // text holds a name that cannot be read for sure
	number  bool   // the word being read started with a digit
	text    []byte // the word, identifier or string being read (up to maxDDLName+1 bytes)
	tag     []byte // the dollar quote's tag, '$' to '$'
	matched int    // bytes of the closing tag matched
	stmt    ddlStatement
	out     ddlTarget
}

func (lx *sqlLexer) reset() {
	*lx = sqlLexer{text: lx.text[:0], tag: lx.tag[:0], out: ddlTarget{dbs: lx.out.dbs[:0]}}
}

func isWordStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isWordByte(c byte) bool { return isWordStart(c) || c >= '0' && c <= '9' || c == '$' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// keep adds c to the text being read, marking it unreadable past maxDDLName bytes.
func (lx *sqlLexer) keep(c byte) {
	if len(lx.text) <= maxDDLName {
		lx.text = append(lx.text, c)
	}
}

// emit hands a token to the statement classifier.
func (lx *sqlLexer) emit(kind int, punct byte) {
	bad := lx.bad || lx.unicode || len(lx.text) > maxDDLName
	lx.stmt.token(kind, lx.text, punct, bad, &lx.out)
	lx.text, lx.bad, lx.unicode, lx.esc, lx.number = lx.text[:0], false, false, false, false
}

// feed lexes the next piece of the text.
func (lx *sqlLexer) feed(b []byte) {
	for i := 0; i < len(b); i++ {
		c := b[i]
	again:
		switch lx.state {
		case lxNormal:
			switch {
			case isSpace(c):
			case c == '-':
				lx.state = lxDash
			case c == '/':
				lx.state = lxSlash
			case c == '\'':
				lx.state = lxSQuote
			case c == '"':
				lx.state = lxDQuote
			case c == '$':
				lx.tag = append(lx.tag[:0], '$')
				lx.state = lxTag
			case c == ';':
				lx.emit(tkEnd, 0)
			case isWordStart(c) || c >= '0' && c <= '9':
				lx.number = !isWordStart(c)
				lx.keep(c)
				lx.state = lxWord
			default:
				lx.emit(tkPunct, c)
			}
		case lxWord:
			switch {
			case isWordByte(c):
				lx.keep(c)
			case c == '\'' && len(lx.text) == 1 && strings.IndexByte("bBeEnNxX", lx.text[0]) >= 0:
				// A prefixed string: E'' takes backslash escapes, B'' X'' N'' do not.
				lx.esc = lx.text[0]|0x20 == 'e'
				lx.text = lx.text[:0]
				lx.state = lxSQuote
			case c == '&' && len(lx.text) == 1 && lx.text[0]|0x20 == 'u':
				lx.state = lxUAmp
			default:
				lx.endWord()
				lx.state = lxNormal
				goto again
			}
		case lxUAmp:
			switch c {
			case '\'', '"':
				lx.text = lx.text[:0]
				lx.unicode = true
				lx.state = lxSQuote
				if c == '"' {
					lx.state = lxDQuote
				}
			default:
				lx.endWord()
				lx.emit(tkPunct, '&')
				lx.state = lxNormal
				goto again
			}
		case lxDash:
			if c == '-' {
				lx.state = lxLine
				break
			}
			lx.emit(tkPunct, '-')
			lx.state = lxNormal
			goto again
		case lxSlash:
			if c == '*' {
				lx.state, lx.depth = lxBlock, 1
				break
			}
			lx.emit(tkPunct, '/')
			lx.state = lxNormal
			goto again
		case lxLine:
			if c == '\n' || c == '\r' {
				lx.state = lxNormal
			}
		case lxBlock, lxBlockStar, lxBlockSlash:
			switch {
			case c == '/' && lx.state == lxBlockStar:
				lx.depth--
				lx.state = lxBlock
				if lx.depth == 0 {
					lx.state = lxNormal
				}
			case c == '*' && lx.state == lxBlockSlash:
				lx.depth++
				lx.state = lxBlock
			case c == '*':
				lx.state = lxBlockStar
			case c == '/':
				lx.state = lxBlockSlash
			default:
				lx.state = lxBlock
			}
		case lxSQuote:
			switch {
			case c == '\'':
				lx.state = lxSQuoteEnd
			case c == '\\' && lx.esc:
				lx.bad = true
				lx.state = lxSQuoteBS
			default:
				lx.keep(c)
			}
		case lxSQuoteBS:
			lx.state = lxSQuote
		case lxDQuote:
			if c == '"' {
				lx.state = lxDQuoteEnd
				break
			}
			lx.keep(c)
		case lxSQuoteEnd, lxDQuoteEnd:
			// The quote just read ends the string or identifier, unless it is doubled.
			q, in, kind := byte('\''), lxSQuote, tkString
			if lx.state == lxDQuoteEnd {
				q, in, kind = '"', lxDQuote, tkQuoted
			}
			if c == q {
				lx.keep(c)
				lx.state = in
				break
			}
			lx.emit(kind, 0)
			lx.state = lxNormal
			goto again
		case lxTag:
			switch {
			case c == '$':
				lx.tag = append(lx.tag, '$')
				lx.matched = 0
				lx.state = lxDollar
			case len(lx.tag) == 1 && c >= '0' && c <= '9':
				// $1: a parameter.
				lx.number = true
				lx.keep(c)
				lx.state = lxWord
			case isWordStart(c) || len(lx.tag) > 1 && c >= '0' && c <= '9':
				if len(lx.tag) >= maxDollarTag {
					lx.state = lxLost
					break
				}
				lx.tag = append(lx.tag, c)
			default:
				// Not a dollar quote: '$' and whatever word followed it.
				lx.emit(tkPunct, '$')
				if len(lx.tag) > 1 {
					lx.text = append(lx.text[:0], lx.tag[1:min(len(lx.tag), maxDDLName+2)]...)
					lx.endWord()
				}
				lx.state = lxNormal
				goto again
			}
		case lxDollar:
			switch {
			case c == lx.tag[lx.matched]:
				lx.matched++
				if lx.matched == len(lx.tag) {
					lx.emit(tkString, 0)
					lx.state = lxNormal
				}
			case c == '$':
				lx.matched = 1 // the tag holds no '$' but at its ends
			default:
				lx.matched = 0
			}
		case lxLost:
			return
		}
	}
}

// endWord emits the word being read: a number, or an identifier folded to lower case as
// PostgreSQL folds it (ASCII only; a non-ASCII unquoted name is marked unreadable, since its
// folding depends on the server's encoding).
func (lx *sqlLexer) endWord() {
	if lx.number {
		lx.emit(tkNumber, 0)
		return
	}
	for i, c := range lx.text {
		switch {
		case c >= 'A' && c <= 'Z':
			lx.text[i] = c + 'a' - 'A'
		case c >= 0x80:
			lx.bad = true
		}
	}
	lx.emit(tkWord, 0)
}

// finish ends the text and returns what it needs drained.
func (lx *sqlLexer) finish() ddlTarget {
	switch lx.state {
	case lxWord:
		lx.endWord()
	case lxUAmp:
		lx.endWord()
	case lxSQuoteEnd:
		lx.emit(tkString, 0)
	case lxDQuoteEnd:
		lx.emit(tkQuoted, 0)
	}
	lx.state = lxNormal
	lx.emit(tkEnd, 0)
	return lx.out
}

// ddlStatement classifies one statement from its tokens.
type ddlStatement struct {
	n    int  // tokens seen in the statement
	verb byte // 'D' DROP, 'C' CREATE, 'A' ALTER DATABASE; 'x' not DATABASE DDL
	step int  // where in the statement's grammar (below)
	opt  bool // CREATE DATABASE: the option being read is TEMPLATE
	tmpl bool // CREATE DATABASE: a TEMPLATE option was read
}

// Steps of DROP/ALTER DATABASE and CREATE DATABASE after "<verb> DATABASE".
const (
	stName     = iota // DROP: IF or the name; ALTER: the name; CREATE: the new name
	stIfExists        // DROP DATABASE IF: EXISTS (then the name) or the end (a database named "if")
	stDropName        // DROP DATABASE IF EXISTS: the name
	stOption          // CREATE: WITH, an option name, or the end
	stLimit           // CREATE: CONNECTION, expecting LIMIT
	stEquals          // CREATE: '=' or the value
	stValue           // CREATE: the value (after '=' or a sign)
	stDone            // nothing more to read
)

func isWord(kind int, text []byte, w string) bool {
	return kind == tkWord && string(text) == w
}

// dbName takes a token that names a database; one that cannot be read for sure (or is no
// name) stands for every database of the node.
func dbName(kind int, text []byte, bad bool, out *ddlTarget) {
	switch {
	case (kind == tkWord || kind == tkQuoted) && !bad && len(text) > 0:
		out.addDB(string(text))
	default:
		out.all = true
	}
}

// token takes the next token of the statement.
func (st *ddlStatement) token(kind int, text []byte, punct byte, bad bool, out *ddlTarget) {
	if kind == tkEnd {
		if st.verb == 'C' && !st.tmpl && st.step != stName {
			out.addDB("template1") // CREATE DATABASE's default template
		}
		if st.verb == 'D' && st.step == stIfExists {
			out.addDB("if")
		}
		*st = ddlStatement{}
		return
	}
	st.n++
	switch {
	case st.verb == 'x' || st.step == stDone:
		return
	case st.n == 1:
		switch {
		case isWord(kind, text, "drop"):
			st.verb = 'D'
		case isWord(kind, text, "create"):
			st.verb = 'C'
		case isWord(kind, text, "alter"):
			st.verb = 'A'
		default:
			st.verb = 'x'
		}
		return
	case st.n == 2:
		if !isWord(kind, text, "database") {
			st.verb = 'x'
		}
		return
	}
	switch st.step {
	case stName:
		switch {
		case st.verb == 'D' && isWord(kind, text, "if"):
			st.step = stIfExists
		case st.verb == 'C':
			st.step = stOption // the new database: nobody is on it yet
		default:
			dbName(kind, text, bad, out)
			st.step = stDone
		}
	case stIfExists:
		if isWord(kind, text, "exists") {
			st.step = stDropName
		} else {
			out.addDB("if")
			st.step = stDone
		}
	case stDropName:
		dbName(kind, text, bad, out)
		st.step = stDone
	case stOption:
		switch {
		case st.n == 4 && isWord(kind, text, "with"):
		case isWord(kind, text, "connection"):
			st.step = stLimit
		case kind == tkWord:
			st.opt = string(text) == "template"
			st.step = stEquals
		default:
			out.all = true // out of shape: whatever it is, drain the node
			st.step = stDone
		}
	case stLimit:
		st.opt = false
		st.step = stEquals
		if !isWord(kind, text, "limit") {
			out.all = true
			st.step = stDone
		}
	case stEquals, stValue:
		if kind == tkPunct && (punct == '=' && st.step == stEquals || punct == '-' || punct == '+') {
			st.step = stValue
			return
		}
		st.step = stOption
		if !st.opt {
			return
		}
		st.tmpl = true
		switch {
		case isWord(kind, text, "default"):
			out.addDB("template1")
		case kind == tkString && !bad && len(text) > 0:
			out.addDB(string(text))
		default:
			dbName(kind, text, bad, out)
		}
	}
}

// findDatabaseDDL returns what the SQL text needs drained (for tests and whole messages).
func findDatabaseDDL(sql []byte) ddlTarget {
	var lx sqlLexer
	lx.feed(sql)
	return lx.finish()
}

// mentionsDatabase says whether b holds "database" in any case: text without it holds no
// DATABASE DDL (keywords are never quoted, escaped or split by comments), which spares the
// lexer nearly every query.
func mentionsDatabase(b []byte) bool {
	// Find each 'b' (SIMD in bytes.IndexByte), then look around it: most queries have few.
	for _, c := range [2]byte{'b', 'B'} {
		for i := 4; i+4 <= len(b); {
			k := bytes.IndexByte(b[i:len(b)-3], c)
			if k < 0 {
				break
			}
			i += k
			w := b[i-4 : i+4]
			if w[0]|0x20 == 'd' && w[1]|0x20 == 'a' && w[2]|0x20 == 't' && w[3]|0x20 == 'a' &&
				w[5]|0x20 == 'a' && w[6]|0x20 == 's' && w[7]|0x20 == 'e' {
				return true
			}
			i++
		}
	}
	return false
}

// msgDDL follows one Query or Parse message through the client direction, possibly over
// several reads: for a Parse it skips the statement name (keeping it) and reads the text up
// to its NUL; a Query's body is the text.
type msgDDL struct {
	active bool
	parse  bool
	inName bool   // Parse: still in the statement name
	name   []byte // Parse: the statement name (nameLong once it passed maxStmtName)
	long   bool
	inText bool
	lx     sqlLexer
}

// maxStmtName bounds the prepared statement names kept for DDL (longer ones are not
// remembered: their Binds do not drain again, the 55006 fallback remains).
const maxStmtName = 256

// start begins a message of type typ ('Q' or 'P').
func (m *msgDDL) start(typ byte) {
	m.active, m.parse, m.inName, m.inText, m.long = true, typ == 'P', typ == 'P', typ == 'Q', false
	m.name = m.name[:0]
	m.lx.reset()
}

// feed takes the next bytes of the message's body.
func (m *msgDDL) feed(b []byte) {
	if m.inName {
		i := bytes.IndexByte(b, 0)
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if len(m.name)+len(part) > maxStmtName {
			m.long = true
		} else {
			m.name = append(m.name, part...)
		}
		if i < 0 {
			return
		}
		m.inName, m.inText = false, true
		b = b[i+1:]
	}
	if m.inText {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
			m.inText = false
		}
		m.lx.feed(b)
	}
}

// clientDDL is the client direction's DDL state (clientStream): the message being read and
// the named statements found to be DATABASE DDL (for their Binds).
type clientDDL struct {
	msg   msgDDL
	named map[string]ddlTarget
}

// begin inspects a Query or Parse message whose body this read holds whole, and returns what
// must be drained before it is forwarded; a message not whole here is only started, and its
// bytes come through more (the relay's skip over them).
func (d *clientDDL) begin(typ byte, body []byte, whole bool) ddlTarget {
	if whole && !mentionsDatabase(body) {
		if typ == 'P' && len(d.named) > 0 {
			if i := bytes.IndexByte(body, 0); i >= 0 {
				delete(d.named, string(body[:i])) // replaced by a statement that is no DDL
			}
		}
		return ddlTarget{}
	}
	d.msg.start(typ)
	if !whole {
		return ddlTarget{}
	}
	d.msg.feed(body)
	return d.end()
}

// more feeds the rest of a message begun in an earlier read; whole says this is its end.
func (d *clientDDL) more(b []byte, whole bool) ddlTarget {
	if !d.msg.active {
		return ddlTarget{}
	}
	d.msg.feed(b)
	if !whole {
		return ddlTarget{}
	}
	return d.end()
}

func (d *clientDDL) end() ddlTarget {
	m := &d.msg
	m.active = false
	t := m.lx.finish()
	if m.parse && !m.long && !m.inName {
		switch {
		case !t.none():
			if d.named == nil {
				d.named = map[string]ddlTarget{}
			}
			if len(d.named) < 64 {
				d.named[string(m.name)] = ddlTarget{all: t.all, dbs: append([]string(nil), t.dbs...)}
			}
		case len(d.named) > 0:
			delete(d.named, string(m.name))
		}
	}
	return t
}

// bind returns what a Bind of a remembered DDL statement needs drained; body is what this
// read holds of the message. need is how many body bytes it must see to tell (0: enough).
func (d *clientDDL) bind(body []byte, whole bool) (t ddlTarget, need int) {
	if len(d.named) == 0 {
		return t, 0
	}
	i := bytes.IndexByte(body, 0) // end of the portal name
	j := -1
	if i >= 0 {
		j = bytes.IndexByte(body[i+1:], 0)
	}
	if j < 0 {
		if whole || len(body) >= 2*maxStmtName+2 {
			return t, 0 // malformed, or a name too long to be remembered
		}
		return t, 2*maxStmtName + 2
	}
	return d.named[string(body[i+1:i+1+j])], 0
}

// closeStmt forgets a statement the client closed ('C' with 'S').
func (d *clientDDL) closeStmt(body []byte) {
	if len(d.named) == 0 || len(body) < 2 || body[0] != 'S' {
		return
	}
	if i := bytes.IndexByte(body[1:], 0); i >= 0 {
		delete(d.named, string(body[1:1+i]))
	}
}

// errorCode returns an ErrorResponse body's SQLSTATE ("" when it has none).
func errorCode(body []byte) string {
	for len(body) > 1 && body[0] != 0 {
		typ := body[0]
		i := bytes.IndexByte(body[1:], 0)
		if i < 0 {
			return ""
		}
		if typ == 'C' {
			return string(body[1 : 1+i])
		}
		body = body[2+i:]
	}
	return ""
}

// drainForDDL closes the node's idle pooled backends that t names and makes those of them
// in use close when their clients leave; called by the client direction before it forwards
// the statement.
func (s *session) drainForDDL(t ddlTarget) {
	if t.none() || !s.r.pool.enabled() {
		return
	}
	s.r.mu.Lock()
	addr := s.backendAddr
	s.r.mu.Unlock()
	s.r.pool.drainDatabases(addr, t)
	s.r.pool.ddlDrains.Add(1)
}

// drainDatabases is drain for the databases t names on node addr (all of them with t.all).
func (p *backendPool) drainDatabases(addr string, t ddlTarget) {
	if t.all {
		p.drainFor(addr, closedDDL)
		return
	}
	p.mu.Lock()
	p.gen++
	if p.sinceDB == nil || len(p.sinceDB) >= 1024 {
		// Bounded: past it, one drain of the node stands for the older ones.
		if p.sinceDB != nil {
			p.since[addr] = p.gen
		}
		p.sinceDB = map[string]uint64{}
	}
	for _, db := range t.dbs {
		p.sinceDB[addr+"\x00"+db] = p.gen
	}
	p.mu.Unlock()
	p.discard(closedDDL, p.take(func(pb *pooledBackend) bool { return pb.addr == addr && t.names(pb.database()) })...)
}

func (t ddlTarget) names(db string) bool {
	for _, d := range t.dbs {
		if d == db {
			return true
		}
	}
	return false
}

// database is the database a pooled backend is on (PostgreSQL's default: the user's name).
func (pb *pooledBackend) database() string {
	if db := pb.startup["database"]; db != "" {
		return db
	}
	return pb.startup["user"]
}

// drainedDBLocked says whether pb's database was drained after pb was opened; call with p.mu
// held.
func (p *backendPool) drainedDBLocked(pb *pooledBackend) bool {
	if len(p.sinceDB) == 0 {
		return false
	}
	return pb.born < p.sinceDB[pb.addr+"\x00"+pb.database()]
}

// noteBackendError is the fallback: a backend that answers 55006 (object in use: a database
// still has other sessions) makes the router close the node's idle pooled backends, so that
// the client's retry finds none.
func (s *session) noteBackendError(body []byte) {
	if errorCode(body) != "55006" {
		return
	}
	s.r.mu.Lock()
	addr := s.backendAddr
	s.r.mu.Unlock()
	if s.r.pool.evict(addr, closedDDL) > 0 {
		s.r.pool.ddlDrains.Add(1)
	}
}
