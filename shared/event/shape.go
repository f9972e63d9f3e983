package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Limits on the shape of what a client sends, checked over the raw bytes
// before anything is decoded (CheckBatchShape), so that neither deep
// nesting nor long arrays cost a decoder recursion or memory beyond a small
// multiple of the body.
const (
	// MaxPayloadDepth bounds how deeply a payload nests arrays and objects
	// (a payload that is an object holding an array has depth 2). MCP
	// messages nest a dozen levels at most; encoding/json alone would stop
	// at 10,000, deep enough to exhaust a stack elsewhere.
	MaxPayloadDepth = 128
	// MaxCommandArgs bounds Session.Command.
	MaxCommandArgs = 256
	// MaxWarnings bounds Session.Warnings, and MaxWarningLen each warning,
	// in bytes.
	MaxWarnings   = 32
	MaxWarningLen = 1024
)

// ShapeError is a body refused by CheckBatchShape or CheckEventShape.
type ShapeError struct {
	// Path names where the problem is, as in "events[3].risk.reasons",
	// or "body" for the nesting limit.
	Path string
	Msg  string
	// TooMany is set when the batch holds more events or sessions than
	// allowed (HTTP 413 rather than 400).
	TooMany bool
}

func (e *ShapeError) Error() string { return e.Path + ": " + e.Msg }

// role is what a JSON container of a batch body holds, as far as the
// limits care; roleOther is a payload or a field this version does not
// know, where only the depth counts.
type role uint8

const (
	roleOther role = iota
	roleBatch
	roleEvents
	roleSessions
	roleEvent
	roleSession
	roleRisk
	roleReasons
	roleCommand
	roleWarnings
)

// field is how a known key appears in a path, and what its value holds.
var fields = [...]struct {
	parent role
	key    string
	child  role
}{
	{roleBatch, "events", roleEvents},
	{roleBatch, "sessions", roleSessions},
	{roleEvent, "risk", roleRisk},
	{roleRisk, "reasons", roleReasons},
	{roleSession, "command", roleCommand},
	{roleSession, "warnings", roleWarnings},
}

type frame struct {
	role   role
	object bool
	// wantKey: the next string of this object is a key.
	wantKey bool
	// wantValue: the next non-blank byte of this array starts an element.
	wantValue bool
	n         int  // elements seen so far (arrays)
	next      role // role of the value after the current key (objects)
}

// shapeScanner walks a JSON text once, without recursion: its stack is a
// fixed array, so a body of any depth costs the same few KiB.
type shapeScanner struct {
	maxDepth int
	maxItems int
	depth    int
	stack    [MaxPayloadDepth + 4]frame
}

// CheckBatchShape checks a batch body before it is decoded: it nests at
// most MaxPayloadDepth levels below an event (unknown fields included), its
// events and sessions arrays hold at most maxItems elements, and an event's
// risk reasons, a session's command and warnings stay within MaxReasons,
// MaxCommandArgs and MaxWarnings. It judges nothing else: malformed JSON
// passes, for the decoder to word the error.
func CheckBatchShape(body []byte, maxItems int) error {
	s := shapeScanner{maxDepth: MaxPayloadDepth + 3, maxItems: maxItems}
	return s.scan(body, roleBatch)
}

// CheckEventShape is CheckBatchShape for the body of one event.
func CheckEventShape(body []byte) error {
	s := shapeScanner{maxDepth: MaxPayloadDepth + 1}
	return s.scan(body, roleEvent)
}

// PayloadTooDeep reports whether p nests deeper than MaxPayloadDepth.
func PayloadTooDeep(p []byte) bool {
	if bytes.IndexAny(p, "[{") < 0 {
		return false
	}
	s := shapeScanner{maxDepth: MaxPayloadDepth}
	return s.scan(p, roleOther) != nil
}

func (s *shapeScanner) scan(b []byte, top role) error {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		var f *frame
		if s.depth > 0 {
			f = &s.stack[s.depth-1]
			if f.role == roleOther {
				// A payload or an unknown field: only its depth counts.
				var err error
				if i, err = s.skipOther(b, i); err != nil {
					return err
				}
				continue
			}
			if !f.object && f.wantValue && c != ']' {
				f.wantValue = false
				f.n++
				if err := s.checkItems(f); err != nil {
					return err
				}
			}
		}
		switch c {
		case '"':
			end := stringEnd(b, i+1)
			if f != nil && f.object && f.wantKey {
				f.wantKey = false
				f.next = childRole(f.role, b[i+1:end])
			}
			i = end
		case ':':
			// The key came first; the value's role is already in next.
		case ',':
			if f != nil {
				if f.object {
					f.wantKey, f.next = true, roleOther
				} else {
					f.wantValue = true
				}
			}
		case '{', '[':
			r := top
			if f != nil {
				r = roleOther
				if f.object {
					r = f.next
				} else {
					r = elementRole(f.role)
				}
			}
			if s.depth == s.maxDepth {
				return s.tooDeep(i)
			}
			if (c == '{') != objectRole(r) {
				r = roleOther // a wrong type: the decoder refuses it
			}
			s.stack[s.depth] = frame{role: r, object: c == '{', wantKey: c == '{', wantValue: c == '['}
			s.depth++
		case '}', ']':
			if s.depth > 0 {
				s.depth--
			}
		}
	}
	return nil
}

// skipOther walks the inside of a container whose contents have no
// limits of their own, from b[i], counting depth alone, and returns the
// index of the byte that closes it (or len(b)).
func (s *shapeScanner) skipOther(b []byte, i int) (int, error) {
	base := s.depth - 1
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i+1)
		case '[', '{':
			if s.depth == s.maxDepth {
				return i, s.tooDeep(i)
			}
			s.stack[s.depth] = frame{role: roleOther}
			s.depth++
		case ']', '}':
			if s.depth--; s.depth == base {
				return i, nil
			}
		}
	}
	return i, nil
}

func (s *shapeScanner) tooDeep(i int) error {
	return &ShapeError{Path: "body", Msg: fmt.Sprintf(
		"nests deeper than %d levels at byte %d (a payload may nest at most %d)", s.maxDepth, i, MaxPayloadDepth)}
}

// stringEnd returns the index of the quote closing the string that starts
// at b[i], or len(b).
func stringEnd(b []byte, i int) int {
	// Most strings are short keys and names: a plain loop beats the call.
	for j := i; j < len(b) && j < i+32; j++ {
		switch b[j] {
		case '"':
			return j
		case '\\':
			j++
			if j+1 >= i+32 { // an escape at the edge: leave it to the general case
				return stringEndLong(b, i)
			}
		}
	}
	return stringEndLong(b, i)
}

func stringEndLong(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		j += i
		k := j
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		i = j + 1
	}
}

func objectRole(r role) bool {
	switch r {
	case roleEvents, roleSessions, roleReasons, roleCommand, roleWarnings:
		return false
	case roleOther:
		return true // either
	}
	return true
}

func elementRole(r role) role {
	switch r {
	case roleEvents:
		return roleEvent
	case roleSessions:
		return roleSession
	}
	return roleOther
}

// childRole maps a key to the role of its value. Keys match as the
// decoders match field names: case-insensitively (Unicode folding
// included: "ſessions" is "sessions" to encoding/json), escapes decoded.
func childRole(parent role, key []byte) role {
	if parent == roleOther || len(key) > 128 { // longer than any spelling of a known key
		return roleOther
	}
	plain := true
	for _, c := range key {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if !plain && bytes.IndexByte(key, '\\') >= 0 {
		var k string
		if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
			return roleOther
		}
		key = []byte(k)
	}
	for _, f := range fields {
		// An ASCII key can only fold to a known key of its own length.
		if f.parent == parent && (!plain || len(key) == len(f.key)) && bytes.EqualFold(key, []byte(f.key)) {
			return f.child
		}
	}
	return roleOther
}

func (s *shapeScanner) checkItems(f *frame) error {
	var limit int
	var what string
	switch f.role {
	case roleEvents, roleSessions:
		if s.maxItems <= 0 {
			return nil
		}
		limit, what = s.maxItems, "events"
		if f.role == roleSessions {
			what = "sessions"
		}
	case roleReasons:
		limit, what = MaxReasons, "reasons"
	case roleCommand:
		limit, what = MaxCommandArgs, "arguments"
	case roleWarnings:
		limit, what = MaxWarnings, "warnings"
	default:
		return nil
	}
	if f.n <= limit {
		return nil
	}
	return &ShapeError{Path: s.path(), Msg: fmt.Sprintf("more than %d %s; at most %d are allowed", limit, what, limit),
		TooMany: f.role == roleEvents || f.role == roleSessions}
}

// path names the innermost known container, as in events[3].risk.reasons.
func (s *shapeScanner) path() string {
	var b strings.Builder
	for i := 0; i < s.depth; i++ {
		f := &s.stack[i]
		switch f.role {
		case roleEvents:
			b.WriteString("events")
		case roleSessions:
			b.WriteString("sessions")
		case roleRisk:
			b.WriteString(".risk")
		case roleReasons:
			b.WriteString(".reasons")
		case roleCommand:
			b.WriteString(".command")
		case roleWarnings:
			b.WriteString(".warnings")
		}
		if (f.role == roleEvents || f.role == roleSessions) && i+1 < s.depth {
			b.WriteString("[" + strconv.Itoa(f.n-1) + "]")
		}
	}
	return strings.TrimPrefix(b.String(), ".")
}
