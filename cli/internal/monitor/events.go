package monitor

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/jsonstr"
	"github.com/kilometers-ai/kilometers/shared/rpcpair"
)

const (
	// stringPayloadCap bounds the text kept for a line that is not
	// JSON-RPC (or a message too big to keep whole): escaped as a JSON
	// string it may grow up to six times and must stay under
	// event.MaxPayloadBytes.
	stringPayloadCap = 64 << 10
	// maxPending bounds the requests awaiting a reply; a peer that never
	// answers must not grow the monitor.
	maxPending = 4096
)

// handshake is what the session learns from initialize (or, in the
// 2026-07-28 revision, from _meta).
type handshake struct {
	ClientName, ClientVersion string
	ServerName, ServerVersion string
	ProtocolVersion           string
	serverProtocol            bool // ProtocolVersion came from the server
	serverSpoke               bool // a reply to initialize, or serverInfo, was seen
}

type pendingReq struct {
	method string
	// name is what the request names: the tool, prompt or resource uri
	// (see named).
	name string
	ts   time.Time
}

// built is an event and the raw bytes analysis should see.
type built struct {
	ev  event.Event
	raw []byte
}

// builder turns lines into events: numbering, classification and the
// correlation of replies with their requests. It is used by one goroutine.
type builder struct {
	sessionID string
	newID     func() string
	seq       int64
	pending   *rpcpair.Pending[pendingReq]
	hs        handshake
	// hsChanged is set when hs gained something since it was last cleared.
	hsChanged bool
	// built is what events returns, reused from line to line.
	built []built
	// payloads recycles the buffers of capped string payloads, the
	// payload of every message bigger than the kept prefix; nil allocates
	// each. took are the buffers handed out since the pipeline last
	// collected them: they go back once their events are recorded.
	payloads *prefixPool
	took     [][]byte
	// aliased says an event of the last line's payload is a slice of the
	// line's prefix (a message kept whole); otherwise the events hold no
	// byte of it once they are analysed.
	aliased bool
}

func newBuilder(sessionID string, newID func() string) *builder {
	return &builder{sessionID: sessionID, newID: newID, pending: rpcpair.NewPending[pendingReq](maxPending)}
}

func (b *builder) next(l *line, kind event.Kind, size int64) event.Event {
	b.seq++
	return event.Event{
		ID: b.newID(), SessionID: b.sessionID, Seq: b.seq, TS: l.ts.UTC(),
		Direction: l.dir, Kind: kind, Size: size,
	}
}

// events makes one event per message of l. The slice is valid until the
// next call: the pipeline copies what it keeps, and a slice per line was a
// third of what the monitor allocated per message.
func (b *builder) events(l *line) []built {
	clear(b.built)
	if cap(b.built) > keptBuilt {
		b.built = nil // a big batch's array is not kept for the session
	}
	b.built = b.built[:0]
	b.aliased = false
	if !l.valid || len(l.msgs) == 0 {
		ev := b.next(l, event.KindInvalid, l.size)
		ev.Payload, ev.PayloadTruncated = b.stringPayload(l.prefix, l.size)
		b.built = append(b.built, built{ev: ev, raw: l.prefix})
		return b.built
	}
	for i := range l.msgs {
		b.built = append(b.built, b.message(l, &l.msgs[i]))
	}
	return b.built
}

// keptBuilt is the most events' worth of array the builder and the
// pipeline keep between lines and batches; bigger ones go to the garbage
// collector, so a burst does not stay in the heap.
const keptBuilt = 64

func (b *builder) message(l *line, m *msgInfo) built {
	size := m.end - m.start
	if !l.batch {
		size = l.size // a lone message is the whole line, spaces and all
	}
	var raw []byte
	whole := m.end <= int64(len(l.prefix))
	if whole {
		raw = l.prefix[m.start:m.end]
	} else if m.start < int64(len(l.prefix)) {
		raw = l.prefix[m.start:]
	}
	kind := classify(m)
	if whole && kind != event.KindInvalid && !json.Valid(raw) {
		kind = event.KindInvalid
	}
	ev := b.next(l, kind, size)
	switch {
	case kind == event.KindInvalid || !whole:
		ev.Payload, ev.PayloadTruncated = b.stringPayload(raw, size)
	default:
		if !utf8.Valid(raw) {
			// Invalid UTF-8 can only sit inside strings of valid JSON;
			// replacing it keeps the payload valid JSON and encodable.
			raw = bytes.ToValidUTF8(raw, []byte("\uFFFD"))
		} else {
			b.aliased = true
		}
		ev.Payload = json.RawMessage(raw)
	}
	if kind == event.KindInvalid {
		return built{ev: ev, raw: raw}
	}
	ev.RPCID = idText(m.val(fID))
	switch kind {
	case event.KindRequest, event.KindNotification:
		ev.Method = capName(unquote(m.val(fMethod)))
		var name string
		switch ev.Method {
		case "tools/call", "prompts/get":
			name = capName(unquote(m.val(fToolName)))
		case "resources/read":
			name = capName(unquote(m.val(fURI)))
		}
		named(&ev, name)
		ev.Retry = kind == event.KindRequest && m.has[fRetry]
		if kind == event.KindRequest {
			b.pending.Request(l.dir, ev.RPCID, pendingReq{method: ev.Method, name: name, ts: l.ts})
		}
	case event.KindResponse, event.KindError:
		if req, ok := b.pending.Reply(l.dir, ev.RPCID); ok {
			ev.Method = req.method
			named(&ev, req.name)
			lat := float64(l.ts.Sub(req.ts).Microseconds()) / 1000
			ev.LatencyMS = &lat
		}
		if kind == event.KindError {
			if code, err := strconv.Atoi(string(m.val(fErrorCode))); err == nil {
				ev.ErrorCode = &code
			}
			ev.ErrorMessage = reasonText(l.prefix, m.reason[reasonIndex(fErrorMessage)])
		}
		if ev.Method == "tools/call" {
			isErr := kind == event.KindResponse && string(m.val(fIsError)) == "true"
			ev.IsError = &isErr
			if isErr {
				ev.ErrorMessage = reasonText(l.prefix, m.reason[reasonIndex(fContentText)])
			}
		}
	}
	b.learn(l.dir, &ev, m)
	return built{ev: ev, raw: raw}
}

// named sets the field of ev that holds what its method names.
func named(ev *event.Event, name string) {
	switch ev.Method {
	case "tools/call":
		ev.Tool = name
	case "prompts/get":
		ev.Prompt = name
	case "resources/read":
		ev.ResourceURI = name
	}
}

// reasonText decodes the JSON string at sp in a line whose first bytes are
// prefix, capped at event.MaxErrorMessage bytes. A string that runs past
// the prefix gives what the prefix holds of it.
func reasonText(prefix []byte, sp span) string {
	if sp.end == 0 || sp.start >= int64(len(prefix)) {
		return ""
	}
	raw := prefix[sp.start+1 : min(sp.end, int64(len(prefix)))] // past the opening quote
	return capText(decodeStringPrefix(raw, event.MaxErrorMessage), event.MaxErrorMessage)
}

// decodeStringPrefix decodes the body of a JSON string (after its opening
// quote) up to its closing quote, the end of raw, or anything that cannot
// be in a string (a malformed escape, a control byte), cut at max bytes of
// output; the caller cuts on a rune boundary. It is lenient because raw
// may be cut anywhere: the scanner does not validate strings, and the
// prefix may end inside one.
func decodeStringPrefix(raw []byte, max int) string {
	// An escape is at most six bytes for one of text: what lies past that
	// cannot reach max.
	raw = raw[:min(len(raw), 6*(max+utf8.UTFMax))]
	out := jsonstr.AppendDecoded(make([]byte, 0, min(len(raw), max+utf8.UTFMax)), raw[:jsonstr.BodyLen(raw)])
	return string(out[:min(len(out), max)])
}

// awaitsRequest reports whether l holds a reply whose request has not been
// seen. The two directions are relayed by two goroutines that each tap a
// chunk only after writing it on, so a fast server's reply can reach the
// pipeline before the request it answers.
func (b *builder) awaitsRequest(l *line) bool {
	if !l.valid {
		return false
	}
	for i := range l.msgs {
		m := &l.msgs[i]
		if k := classify(m); k != event.KindResponse && k != event.KindError {
			continue
		}
		id := idText(m.val(fID))
		if id == "" {
			continue // a reply to no request (a parse error) matches nothing
		}
		if !b.pending.Awaits(l.dir, id) {
			return true
		}
	}
	return false
}

// learn picks the handshake's names and versions out of a message.
func (b *builder) learn(dir event.Direction, ev *event.Event, m *msgInfo) {
	set := func(dst *string, f field) {
		if v := capName(unquote(m.val(f))); v != "" && *dst != v {
			*dst = v
			b.hsChanged = true
		}
	}
	if dir == event.ClientToServer {
		set(&b.hs.ClientName, fClientName)
		set(&b.hs.ClientVersion, fClientVersion)
		if !b.hs.serverProtocol {
			set(&b.hs.ProtocolVersion, fProtocolVersion)
		}
		return
	}
	set(&b.hs.ServerName, fServerName)
	set(&b.hs.ServerVersion, fServerVersion)
	if v := capName(unquote(m.val(fProtocolVersion))); v != "" {
		set(&b.hs.ProtocolVersion, fProtocolVersion)
		b.hs.serverProtocol = true
	}
	if b.hs.ServerName != "" || (ev.IsReply() && ev.Method == "initialize") {
		b.hs.serverSpoke = true
	}
}

// classify derives a message's kind from the members it has.
func classify(m *msgInfo) event.Kind {
	if !m.object {
		return event.KindInvalid
	}
	hasID := m.has[fID] && string(m.val(fID)) != "null"
	switch {
	case m.has[fMethod] && hasID:
		return event.KindRequest
	case m.has[fMethod]:
		return event.KindNotification
	case m.has[fError]:
		return event.KindError
	case m.has[fResult]:
		return event.KindResponse
	}
	return event.KindInvalid
}

// idText renders a JSON-RPC id as text: a number as written, a string
// unquoted.
func idText(raw []byte) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		return capName(unquote(raw))
	}
	return capName(string(raw))
}

// unquote decodes a JSON string as captured by the scanner; anything else
// (a number, a literal, an unusable string) gives "".
func unquote(raw []byte) string {
	s, _ := jsonstr.Unquote(raw)
	return s
}

// capName keeps names within what an event may hold, on a rune boundary.
func capName(s string) string { return capText(s, event.MaxNameLen) }

// capText makes s valid UTF-8 and cuts it to at most n bytes on a rune
// boundary.
func capText(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// stringPayload is the payload of a line that is not JSON-RPC: its text as
// a JSON string, capped.
func stringPayload(text []byte, size int64) (json.RawMessage, bool) {
	return appendStringPayload(nil, text, size)
}

// stringPayloadBuf is the capacity of a pooled string payload buffer: a
// capped text and an eighth for escapes, what stringPayload allocates for
// it. Text that escapes more outgrows it and is allocated as before.
const stringPayloadBuf = stringPayloadCap + stringPayloadCap/8 + 2

// stringPayload is the package's stringPayload, into a recycled buffer
// when the text is capped: a 1 MiB result's 64 KiB payload was the largest
// allocation the monitor made per message (48% of the bytes it allocated
// in 600 round trips), and with the store's line buffer most of its
// collections.
func (b *builder) stringPayload(text []byte, size int64) (json.RawMessage, bool) {
	if b.payloads == nil || len(text) < stringPayloadCap {
		return stringPayload(text, size)
	}
	buf := b.payloads.get()
	p, truncated := appendStringPayload(buf, text, size)
	if cap(p) == cap(buf) {
		b.took = append(b.took, p)
	}
	return p, truncated
}

// appendStringPayload encodes the payload of stringPayload into dst, which
// must be empty; with no capacity it allocates about the payload's size.
func appendStringPayload(dst, text []byte, size int64) (json.RawMessage, bool) {
	truncated := size > int64(len(text))
	if len(text) > stringPayloadCap {
		text, truncated = text[:stringPayloadCap], true
	}
	if !utf8.Valid(text) {
		// A run of invalid bytes becomes one U+FFFD (the encoder alone
		// would write one per byte).
		text = bytes.ToValidUTF8(text, []byte("\uFFFD"))
	}
	// Encoded straight from the bytes into a buffer of about its final
	// size: through string and json.Marshal it took three copies of up to
	// 64 KiB per large result.
	if cap(dst) == 0 {
		dst = make([]byte, 0, len(text)+len(text)/8+2)
	}
	return jsonstr.Append(dst[:0], text, true), truncated
}
