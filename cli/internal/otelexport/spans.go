package otelexport

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/ship"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/rpcpair"
)

// scopeName is the instrumentation scope of everything exported.
const scopeName = "github.com/kilometers-ai/kilometers"

// Attribute keys of our own namespace (the conventions have none for these).
const (
	attrRiskScore     = "kilometers.risk.score"
	attrRiskLevel     = "kilometers.risk.level"
	attrRiskReasons   = "kilometers.risk.reasons"
	attrServer        = "kilometers.server"
	attrServerName    = "kilometers.mcp.server.name"
	attrServerVersion = "kilometers.mcp.server.version"
	attrClientName    = "kilometers.mcp.client.name"
	attrClientVersion = "kilometers.mcp.client.version"
	attrEventID       = "kilometers.event.id"
)

// request is what a span needs of a request whose reply comes in a later
// batch: kept in the exporter's state between runs.
type request struct {
	TS          time.Time   `json:"ts"`
	Prompt      string      `json:"prompt,omitempty"`
	ResourceURI string      `json:"resource_uri,omitempty"`
	TraceParent string      `json:"traceparent,omitempty"`
	TraceState  string      `json:"tracestate,omitempty"`
	Arguments   string      `json:"arguments,omitempty"`
	Risk        *event.Risk `json:"risk,omitempty"`
}

// pairKey is the key that pairs a request with its reply within a
// session, by the product's one pairing rule (rpcpair), as text: the
// pending requests outlive the process, in the exporter's state.
func pairKey(e *event.Event) string {
	k := rpcpair.RequestKey(e.Direction, e.RPCID)
	if e.IsReply() {
		k = rpcpair.ReplyKey(e.Direction, e.RPCID)
	}
	return e.SessionID + "\x00" + string(k.Dir) + "\x00" + k.ID
}

// maxPending bounds the requests kept waiting for their replies: a server
// that never answers must not grow the state without end.
const maxPending = 4096

// pendingRequests are requests seen without their reply yet.
type pendingRequests map[string]request

// add remembers a request, dropping the oldest beyond maxPending.
func (p pendingRequests) add(k string, r request) {
	p[k] = r
	if len(p) <= maxPending {
		return
	}
	oldest, at := "", time.Time{}
	for k, v := range p {
		if oldest == "" || v.TS.Before(at) {
			oldest, at = k, v.TS
		}
	}
	delete(p, oldest)
}

// span is one exported span, before encoding.
type span struct {
	traceID    [16]byte
	spanID     [8]byte
	parentID   []byte
	traceState string
	sampled    bool
	name       string
	start, end time.Time
	attrs      []attr
	errMsg     string
	failed     bool
	session    string
}

// buildSpans turns a batch into spans: one per reply, with its request from
// the batch or from pending; requests without a reply yet go to pending.
func buildSpans(events []event.Event, sessions map[string]event.Session, pending pendingRequests, mode string) []span {
	var out []span
	for i := range events {
		e := &events[i]
		switch {
		case e.Kind == event.KindRequest && e.RPCID != "":
			pending.add(pairKey(e), requestOf(e, mode))
		case e.IsReply() && e.RPCID != "" && e.Method != "":
			k := pairKey(e)
			req, ok := pending[k]
			delete(pending, k)
			out = append(out, spanOf(e, req, ok, sessions[e.SessionID], mode))
		}
	}
	return out
}

// requestOf keeps what a span needs of a request.
func requestOf(e *event.Event, mode string) request {
	r := request{TS: e.TS, Prompt: e.Prompt, ResourceURI: e.ResourceURI, Risk: e.Risk}
	var p struct {
		Params struct {
			Name      string          `json:"name"`
			URI       string          `json:"uri"`
			Arguments json.RawMessage `json:"arguments"`
			Meta      struct {
				TraceParent string `json:"traceparent"`
				TraceState  string `json:"tracestate"`
			} `json:"_meta"`
		} `json:"params"`
	}
	if len(e.Payload) == 0 || json.Unmarshal(e.Payload, &p) != nil {
		return r
	}
	// Trace context is not payload content: it joins the trace in every
	// capture mode.
	r.TraceParent, r.TraceState = p.Params.Meta.TraceParent, p.Params.Meta.TraceState
	if r.Prompt == "" && e.Method == "prompts/get" {
		r.Prompt = p.Params.Name
	}
	if r.ResourceURI == "" && e.Method == "resources/read" {
		r.ResourceURI = p.Params.URI
	}
	if mode == config.CaptureFull && e.IsToolCall() {
		r.Arguments = outgoingField(e, mode, "arguments")
	}
	return r
}

// outgoingField is a params (request) or result (reply) field of e's
// payload as shipping would let it leave the machine: the same rule,
// ship.Outgoing; "" when that rule keeps the payload home.
func outgoingField(e *event.Event, mode, field string) string {
	p := ship.Outgoing(*e, mode).Payload
	if len(p) == 0 {
		return ""
	}
	var msg struct {
		Params map[string]json.RawMessage `json:"params"`
		Result json.RawMessage            `json:"result"`
	}
	if json.Unmarshal(p, &msg) != nil {
		return ""
	}
	if field == "result" {
		return string(msg.Result)
	}
	return string(msg.Params[field])
}

func spanOf(reply *event.Event, req request, haveReq bool, sess event.Session, mode string) span {
	s := span{end: reply.TS, session: reply.SessionID}
	if haveReq {
		s.start = req.TS
	} else {
		// The request went out in a batch that is gone (a crash between
		// saving the state and the ack): the reply's latency places it.
		s.start = reply.TS
		if reply.LatencyMS != nil {
			s.start = reply.TS.Add(-time.Duration(*reply.LatencyMS * float64(time.Millisecond)))
		}
	}
	// Ids are derived from the reply's event id: the same span whenever
	// the same events are exported again.
	sum := sha256.Sum256([]byte("kilometers span " + reply.ID))
	copy(s.traceID[:], sum[:16])
	copy(s.spanID[:], sum[16:24])
	if tid, pid, flags, ok := parseTraceParent(req.TraceParent); ok {
		s.traceID, s.parentID, s.traceState = tid, pid[:], req.TraceState
		s.sampled = flags&sampledTraceFlags != 0
	} else {
		s.sampled = true
	}

	prompt := firstNonEmpty(reply.Prompt, req.Prompt)
	uri := firstNonEmpty(reply.ResourceURI, req.ResourceURI)
	target := firstNonEmpty(reply.Tool, prompt)
	s.name = reply.Method
	if target != "" {
		s.name += " " + target
	}
	a := []attr{
		str("mcp.method.name", reply.Method),
		str("mcp.session.id", reply.SessionID),
		str("jsonrpc.request.id", reply.RPCID),
		str("network.transport", "pipe"),
		str(attrEventID, reply.ID),
	}
	if sess.ProtocolVersion != "" {
		a = append(a, str("mcp.protocol.version", sess.ProtocolVersion))
	}
	if reply.Tool != "" {
		a = append(a, str("gen_ai.tool.name", reply.Tool))
	}
	if reply.Method == "tools/call" {
		a = append(a, str("gen_ai.operation.name", "execute_tool"))
	}
	if prompt != "" {
		a = append(a, str("gen_ai.prompt.name", prompt))
	}
	if uri != "" {
		a = append(a, str("mcp.resource.uri", uri))
	}
	if et := errorType(reply); et != "" {
		s.failed = true
		s.errMsg = errorMessage(reply)
		a = append(a, str("error.type", et))
		if reply.ErrorCode != nil {
			a = append(a, str("rpc.response.status_code", strconv.Itoa(*reply.ErrorCode)))
		}
	}
	risk := reply.Risk
	if risk == nil || (req.Risk != nil && req.Risk.Score > risk.Score) {
		risk = req.Risk
	}
	if risk != nil {
		a = append(a, integer(attrRiskScore, int64(risk.Score)), str(attrRiskLevel, string(risk.Level)))
		if len(risk.Reasons) > 0 {
			a = append(a, strs(attrRiskReasons, risk.Reasons))
		}
	}
	for _, kv := range [][2]string{
		{attrServer, firstNonEmpty(reply.Server, sess.Server)},
		{attrServerName, sess.ServerName}, {attrServerVersion, sess.ServerVersion},
		{attrClientName, sess.ClientName}, {attrClientVersion, sess.ClientVersion},
	} {
		if kv[1] != "" {
			a = append(a, str(kv[0], kv[1]))
		}
	}
	if mode == config.CaptureFull && reply.Method == "tools/call" {
		if req.Arguments != "" {
			a = append(a, str("gen_ai.tool.call.arguments", req.Arguments))
		}
		if res := outgoingField(reply, mode, "result"); res != "" {
			a = append(a, str("gen_ai.tool.call.result", res))
		}
	}
	s.attrs = a
	return s
}

// errorType is error.type per the conventions: the JSON-RPC error code, or
// tool_error for a tool result with isError; "" when the call succeeded.
func errorType(e *event.Event) string {
	switch {
	case e.Kind == event.KindError && e.ErrorCode != nil:
		return strconv.Itoa(*e.ErrorCode)
	case e.Kind == event.KindError:
		return "_OTHER"
	case e.IsError != nil && *e.IsError:
		return "tool_error"
	}
	return ""
}

// parseTraceParent reads a W3C traceparent (version 00 layout; later
// versions share its first four fields). All-zero ids are invalid.
func parseTraceParent(tp string) (tid [16]byte, pid [8]byte, flags byte, ok bool) {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return tid, pid, 0, false
	}
	if parts[0] == "00" && len(parts) != 4 {
		return tid, pid, 0, false
	}
	if _, err := hex.Decode(tid[:], []byte(parts[1])); err != nil || tid == [16]byte{} {
		return tid, pid, 0, false
	}
	if _, err := hex.Decode(pid[:], []byte(parts[2])); err != nil || pid == [8]byte{} {
		return tid, pid, 0, false
	}
	var f [1]byte
	if _, err := hex.Decode(f[:], []byte(parts[3])); err != nil {
		return tid, pid, 0, false
	}
	return tid, pid, f[0], true
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// encodeSpans writes an ExportTraceServiceRequest: one resource (this
// Kilometers), one scope, the spans in order.
func encodeSpans(spans []span, res []attr, version string) []byte {
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	return message(nil, fExportResource, func(rs []byte) []byte {
		rs = message(rs, fRSResource, func(r []byte) []byte { return appendAttrs(r, fResourceAttrs, res) })
		return message(rs, fRSScope, func(ss []byte) []byte {
			ss = appendScope(ss, version)
			for i := range spans {
				ss = message(ss, fScopeItems, spans[i].encode)
			}
			return ss
		})
	})
}

func (s *span) encode(b []byte) []byte {
	b = appendBytes(b, fSpanTraceID, s.traceID[:])
	b = appendBytes(b, fSpanID, s.spanID[:])
	b = appendString(b, fSpanTraceState, s.traceState)
	b = appendBytes(b, fSpanParentID, s.parentID)
	b = appendString(b, fSpanName, s.name)
	b = appendVarint(b, fSpanKind, spanKindClient)
	b = appendFixed64(b, fSpanStart, uint64(s.start.UnixNano()))
	b = appendFixed64(b, fSpanEnd, uint64(s.end.UnixNano()))
	b = appendAttrs(b, fSpanAttrs, s.attrs)
	if s.failed {
		b = message(b, fSpanStatus, func(st []byte) []byte {
			st = appendString(st, fStatusMessage, s.errMsg)
			return appendVarint(st, fStatusCode, statusCodeError)
		})
	}
	flags := uint32(0x100) // W3C flags known; bit 9 says whether the parent is remote
	if s.sampled {
		flags |= sampledTraceFlags
	}
	if s.parentID != nil {
		flags |= 0x200
	}
	return appendFixed32(b, fSpanFlags, flags)
}

// errorMessage is the span status description: the recorded error
// message, or for a JSON-RPC error recorded without one, the error's
// message from the reply (the conventions' choice), capped as the event
// field is.
func errorMessage(e *event.Event) string {
	if e.ErrorMessage != "" || e.Kind != event.KindError || len(e.Payload) == 0 {
		return e.ErrorMessage
	}
	var p struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(e.Payload, &p) != nil {
		return ""
	}
	m := p.Error.Message
	if len(m) > event.MaxErrorMessage {
		m = strings.ToValidUTF8(m[:event.MaxErrorMessage], "")
	}
	return m
}
