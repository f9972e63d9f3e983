package monitor

import (
	"bytes"
	"strings"
)

// The scanner reads one line incrementally, as its bytes arrive, without
// keeping the line: it checks that the line is one JSON value and picks out
// the few scalars an event needs (id, method, error code, isError, tool
// or prompt name, resource uri, the initialize handshake's names and
// versions) and where the texts saying why a reply failed sit. Huge messages are
// only ever seen a chunk at a time, so their kind, id and result flags come
// out right even when they sit past the captured prefix (the TypeScript SDK
// writes "id" after "result", for example).
//
// It is deliberately lax about the inside of strings (escapes, control
// bytes): the recorder re-checks any payload it keeps with json.Valid.

// field names a scalar the monitor wants from a message.
type field uint8

const (
	fNone field = iota
	fJSONRPC
	fID
	fMethod
	fResult // presence only
	fError  // presence only
	fErrorCode
	fIsError
	fToolName
	fProtocolVersion
	fClientName
	fClientVersion
	fServerName
	fServerVersion
	fURI
	fRetry // presence only: params.inputResponses or params.requestState
	// The two reason texts are spans, not captures (see msgInfo.reason).
	fErrorMessage // error.message
	fContentText  // result.content[].text
	numFields
)

// keyID classifies an object key on the path to a wanted scalar.
type keyID uint8

const (
	kOther keyID = iota
	kArray       // the "key" of an array level: never part of a wanted path
	kJSONRPC
	kID
	kMethod
	kResult
	kError
	kParams
	kCode
	kIsError
	kName
	kVersion
	kProtocolVersion
	kClientInfo
	kServerInfo
	kMeta
	kMessage
	kContent
	kText
	kURI
	kRetryState // inputResponses, requestState
)

func keyOf(k []byte) keyID {
	switch string(k) {
	case "jsonrpc":
		return kJSONRPC
	case "id":
		return kID
	case "method":
		return kMethod
	case "result":
		return kResult
	case "error":
		return kError
	case "params":
		return kParams
	case "code":
		return kCode
	case "isError":
		return kIsError
	case "name":
		return kName
	case "version":
		return kVersion
	case "_meta":
		return kMeta
	case "message":
		return kMessage
	case "content":
		return kContent
	case "text":
		return kText
	case "uri":
		return kURI
	case "inputResponses", "requestState":
		return kRetryState
	}
	// The 2026-07-28 revision moves the handshake into _meta under
	// namespaced keys ("io.modelcontextprotocol/clientInfo"), so match by
	// suffix.
	switch s := string(k); {
	case strings.HasSuffix(s, "protocolVersion"):
		return kProtocolVersion
	case strings.HasSuffix(s, "clientInfo"):
		return kClientInfo
	case strings.HasSuffix(s, "serverInfo"):
		return kServerInfo
	}
	return kOther
}

// fieldOf maps a key path, relative to the message object, to a wanted
// field.
func fieldOf(path []keyID) field {
	switch len(path) {
	case 1:
		switch path[0] {
		case kJSONRPC:
			return fJSONRPC
		case kID:
			return fID
		case kMethod:
			return fMethod
		case kResult:
			return fResult
		case kError:
			return fError
		}
		return fNone
	case 0:
		return fNone
	}
	top := path[0]
	if top != kParams && top != kResult && top != kError {
		return fNone
	}
	rest := path[1:]
	if len(rest) == 1 {
		switch {
		case top == kError && rest[0] == kCode:
			return fErrorCode
		case top == kError && rest[0] == kMessage:
			return fErrorMessage
		case top == kParams && rest[0] == kURI:
			return fURI
		case top == kParams && rest[0] == kRetryState:
			return fRetry
		case top == kResult && rest[0] == kIsError:
			return fIsError
		case top == kParams && rest[0] == kName:
			return fToolName
		case rest[0] == kProtocolVersion:
			return fProtocolVersion
		}
		return fNone
	}
	if top == kError {
		return fNone
	}
	if top == kResult && len(rest) == 3 && rest[0] == kContent && rest[1] == kArray && rest[2] == kText {
		return fContentText
	}
	if rest[0] == kMeta {
		rest = rest[1:]
		if len(rest) == 1 && rest[0] == kProtocolVersion {
			return fProtocolVersion
		}
	}
	if len(rest) != 2 {
		return fNone
	}
	switch {
	case rest[0] == kClientInfo && rest[1] == kName:
		return fClientName
	case rest[0] == kClientInfo && rest[1] == kVersion:
		return fClientVersion
	case rest[0] == kServerInfo && rest[1] == kName:
		return fServerName
	case rest[0] == kServerInfo && rest[1] == kVersion:
		return fServerVersion
	}
	return fNone
}

// msgInfo is what the scanner found about one JSON-RPC message: the line's
// value, or one element of a batch array.
type msgInfo struct {
	start, end int64 // byte offsets within the line
	object     bool
	has        [numFields]bool
	// scalars holds the wanted scalars as written (strings with their
	// quotes), one after another, and vals where each sits in it (see
	// val). One small buffer and offsets, rather than a slice per field,
	// keep a queued line small: when the store or the machine stalls the
	// pipeline, a thousand lines wait in the capture queue, and a slice
	// header per field was half of what each cost, and of what the
	// monitor's peak RSS rose by in long sessions (docs/performance.md).
	scalars []byte
	vals    [numFields]scalarAt
	// reason holds where error.message and the first result.content[].text
	// sit in the line, quotes included. Most replies succeed and their
	// reasons are never read, so the scanner notes two offsets instead of
	// copying text; the builder reads a failed reply's from the prefix.
	reason [2]span
}

// scalarAt is where a captured scalar sits in msgInfo.scalars; n is zero
// when the scalar is absent or was longer than maxScalar.
type scalarAt struct{ off, n uint16 }

// val returns the scalar captured for f as written, nil when there is none.
func (m *msgInfo) val(f field) []byte {
	v := m.vals[f]
	if v.n == 0 {
		return nil
	}
	return m.scalars[v.off : v.off+v.n : v.off+v.n]
}

// setVal captures v for f. A repeated member's last value counts; the
// earlier one's bytes are taken out, so a line of repeats cannot grow the
// buffer past one value per field.
func (m *msgInfo) setVal(f field, v []byte) {
	if old := m.vals[f]; old.n > 0 {
		m.scalars = append(m.scalars[:old.off], m.scalars[old.off+old.n:]...)
		for i := range m.vals {
			if m.vals[i].n > 0 && m.vals[i].off > old.off {
				m.vals[i].off -= old.n
			}
		}
	}
	if m.scalars == nil {
		m.scalars = make([]byte, 0, scalarsCap)
	}
	m.vals[f] = scalarAt{off: uint16(len(m.scalars)), n: uint16(len(v))}
	m.scalars = append(m.scalars, v...)
}

// span is a range of line offsets; end is zero while the value is open or
// absent.
type span struct{ start, end int64 }

func reasonIndex(f field) int { return int(f - fErrorMessage) }

const (
	maxScalar = 512
	// scalarsCap is the first capacity of msgInfo.scalars: what a request's
	// jsonrpc, id, method and tool name take, in one allocation.
	scalarsCap = 64
	maxKey     = 64
	// maxDepth matches encoding/json's nesting limit; deeper lines are
	// invalid rather than a way to grow the monitor's memory.
	maxDepth = 10000
)

type scanState uint8

const (
	sValue      scanState = iota // a value must follow
	sValueOrEnd                  // just after '['
	sKeyOrEnd                    // just after '{'
	sKey                         // after ',' in an object
	sColon                       // after a key
	sAfterValue                  // ',' or the container's close
	sString                      // inside a string
	sNumber                      // inside a number
	sLiteral                     // inside true, false or null
	sDone                        // the line's value is complete
	sInvalid                     // not JSON; the rest is ignored
)

type scanner struct {
	pos   int64
	state scanState
	stack []byte  // '{' or '[' per open container
	keys  []keyID // the current key of each open container
	top   byte    // first byte of the line's value: '{', '[', or another value byte; 0 while blank

	// string state
	strIsKey bool
	bsRun    int // backslashes just before the next byte
	keyBuf   []byte
	keyLong  bool

	lit    string
	litIdx int

	// capture of the current scalar
	capField field
	capBuf   []byte
	capLong  bool
	// spanField is the reason field whose string is open, fNone if none.
	spanField field

	msgDepth int // stack depth at which messages sit: 0 (object) or 1 (batch)
	// stepOnly turns skipDeep off, for the tests that hold it to step.
	stepOnly bool
	cur      *msgInfo
	msgs     []msgInfo
}

func (s *scanner) reset() {
	s.pos, s.state, s.top = 0, sValue, 0
	s.stack, s.keys = s.stack[:0], s.keys[:0]
	s.cur, s.msgs = nil, nil
	s.capField, s.spanField = fNone, fNone
}

// blank reports whether the line so far held only whitespace.
func (s *scanner) blank() bool { return s.top == 0 && s.state == sValue }

// valid reports whether the whole line is a JSON object or array.
func (s *scanner) valid() bool {
	s.endNumberAtEOL()
	return s.state == sDone && (s.top == '{' || s.top == '[')
}

func (s *scanner) endNumberAtEOL() {
	if s.state == sNumber {
		s.endScalar(s.pos)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func (s *scanner) write(p []byte) {
	for len(p) > 0 {
		if s.deep() {
			if n := s.skipDeep(p); n > 0 {
				p = p[n:]
				continue
			}
		}
		switch s.state {
		case sInvalid:
			s.pos += int64(len(p))
			return
		case sString:
			p = p[s.scanString(p):]
			continue
		case sNumber:
			// Runs of digits and blanks are most of what structured
			// content has outside strings; taking them whole keeps the
			// per-byte step off them.
			if i := numberRun(p); i > 0 {
				s.capture(p[:i])
				s.pos += int64(i)
				p = p[i:]
				continue
			}
		case sAfterValue, sColon, sKey, sKeyOrEnd:
			// Most of structured content is the punctuation between
			// values and the keys after it: those are taken here, not
			// through step (3.6 ms per MiB of JSON rows went to the
			// dispatch of one byte at a time).
			if s.punct(p[0]) {
				s.pos++
				p = p[1:]
				continue
			}
			if i := spaceRun(p); i > 0 {
				s.pos += int64(i)
				p = p[i:]
				continue
			}
		case sValue, sValueOrEnd, sDone:
			if i := spaceRun(p); i > 0 {
				s.pos += int64(i)
				p = p[i:]
				continue
			}
		}
		s.step(p[0])
		s.pos++
		p = p[1:]
	}
}

func isNumberByte(c byte) bool {
	return c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9')
}

func numberRun(p []byte) int {
	i := 0
	for i < len(p) && isNumberByte(p[i]) {
		i++
	}
	return i
}

func spaceRun(p []byte) int {
	i := 0
	for i < len(p) && isSpace(p[i]) {
		i++
	}
	return i
}

// wantedDepth is how deep under a message a value can still be wanted
// (fieldOf's paths, keyWanted).
const wantedDepth = 4

// deep reports whether the scanner is inside a message, past wantedDepth:
// there the scan only checks the grammar, and skipDeep may take over.
func (s *scanner) deep() bool {
	return !s.stepOnly && s.cur != nil && len(s.stack)-s.msgDepth > wantedDepth
}

// skipDeep scans bytes inside a message past wantedDepth, as step would
// but without its dispatch and bookkeeping, which nothing there needs:
// no key is kept, no value captured, no message begins or ends. It is what
// the bulk of structured content (rows of a query result) costs the
// relay goroutine: 3.4 ms per MiB of JSON rows through step, against the
// bare copy's 0.6 ms for the whole relay. It stops at the first byte it
// leaves to step (the chunk's end inside a token, anything invalid) or when
// the scan climbs back to wantedDepth, and returns how many bytes it took.
func (s *scanner) skipDeep(p []byte) int {
	floor := s.msgDepth + wantedDepth
	st, stack, keys := s.state, s.stack, s.keys
	i := 0
loop:
	for i < len(p) {
		c := p[i]
		if isSpace(c) && st != sString && st != sNumber && st != sLiteral {
			i++
			continue
		}
		switch st {
		case sAfterValue, sKeyOrEnd, sValueOrEnd:
			open := stack[len(stack)-1]
			switch {
			case c == ',' && st == sAfterValue:
				st = sValue
				if open == '{' {
					st = sKey
				}
				i++
				continue
			case st != sValueOrEnd && c == '}' && open == '{', st != sKeyOrEnd && c == ']' && open == '[':
				stack, keys = stack[:len(stack)-1], keys[:len(keys)-1]
				st = sAfterValue
				i++
				if len(stack) <= floor {
					break loop
				}
				continue
			}
		}
		switch st {
		case sKey, sKeyOrEnd:
			if c != '"' {
				break loop
			}
			j := closingQuote(p[i+1:], 0)
			if j < 0 {
				break loop
			}
			keys[len(keys)-1] = kOther
			st = sColon
			i += j + 2
		case sColon:
			if c != ':' {
				break loop
			}
			st = sValue
			i++
		case sValue, sValueOrEnd:
			switch {
			case c == '"':
				j := closingQuote(p[i+1:], 0)
				if j < 0 {
					break loop
				}
				st = sAfterValue
				i += j + 2
			case c == '{' || c == '[':
				if len(stack) >= maxDepth {
					break loop
				}
				stack, keys = append(stack, c), append(keys, kArray)
				st = sValueOrEnd
				if c == '{' {
					st = sKeyOrEnd
				}
				i++
			case c == '-' || (c >= '0' && c <= '9'):
				n := numberRun(p[i:])
				if i+n == len(p) {
					break loop // the number may go on in the next chunk
				}
				st = sAfterValue
				i += n
			case c == 't' || c == 'f' || c == 'n':
				lit := literalOf(c)
				if i+len(lit) > len(p) || string(p[i:i+len(lit)]) != lit {
					break loop
				}
				st = sAfterValue
				i += len(lit)
			default:
				break loop
			}
		default:
			break loop
		}
	}
	s.state, s.stack, s.keys = st, stack, keys
	s.pos += int64(i)
	return i
}

// keyWanted reports whether a key opening now, in the innermost open
// object, can be on the path to a wanted field (see beginValue and
// fieldOf). Other keys are never looked at, so they are neither kept nor
// classified: in a big result that is nearly all of them.
func (s *scanner) keyWanted() bool {
	rel := len(s.stack) - s.msgDepth
	if s.cur == nil || rel < 1 || rel > wantedDepth {
		return false
	}
	if rel == 1 {
		return true
	}
	switch s.keys[s.msgDepth] {
	case kParams, kResult, kError:
		return true
	}
	return false
}

// scanString consumes string bytes up to and including the closing quote,
// jumping between quotes with IndexByte: strings are where big payloads
// live. It advances s.pos past what it consumed.
func (s *scanner) scanString(p []byte) int {
	end := closingQuote(p, s.bsRun)
	if end < 0 {
		s.stringRun(p)
		return len(p)
	}
	end++
	s.keep(p[:end])
	s.bsRun = 0
	s.pos += int64(end)
	s.endString()
	return end
}

// stringRun takes bytes inside a string that hold no closing quote: a
// chunk that ends before its string does, or (framer.stringBody) the run
// up to the next quote or newline.
func (s *scanner) stringRun(b []byte) {
	s.keep(b)
	s.bsRun = trailingBackslashes(b, s.bsRun)
	s.pos += int64(len(b))
}

// escapes reports whether a quote that came now would be escaped: an odd
// run of backslashes precedes it.
func (s *scanner) escapes() bool { return s.bsRun%2 == 1 }

// closingQuote returns the index in p of the quote that closes a string
// whose content goes on in p, carry backslashes having ended the bytes
// before p; or -1, when p ends first. A quote is escaped when an odd run
// of backslashes precedes it.
func closingQuote(p []byte, carry int) int {
	for off := 0; ; {
		j := bytes.IndexByte(p[off:], '"')
		if j < 0 {
			return -1
		}
		if trailingBackslashes(p[off:off+j], carry)%2 == 0 {
			return off + j
		}
		// An escaped quote: no backslash run carries past it.
		off, carry = off+j+1, 0
	}
}

// trailingBackslashes counts the backslashes at the end of b, continuing a
// run of carry from before b when b is all backslashes.
func trailingBackslashes(b []byte, carry int) int {
	n := 0
	for i := len(b) - 1; i >= 0 && b[i] == '\\'; i-- {
		n++
	}
	if n == len(b) {
		return carry + n
	}
	return n
}

// keep records string bytes when the string is a key or a wanted value.
func (s *scanner) keep(b []byte) {
	if s.strIsKey {
		if len(s.keyBuf)+len(b) > maxKey+1 { // +1: the closing quote
			s.keyLong = true
			return
		}
		s.keyBuf = append(s.keyBuf, b...)
		return
	}
	s.capture(b)
}

func (s *scanner) capture(b []byte) {
	if s.capField == fNone || s.capLong {
		return
	}
	if len(s.capBuf)+len(b) > maxScalar {
		s.capLong = true
		return
	}
	s.capBuf = append(s.capBuf, b...)
}

func (s *scanner) endString() {
	if s.strIsKey {
		k := kOther
		if !s.keyLong {
			k = keyOf(bytes.TrimSuffix(s.keyBuf, []byte{'"'}))
		}
		s.keys[len(s.keys)-1] = k
		s.state = sColon
		return
	}
	s.endScalar(s.pos)
}

func (s *scanner) invalid() { s.state = sInvalid }

func literalOf(c byte) string {
	switch c {
	case 't':
		return "true"
	case 'f':
		return "false"
	}
	return "null"
}

func (s *scanner) step(c byte) {
	switch s.state {
	case sValue, sValueOrEnd:
		switch {
		case isSpace(c):
		case c == '{' || c == '[':
			if len(s.stack) >= maxDepth {
				s.invalid()
				return
			}
			s.beginValue(c)
			s.stack = append(s.stack, c)
			s.keys = append(s.keys, kArray)
			s.capField = fNone
			if c == '{' {
				s.state = sKeyOrEnd
			} else {
				s.state = sValueOrEnd
			}
		case c == '"':
			s.beginValue(c)
			s.capture([]byte{c})
			s.strIsKey, s.bsRun = false, 0
			s.state = sString
		case c == '-' || (c >= '0' && c <= '9'):
			s.beginValue(c)
			s.capture([]byte{c})
			s.state = sNumber
		case c == 't' || c == 'f' || c == 'n':
			s.beginValue(c)
			s.capture([]byte{c})
			s.lit, s.litIdx = literalOf(c), 1
			s.state = sLiteral
		case c == ']' && s.state == sValueOrEnd:
			s.endContainer()
		default:
			s.invalid()
		}
	case sKeyOrEnd, sKey:
		switch {
		case isSpace(c):
		case s.punct(c):
		case c == '}' && s.state == sKeyOrEnd:
			s.endContainer()
		default:
			s.invalid()
		}
	case sColon:
		switch {
		case isSpace(c):
		case s.punct(c):
		default:
			s.invalid()
		}
	case sAfterValue:
		open := s.stack[len(s.stack)-1]
		switch {
		case isSpace(c):
		case s.punct(c):
		case (c == '}' && open == '{') || (c == ']' && open == '['):
			s.endContainer()
		default:
			s.invalid()
		}
	case sNumber:
		if isNumberByte(c) {
			s.capture([]byte{c})
			return
		}
		s.endScalar(s.pos)
		if s.state != sInvalid {
			s.step(c)
		}
	case sLiteral:
		if c != s.lit[s.litIdx] {
			s.invalid()
			return
		}
		s.capture([]byte{c})
		s.litIdx++
		if s.litIdx == len(s.lit) {
			s.endScalar(s.pos + 1)
		}
	case sDone:
		if !isSpace(c) {
			s.invalid()
		}
	}
}

// punct takes c when it is the comma after a value, the colon after a key
// or the quote that opens a key, and reports whether it did.
func (s *scanner) punct(c byte) bool {
	switch {
	case c == ',' && s.state == sAfterValue:
		if s.stack[len(s.stack)-1] == '{' {
			s.state = sKey
		} else {
			s.state = sValue
		}
	case c == ':' && s.state == sColon:
		s.state = sValue
	case c == '"' && (s.state == sKey || s.state == sKeyOrEnd):
		s.strIsKey, s.bsRun = true, 0
		// An unwanted key counts as too long: not kept, kOther.
		s.keyBuf, s.keyLong = s.keyBuf[:0], !s.keyWanted()
		s.state = sString
	default:
		return false
	}
	return true
}

// beginValue notes a value starting at s.pos: a message, or a wanted
// scalar inside the current message.
func (s *scanner) beginValue(c byte) {
	d := len(s.stack)
	if d == 0 {
		s.top = c
		switch c {
		case '{':
			s.msgDepth = 0
		case '[':
			s.msgDepth = 1
			return
		default:
			return
		}
	}
	if d == s.msgDepth {
		s.msgs = append(s.msgs, msgInfo{start: s.pos, object: c == '{'})
		s.cur = &s.msgs[len(s.msgs)-1]
		return
	}
	if s.cur == nil || d <= s.msgDepth {
		return
	}
	rel := s.keys[s.msgDepth:d]
	if len(rel) > wantedDepth {
		return
	}
	f := fieldOf(rel)
	if f == fNone {
		return
	}
	if f == fErrorMessage || f == fContentText {
		// Only the first, and only a string.
		if !s.cur.has[f] && c == '"' {
			s.cur.has[f] = true
			s.cur.reason[reasonIndex(f)].start = s.pos
			s.spanField = f
		}
		return
	}
	s.cur.has[f] = true
	if f == fResult || f == fError || f == fRetry || c == '{' || c == '[' {
		return
	}
	s.capField, s.capBuf, s.capLong = f, s.capBuf[:0], false
}

// endScalar finishes a string, number or literal that ended just before
// offset end.
func (s *scanner) endScalar(end int64) {
	if s.capField != fNone && s.cur != nil {
		if !s.capLong {
			s.cur.setVal(s.capField, s.capBuf)
		}
	}
	if s.spanField != fNone && s.cur != nil {
		s.cur.reason[reasonIndex(s.spanField)].end = end
	}
	s.capField, s.spanField = fNone, fNone
	s.endValue(end)
}

func (s *scanner) endContainer() {
	s.stack = s.stack[:len(s.stack)-1]
	s.keys = s.keys[:len(s.keys)-1]
	s.endValue(s.pos + 1)
}

// endValue moves on after a value that ended just before offset end.
func (s *scanner) endValue(end int64) {
	d := len(s.stack)
	if s.cur != nil && d == s.msgDepth {
		s.cur.end = end
		s.cur = nil
	}
	if d == 0 {
		s.state = sDone
		return
	}
	s.state = sAfterValue
}
