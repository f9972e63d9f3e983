package show

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/golden"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const (
	sid   = "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"
	reqID = "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10"
	resID = "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f11"
	notID = "0196f1c2-7a3b-7c11-9d2e-ff0c3a7e9f10"
)

func fixture(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lat, code := 12.5, -32602
	evs := []event.Event{
		{ID: reqID, SessionID: sid, Seq: 1, TS: now.Add(-time.Minute), Direction: event.ClientToServer, Kind: event.KindRequest,
			Server: "files", RPCID: "17", Method: "tools/call", Tool: "read_file", Size: 90,
			Risk:    &event.Risk{Score: 75, Level: event.LevelHigh, Reasons: []string{"sensitive_path"}},
			Payload: json.RawMessage(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/shadow"}}}`)},
		{ID: resID, SessionID: sid, Seq: 2, TS: now.Add(-time.Minute + 12500*time.Microsecond), Direction: event.ServerToClient, Kind: event.KindError,
			Server: "files", RPCID: "17", Method: "tools/call", Tool: "read_file", LatencyMS: &lat, ErrorCode: &code,
			Size: 80, Payload: json.RawMessage(`{"jsonrpc":"2.0","id":17,"error":{"code":-32602,"message":"Access denied"}}`)},
		{ID: notID, SessionID: sid, Seq: 3, TS: now.Add(-time.Minute + time.Second), Direction: event.ServerToClient, Kind: event.KindInvalid,
			Server: "files", Size: 12, Payload: json.RawMessage(`"Debugger on\tport 9229"`)},
	}
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

func run(t *testing.T, st *store.Store, term golden.Terminal, o Options) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o.IO = term.Streams(&out, &errOut)
	o.Now = func() time.Time { return now }
	o.Source = func(context.Context) (source.Source, error) { return st, nil }
	err := Run(context.Background(), &o)
	return out.String(), errOut.String(), err
}

func TestShow(t *testing.T) {
	st := fixture(t)
	for _, term := range []golden.Terminal{golden.Terminals[0], golden.Terminals[2]} {
		// Either half, whole or by its end, shows the same call.
		var first string
		for _, id := range []string{reqID, resID, "5b0c3a7e9f10", "3A7E9F11"} {
			out, _, err := run(t, st, term, Options{ID: id})
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if first == "" {
				first = out
				golden.Assert(t, "show-"+term.Name, []byte(out))
			} else if out != first {
				t.Errorf("%s shows another call:\n%s", id, out)
			}
		}
	}
	out, _, err := run(t, st, golden.Terminals[2], Options{ID: notID})
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "show-invalid-line", []byte(out))
}

func TestShowJSON(t *testing.T) {
	st := fixture(t)
	out, _, err := run(t, st, golden.Terminals[2], Options{ID: resID, JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	var call activity.Call
	if err := json.Unmarshal([]byte(out), &call); err != nil {
		t.Fatal(err)
	}
	if call.Request == nil || call.Request.ID != reqID || call.Response == nil || call.Response.ID != resID {
		t.Fatalf("call = %s", out)
	}
	if !strings.Contains(out, `"request":{"id":"`+reqID) || !strings.Contains(out, `"error_code":-32602`) {
		t.Errorf("not the event shape: %s", out)
	}
	out, _, err = run(t, st, golden.Terminals[2], Options{ID: notID, JSON: true})
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), `"response":null}`) {
		t.Errorf("a lone line: %s, %v", out, err)
	}
}

func TestShowErrors(t *testing.T) {
	st := fixture(t)
	for _, tt := range []struct{ id, want string }{
		{"0196f1c2-7a3b-7c11-9d2e-000000000000", "no event 0196f1c2-7a3b-7c11-9d2e-000000000000 was recorded"},
		{"deadbeef", "no recent event id ends with deadbeef"},
		{"0c3a7e9f10", "2 events end with 0c3a7e9f10"},
		{"read_file", `"read_file" is not an event id`},
		{"abc", `"abc" is not an event id`},
	} {
		_, _, err := run(t, st, golden.Terminals[2], Options{ID: tt.id})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.id, err, tt.want)
		}
	}
}

// TestPrint shows what the store may not hold yet: an error message, a
// prompt, costs, a truncated payload and a reply never recorded.
func TestPrint(t *testing.T) {
	yes := true
	lat := 1500.0
	call := activity.Call{
		Request: &event.Event{ID: reqID, SessionID: sid, TS: now, Direction: event.ClientToServer, Kind: event.KindRequest,
			Server: "everything", Method: "prompts/get", Prompt: "complex_prompt", Size: 70000, PayloadTruncated: true,
			CostUSD: 0.0123, Tokens: 4000, Payload: json.RawMessage(`{"jsonrpc":"2.0"}`)},
		Response: &event.Event{ID: resID, SessionID: sid, TS: now, Direction: event.ServerToClient, Kind: event.KindResponse,
			Server: "everything", Method: "prompts/get", IsError: &yes, LatencyMS: &lat, ErrorMessage: "no such prompt", Size: 10},
	}
	var out bytes.Buffer
	if err := print(golden.Terminals[2].Streams(&out, &bytes.Buffer{}), &call, now); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "show-print", out.Bytes())
	call.Response = nil
	out.Reset()
	if err := print(golden.Terminals[2].Streams(&out, &bytes.Buffer{}), &call, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Response  not recorded") {
		t.Errorf("a missing reply:\n%s", out.String())
	}
}
