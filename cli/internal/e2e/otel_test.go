package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/cli/internal/otelexport/otlptest"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// everythingSession runs one monitored session of npm server-everything,
// driven by the MCP SDK client, and returns how many echo calls it made.
func (u *user) everythingSession(t *testing.T, traceparent string) int {
	t.Helper()
	server := testenv.NPMServer(t, "mcp-server-everything")
	cmd := exec.Command(u.e.cli, append([]string{"monitor", "--"}, server...)...)
	dieWithTest(cmd)
	cmd.Env = u.env
	logs := &testenv.Buffer{}
	cmd.Stderr = logs
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-client", Version: "1.0.0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect through the monitor: %v\n%s", err, logs.String())
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	const echoes = 3
	for i := range echoes {
		p := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": fmt.Sprintf("payload-%d %s", i, password)}}
		if i == 0 && traceparent != "" {
			p.Meta = mcp.Meta{"traceparent": traceparent, "tracestate": "e2e=1"}
		}
		if res, err := cs.CallTool(ctx, p); err != nil || res.IsError {
			t.Fatalf("echo: %v %+v", err, res)
		}
	}
	cs.Close()
	return echoes
}

// TestOTLPExport_ExactlyOnce holds OpenTelemetry export to its promises
// end to end: the monitor's background shippers export spans of a real
// SDK session against npm server-everything to a real OTLP/HTTP receiver,
// with no API reachable at all; a receiver outage and a shipper killed
// with SIGKILL mid-export lose nothing and send nothing twice; the
// request's trace context is joined; and in redacted mode nothing of the
// payloads leaves.
func TestOTLPExport_ExactlyOnce(t *testing.T) {
	e := setupNoAPI(t)
	rcv := otlptest.New(t)
	// The API is configured but down: OTLP export must not depend on it.
	// A long flush interval leaves one shipper per session, launched as
	// the session ends, so the test knows which process to kill.
	u := e.user(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL, "OTEL_EXPORTER_OTLP_HEADERS=x-team=e2e",
		"KILOMETERS_API_URL=http://127.0.0.1:9", "KILOMETERS_API_KEY=km_unreachable_0123456789", "KILOMETERS_FLUSH_INTERVAL=1h")
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

	// 1. The receiver is down: the session's shipper fails, events wait.
	rcv.SetStatus(http.StatusServiceUnavailable)
	calls := u.everythingSession(t, tp)
	waitFor(t, "the first shipper to try and give up", func() bool { return rcv.Requests() > 0 && len(testenv.Shippers(u.home)) == 0 })
	rcv.SetStatus(0)

	// 2. The receiver holds requests unanswered; the shipper is killed
	// with SIGKILL while it waits for the answer.
	release := rcv.Hold()
	before := rcv.Requests()
	calls += u.everythingSession(t, "")
	waitFor(t, "the second shipper's request", func() bool { return rcv.Requests() > before })
	for _, pid := range testenv.Shippers(u.home) {
		p, err := os.FindProcess(pid)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	// The receiver must have seen the killed shipper's connection close
	// before the release: a shipper no longer listed in /proc may still
	// have its socket open, or its close not yet seen by the receiver, and
	// a request released before its client is seen gone is kept, as an
	// endpoint keeps a batch whose answer was lost.
	waitFor(t, "the killed shippers to be gone and their requests dropped", func() bool {
		return len(testenv.Shippers(u.home)) == 0 && rcv.Held() == 0
	})
	if rcv.Abandoned() == 0 {
		t.Fatal("no request was dropped: the shipper was not killed while it waited for an answer")
	}
	release()
	if n := len(rcv.Spans()); n != 0 {
		t.Fatalf("%d spans kept before any shipper finished", n)
	}

	// 3. A shipper runs again (what the next session or `kilometers
	// sync` would start); then once more, with nothing left to send.
	// It succeeds with the API down: OTLP got the events, and the
	// monitor's backoff must not slow OTLP to the API's pace.
	for range 2 {
		if _, stderr, code := u.run(t, "", "sync", "--background"); code != 0 {
			t.Errorf("background shipper exit %d with OTLP delivered; stderr:\n%s", code, stderr)
		}
	}
	rcv.Check(t)

	spans := rcv.Spans()
	ids := map[string]int{}
	names := map[string]int{}
	for _, s := range spans {
		ids[hex.EncodeToString(s.SpanId)]++
		names[s.Name]++
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("span %s exported %d times", id, n)
		}
	}
	if names["tools/call echo"] != calls || names["initialize"] != 2 || names["tools/list"] != 2 {
		t.Errorf("spans by name %v; want %d echo calls, 2 initialize, 2 tools/list", names, calls)
	}
	joined := 0
	for _, s := range spans {
		a := otlptest.Attrs(s.Attributes)
		if a["mcp.method.name"] == nil || a["mcp.session.id"] == nil || a["network.transport"] != "pipe" || a["jsonrpc.request.id"] == nil {
			t.Errorf("%s: attributes %v", s.Name, a)
		}
		if s.Name == "tools/call echo" {
			if a["gen_ai.tool.name"] != "echo" || a["gen_ai.operation.name"] != "execute_tool" || a["mcp.protocol.version"] == nil {
				t.Errorf("echo span attributes %v", a)
			}
			if a["kilometers.mcp.client.name"] != "e2e-client" || a["kilometers.mcp.server.name"] == nil {
				t.Errorf("echo span: client/server names %v", a)
			}
		}
		if hex.EncodeToString(s.TraceId) == "0af7651916cd43dd8448eb211c80319c" {
			joined++
			if hex.EncodeToString(s.ParentSpanId) != "b7ad6b7169203331" || s.TraceState != "e2e=1" {
				t.Errorf("joined span: parent %x state %q", s.ParentSpanId, s.TraceState)
			}
		}
		if s.EndTimeUnixNano < s.StartTimeUnixNano || s.StartTimeUnixNano == 0 {
			t.Errorf("%s: start %d end %d", s.Name, s.StartTimeUnixNano, s.EndTimeUnixNano)
		}
		// Redacted capture (the default): nothing of the payloads.
		for _, kv := range s.Attributes {
			if v := kv.Value.String(); strings.Contains(v, "payload-") || strings.Contains(v, password) || strings.HasPrefix(kv.Key, "gen_ai.tool.call.") {
				t.Errorf("%s: payload content in %s", s.Name, kv.Key)
			}
		}
	}
	if joined != 1 {
		t.Errorf("%d spans joined the request's trace, want the one call that carried it", joined)
	}
	for _, h := range rcv.Headers() {
		if h.Get("x-team") != "e2e" {
			t.Errorf("request without the configured header: %v", h)
		}
	}
	var durations uint64
	for _, m := range rcv.Metrics() {
		if m.Name == "mcp.client.operation.duration" {
			for _, p := range m.GetHistogram().GetDataPoints() {
				durations += p.Count
			}
		}
	}
	if durations != uint64(len(spans)) {
		t.Errorf("operation duration histogram counts %d operations, spans %d: metrics lost or counted twice", durations, len(spans))
	}
}

// TestOTLPExport_Alone: with only an OTLP endpoint configured (no API at
// all), the monitor still launches background shippers, and they export.
func TestOTLPExport_Alone(t *testing.T) {
	e := setupNoAPI(t)
	rcv := otlptest.New(t)
	u := e.user(t, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+rcv.URL+"/v1/traces", "KILOMETERS_CAPTURE_MODE=full")
	calls := u.everythingSession(t, "")
	waitFor(t, "the monitor's shippers to export every echo span", func() bool {
		n := 0
		for _, s := range rcv.Spans() {
			if s.Name == "tools/call echo" {
				n++
			}
		}
		return n == calls
	})
	rcv.Check(t)
	if len(rcv.Metrics()) != 0 {
		t.Error("metrics sent with only a traces endpoint configured")
	}
	// Full capture: the arguments go out, as shipping would send them.
	found := false
	for _, s := range rcv.Spans() {
		if args, _ := otlptest.Attrs(s.Attributes)["gen_ai.tool.call.arguments"].(string); strings.Contains(args, "payload-0") {
			found = true
		}
	}
	if !found {
		t.Error("no span carries its arguments in full capture mode")
	}
}
