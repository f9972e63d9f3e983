package otelexport

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/otelexport/otlptest"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

const secret = "sk-live-abcdefghijklmnopqrstuvwxyz0123456789"

// recorder writes one session's events into a fresh store, the way the
// monitor does: requests, then replies carrying the request's method, tool
// and latency.
type recorder struct {
	t      *testing.T
	sid    string
	seq    int64
	events []event.Event
}

func (r *recorder) add(e event.Event) {
	r.seq++
	e.ID = fmt.Sprintf("%s-%04d", r.sid, r.seq)
	e.SessionID, e.Seq = r.sid, r.seq
	e.Size = int64(len(e.Payload))
	r.events = append(r.events, e)
}

// call records a request and its reply lat later.
func (r *recorder) call(id int, method, tool string, at time.Time, lat time.Duration, params string, reply event.Event, replyPayload string) {
	r.add(event.Event{TS: at, Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: fmt.Sprint(id), Method: method, Tool: tool,
		Payload: json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params))})
	ms := float64(lat) / float64(time.Millisecond)
	reply.TS, reply.Direction, reply.RPCID, reply.Method, reply.Tool, reply.LatencyMS = at.Add(lat), event.ServerToClient, fmt.Sprint(id), method, tool, &ms
	if reply.Kind == "" {
		reply.Kind = event.KindResponse
	}
	reply.Payload = json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,%s}`, id, replyPayload))
	r.add(reply)
}

func (r *recorder) store(ended bool) *store.Store {
	r.t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, r.t.TempDir(), store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	w, err := st.NewWriter(ctx, r.sid)
	if err != nil {
		r.t.Fatal(err)
	}
	sess := event.Session{ID: r.sid, Server: "everything", ServerName: "example-server", ServerVersion: "1.2.3",
		ClientName: "claude-code", ClientVersion: "2.0.1", ProtocolVersion: "2025-06-18", StartedAt: t0}
	if err := w.RecordSession(ctx, sess); err != nil {
		r.t.Fatal(err)
	}
	if err := w.Record(ctx, r.events); err != nil {
		r.t.Fatal(err)
	}
	if ended {
		end := t0.Add(90 * time.Second)
		sess.EndedAt = &end
		if err := w.RecordSession(ctx, sess); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		r.t.Fatal(err)
	}
	return st
}

const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// session is a session with every kind of outcome.
func session(t *testing.T) *recorder {
	r := &recorder{t: t, sid: "sess-1"}
	r.call(1, "initialize", "", t0, 20*time.Millisecond, `{"protocolVersion":"2025-06-18"}`, event.Event{}, `"result":{}`)
	r.call(2, "tools/list", "", t0.Add(time.Second), 5*time.Millisecond, `{}`, event.Event{}, `"result":{"tools":[]}`)
	r.call(3, "tools/call", "echo", t0.Add(2*time.Second), 150*time.Millisecond,
		`{"name":"echo","arguments":{"text":"hello","token":"`+secret+`"},"_meta":{"traceparent":"`+traceParent+`","tracestate":"rojo=00f067aa0ba902b7"}}`,
		event.Event{Risk: &event.Risk{Score: 70, Level: event.LevelHigh, Reasons: []string{"secret in arguments"}}},
		`"result":{"content":[{"type":"text","text":"hello `+secret+`"}]}`)
	isErr := true
	r.call(4, "tools/call", "fail", t0.Add(3*time.Second), 3*time.Millisecond, `{"name":"fail","arguments":{}}`,
		event.Event{IsError: &isErr, ErrorMessage: "this tool always fails"}, `"result":{"isError":true,"content":[{"type":"text","text":"this tool always fails"}]}`)
	code := -32603
	r.call(5, "tools/call", "crash", t0.Add(4*time.Second), 2*time.Millisecond, `{"name":"crash","arguments":{}}`,
		event.Event{Kind: event.KindError, ErrorCode: &code, ErrorMessage: "crashed"}, `"error":{"code":-32603,"message":"crashed"}`)
	r.call(6, "prompts/get", "", t0.Add(5*time.Second), 4*time.Millisecond, `{"name":"simple_prompt"}`, event.Event{Prompt: "simple_prompt"}, `"result":{"messages":[]}`)
	r.call(7, "resources/read", "", t0.Add(6*time.Second), 4*time.Millisecond, `{"uri":"test://static/resource/1"}`, event.Event{}, `"result":{"contents":[]}`)
	return r
}

func spansByName(t *testing.T, spans []*tracepb.Span) map[string]*tracepb.Span {
	t.Helper()
	m := map[string]*tracepb.Span{}
	for _, s := range spans {
		if _, dup := m[s.Name]; dup {
			t.Errorf("span %q twice", s.Name)
		}
		m[s.Name] = s
	}
	return m
}

func exporter(st *store.Store, rcv *otlptest.Receiver, mode string, mod ...func(*Options)) *Exporter {
	o := Options{TracesURL: rcv.URL + "/v1/traces", MetricsURL: rcv.URL + "/v1/metrics", CaptureMode: mode, Version: "1.0.0-test",
		Headers: map[string]string{"Authorization": "Bearer team-token"}}
	for _, f := range mod {
		f(&o)
	}
	return New(st, o)
}

func TestSpans(t *testing.T) {
	rcv := otlptest.New(t)
	st := session(t).store(true)
	rep, err := exporter(st, rcv, config.CaptureFull).Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rcv.Check(t)
	if rep.Spans != 7 {
		t.Errorf("report %+v, want 7 spans", rep)
	}
	for _, h := range rcv.Headers() {
		if h.Get("Authorization") != "Bearer team-token" {
			t.Errorf("headers = %v, want the configured Authorization", h)
		}
	}
	spans := spansByName(t, rcv.Spans())
	want := []string{"initialize", "tools/list", "tools/call echo", "tools/call fail", "tools/call crash", "prompts/get simple_prompt", "resources/read"}
	for _, name := range want {
		if spans[name] == nil {
			t.Errorf("no span %q; got %v", name, keys(spans))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	echo := spans["tools/call echo"]
	a := otlptest.Attrs(echo.Attributes)
	for k, v := range map[string]any{
		"mcp.method.name": "tools/call", "gen_ai.tool.name": "echo", "gen_ai.operation.name": "execute_tool",
		"mcp.session.id": "sess-1", "mcp.protocol.version": "2025-06-18", "jsonrpc.request.id": "3",
		"network.transport": "pipe", "kilometers.risk.score": int64(70), "kilometers.risk.level": "high",
		"kilometers.mcp.server.name": "example-server", "kilometers.mcp.server.version": "1.2.3",
		"kilometers.mcp.client.name": "claude-code", "kilometers.mcp.client.version": "2.0.1", "kilometers.server": "everything",
	} {
		if a[k] != v {
			t.Errorf("echo span %s = %v (%T), want %v", k, a[k], a[k], v)
		}
	}
	if r, _ := a["kilometers.risk.reasons"].([]string); len(r) != 1 || r[0] != "secret in arguments" {
		t.Errorf("risk reasons = %v", a["kilometers.risk.reasons"])
	}
	if _, ok := a["error.type"]; ok {
		t.Errorf("a successful call has error.type %v", a["error.type"])
	}
	if echo.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("kind = %v", echo.Kind)
	}
	if got, want := time.Unix(0, int64(echo.StartTimeUnixNano)).UTC(), t0.Add(2*time.Second); !got.Equal(want) {
		t.Errorf("start = %v, want the request's timestamp %v", got, want)
	}
	if got, want := time.Unix(0, int64(echo.EndTimeUnixNano)).UTC(), t0.Add(2*time.Second+150*time.Millisecond); !got.Equal(want) {
		t.Errorf("end = %v, want the reply's timestamp %v", got, want)
	}
	// Trace context from params._meta: the span joins that trace.
	if hex.EncodeToString(echo.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" || hex.EncodeToString(echo.ParentSpanId) != "00f067aa0ba902b7" || echo.TraceState != "rojo=00f067aa0ba902b7" {
		t.Errorf("trace %x parent %x state %q: not the request's traceparent", echo.TraceId, echo.ParentSpanId, echo.TraceState)
	}
	if len(spans["initialize"].ParentSpanId) != 0 || len(spans["initialize"].TraceId) != 16 || len(spans["initialize"].SpanId) != 8 {
		t.Errorf("a request without trace context: trace %x parent %x span %x", spans["initialize"].TraceId, spans["initialize"].ParentSpanId, spans["initialize"].SpanId)
	}
	// Full capture: arguments and results go out as shipping would send them.
	if args, _ := a["gen_ai.tool.call.arguments"].(string); !strings.Contains(args, `"text":"hello"`) {
		t.Errorf("arguments = %q", args)
	}
	if res, _ := a["gen_ai.tool.call.result"].(string); !strings.Contains(res, "hello") {
		t.Errorf("result = %q", res)
	}

	for name, want := range map[string]string{"tools/call fail": "tool_error", "tools/call crash": "-32603"} {
		s := spans[name]
		if got := otlptest.Attrs(s.Attributes)["error.type"]; got != want {
			t.Errorf("%s: error.type = %v, want %s", name, got, want)
		}
		if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("%s: status = %v, want an error", name, s.Status)
		}
	}
	// The JSON-RPC error's message describes the status.
	if got := spans["tools/call crash"].Status.GetMessage(); got != "crashed" {
		t.Errorf("crash status message = %q", got)
	}
	if got := otlptest.Attrs(spans["tools/call crash"].Attributes)["rpc.response.status_code"]; got != "-32603" {
		t.Errorf("rpc.response.status_code = %v", got)
	}
	if got := otlptest.Attrs(spans["prompts/get simple_prompt"].Attributes)["gen_ai.prompt.name"]; got != "simple_prompt" {
		t.Errorf("gen_ai.prompt.name = %v", got)
	}
	ra := otlptest.Attrs(spans["resources/read"].Attributes)
	if ra["mcp.resource.uri"] != "test://static/resource/1" {
		t.Errorf("mcp.resource.uri = %v", ra["mcp.resource.uri"])
	}
	if _, ok := ra["gen_ai.operation.name"]; ok {
		t.Error("gen_ai.operation.name set on a span that is not a tool call")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Outside full capture nothing of a payload leaves: no arguments, no
// results, not the secret anywhere in the bytes posted.
func TestNoPayloadOutsideFullCapture(t *testing.T) {
	for _, mode := range []string{config.CaptureRedacted, config.CaptureMetadata} {
		t.Run(mode, func(t *testing.T) {
			rcv := otlptest.New(t)
			st := session(t).store(false)
			if _, err := exporter(st, rcv, mode).Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Spans()
			if len(spans) != 7 {
				t.Fatalf("%d spans, want 7", len(spans))
			}
			for _, s := range spans {
				for _, kv := range s.Attributes {
					if strings.HasPrefix(kv.Key, "gen_ai.tool.call.") || strings.Contains(kv.Value.String(), "hello") || strings.Contains(kv.Value.String(), secret) {
						t.Errorf("%s: payload content in %s = %v", s.Name, kv.Key, kv.Value)
					}
				}
			}
			// Trace context is not payload: the span still joins.
			if s := spansByName(t, spans)["tools/call echo"]; hex.EncodeToString(s.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("trace id %x: trace context lost in %s mode", s.TraceId, mode)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	rcv := otlptest.New(t)
	st := session(t).store(true)
	if _, err := exporter(st, rcv, config.CaptureRedacted).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rcv.Check(t)
	byName := map[string]*metricspb.Metric{}
	for _, m := range rcv.Metrics() {
		if byName[m.Name] != nil {
			t.Errorf("metric %s twice", m.Name)
		}
		byName[m.Name] = m
	}
	ops := byName["mcp.client.operation.duration"]
	if ops == nil || ops.Unit != "s" {
		t.Fatalf("operation duration = %v", ops)
	}
	h := ops.GetHistogram()
	if h.AggregationTemporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
		t.Errorf("temporality = %v", h.AggregationTemporality)
	}
	var total uint64
	found := false
	for _, p := range h.DataPoints {
		total += p.Count
		a := otlptest.Attrs(p.Attributes)
		if len(p.ExplicitBounds) != 14 || p.ExplicitBounds[0] != 0.01 || p.ExplicitBounds[13] != 300 || len(p.BucketCounts) != 15 {
			t.Errorf("bounds %v buckets %v: not the conventions' boundaries", p.ExplicitBounds, p.BucketCounts)
		}
		if a["gen_ai.tool.name"] == "echo" {
			found = true
			// 150ms falls in (0.1, 0.2].
			if p.Count != 1 || p.GetSum() != 0.15 || p.BucketCounts[4] != 1 {
				t.Errorf("echo point: count %d sum %v buckets %v", p.Count, p.GetSum(), p.BucketCounts)
			}
		}
		if a["gen_ai.tool.name"] == "crash" && a["error.type"] != "-32603" {
			t.Errorf("crash point error.type = %v", a["error.type"])
		}
	}
	if total != 7 || !found {
		t.Errorf("operation histogram counts %d replies (echo found %v), want 7", total, found)
	}
	sess := byName["mcp.client.session.duration"]
	if sess == nil || len(sess.GetHistogram().DataPoints) != 1 || sess.GetHistogram().DataPoints[0].GetSum() != 90 {
		t.Errorf("session duration = %v, want one session of 90s", sess)
	}
	count := func(name, tool string) int64 {
		for _, p := range byName[name].GetSum().GetDataPoints() {
			if otlptest.Attrs(p.Attributes)["gen_ai.tool.name"] == tool {
				return p.GetAsInt()
			}
		}
		return -1
	}
	for _, c := range []struct {
		tool            string
		calls, failures int64
	}{{"echo", 1, 0}, {"fail", 1, 1}, {"crash", 1, 1}} {
		if got, got2 := count("kilometers.mcp.tool.calls", c.tool), count("kilometers.mcp.tool.failures", c.tool); got != c.calls || got2 != c.failures {
			t.Errorf("%s: %d calls %d failures, want %d and %d", c.tool, got, got2, c.calls, c.failures)
		}
	}
	if !byName["kilometers.mcp.tool.calls"].GetSum().IsMonotonic {
		t.Error("call count not monotonic")
	}

	// A second export sends nothing again: the session ended once.
	before := len(rcv.Metrics())
	if _, err := exporter(st, rcv, config.CaptureRedacted).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rcv.Metrics()); n != before {
		t.Errorf("a second export sent %d more metrics", n-before)
	}
}

// The endpoint down: nothing is acked, and once it is back every span
// arrives exactly once. The API's delivery state is not touched.
func TestOutageThenExactlyOnce(t *testing.T) {
	rcv := otlptest.New(t)
	st := session(t).store(true)
	ctx := context.Background()
	rcv.SetStatus(http.StatusServiceUnavailable)
	x := exporter(st, rcv, config.CaptureRedacted, func(o *Options) { o.BatchSize = 3 })
	if _, err := x.Flush(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("flush while down = %v, want the 503", err)
	}
	if rcv.Requests() == 0 {
		t.Fatal("nothing was tried")
	}
	rcv.SetStatus(0)
	if _, err := x.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, s := range rcv.Spans() {
		ids[hex.EncodeToString(s.SpanId)]++
	}
	if len(ids) != 7 {
		t.Errorf("%d distinct spans, want 7 (requests and replies paired across batches of 3)", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("span %s arrived %d times", id, n)
		}
	}
	// Spans split across batches still start at their request.
	for _, s := range rcv.Spans() {
		if s.EndTimeUnixNano <= s.StartTimeUnixNano {
			t.Errorf("%s: start %d end %d", s.Name, s.StartTimeUnixNano, s.EndTimeUnixNano)
		}
	}
	c, err := st.Claim(ctx, 100, 0)
	if err != nil || c == nil || len(c.Events()) != 14 {
		t.Fatalf("API claim after the OTLP export = %v, %v; want all 14 events still pending for the API", c, err)
	}
	c.Release()
}

// One signal down does not hold the other.
func TestSignalsIndependent(t *testing.T) {
	good := otlptest.New(t)
	down := otlptest.New(t)
	down.SetStatus(http.StatusBadGateway)
	st := session(t).store(true)
	x := New(st, Options{TracesURL: down.URL + "/v1/traces", MetricsURL: good.URL + "/v1/metrics"})
	if _, err := x.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "traces") {
		t.Fatalf("flush = %v, want the traces failure", err)
	}
	if len(good.Metrics()) == 0 {
		t.Error("metrics not exported while traces were down")
	}
}

// A batch the endpoint refuses as malformed is dropped with a count, not
// retried forever.
func TestRejectedBatchDropped(t *testing.T) {
	rcv := otlptest.New(t)
	rcv.SetStatus(http.StatusBadRequest)
	st := session(t).store(false)
	x := exporter(st, rcv, config.CaptureRedacted, func(o *Options) { o.MetricsURL = "" })
	rep, err := x.Flush(context.Background())
	if err != nil || rep.Dropped != 14 || rep.Spans != 0 {
		t.Fatalf("flush = %+v, %v; want 14 events dropped", rep, err)
	}
	rcv.SetStatus(0)
	if _, err := x.Flush(context.Background()); err != nil || len(rcv.Spans()) != 0 {
		t.Errorf("dropped batch sent again: %d spans, %v", len(rcv.Spans()), err)
	}
}

func TestParseTraceParent(t *testing.T) {
	for tp, ok := range map[string]bool{
		traceParent: true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00":       true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":       false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":       false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":          false,
		"00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       false,
		"": false,
	} {
		if _, _, _, got := parseTraceParent(tp); got != ok {
			t.Errorf("parseTraceParent(%q) ok = %v, want %v", tp, got, ok)
		}
	}
}
