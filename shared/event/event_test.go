package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// An event as docs/api.md shows them must decode, validate and encode back
// to the same JSON: it is the wire contract scripts rely on.
const contractExample = `{"id":"0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10","session_id":"0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31","seq":42,"ts":"2026-11-22T12:00:00.123456Z","direction":"server_to_client","kind":"error","rpc_id":"17","method":"tools/call","tool":"read_file","latency_ms":12.481,"error_code":-32602,"is_error":false,"size":312,"risk":{"score":75,"level":"high","reasons":["sensitive_path"]},"cost_usd":0.000305,"payload":{"jsonrpc":"2.0","id":17,"error":{"code":-32602,"message":"..."}}}`

var now = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func TestContractExampleRoundTrip(t *testing.T) {
	var e Event
	if err := json.Unmarshal([]byte(contractExample), &e); err != nil {
		t.Fatal(err)
	}
	if err := e.Validate(now); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !e.Failed() || e.IsToolCall() || !e.IsReply() || e.RiskLevel() != LevelHigh {
		t.Errorf("helpers disagree with the example: failed=%v toolcall=%v reply=%v level=%v", e.Failed(), e.IsToolCall(), e.IsReply(), e.RiskLevel())
	}
	got, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != contractExample {
		t.Errorf("re-encoded differently:\n got %s\nwant %s", got, contractExample)
	}
}

func TestOmitsFieldsThatDoNotApply(t *testing.T) {
	e := valid()
	b, _ := json.Marshal(e)
	for _, field := range []string{"latency_ms", "error_code", "is_error", "risk", "payload", "tool", "rpc_id", "cost_usd"} {
		if strings.Contains(string(b), `"`+field+`"`) {
			t.Errorf("%s present in %s", field, b)
		}
	}
}

func valid() Event {
	return Event{
		ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", SessionID: "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31",
		TS: now.Add(-time.Hour), Direction: ClientToServer, Kind: KindNotification, Method: "notifications/initialized", Size: 10,
	}
}

func TestValidate(t *testing.T) {
	neg := -1.0
	tests := []struct {
		name  string
		edit  func(*Event)
		field string // "" means valid
	}{
		{"valid", func(e *Event) {}, ""},
		{"bad id", func(e *Event) { e.ID = "17" }, "id"},
		{"id with braces", func(e *Event) { e.ID = "{0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10}" }, "id"},
		{"bad session", func(e *Event) { e.SessionID = "" }, "session_id"},
		{"negative seq", func(e *Event) { e.Seq = -1 }, "seq"},
		{"zero ts", func(e *Event) { e.TS = time.Time{} }, "ts"},
		{"future ts", func(e *Event) { e.TS = now.Add(48 * time.Hour) }, "ts"},
		{"bad direction", func(e *Event) { e.Direction = "sideways" }, "direction"},
		{"unknown kind", func(e *Event) { e.Kind = "reply" }, "kind"},
		{"long method", func(e *Event) { e.Method = strings.Repeat("m", MaxNameLen+1) }, "method"},
		{"negative latency", func(e *Event) { e.LatencyMS = &neg }, "latency_ms"},
		{"negative size", func(e *Event) { e.Size = -5 }, "size"},
		{"negative cost", func(e *Event) { e.CostUSD = -1 }, "cost_usd"},
		{"risk score", func(e *Event) { e.Risk = &Risk{Score: 101, Level: LevelHigh} }, "risk.score"},
		{"risk level", func(e *Event) { e.Risk = &Risk{Score: 1, Level: "severe"} }, "risk.level"},
		{"empty reason", func(e *Event) { e.Risk = &Risk{Score: 1, Level: LevelLow, Reasons: []string{""}} }, "risk.reasons"},
		{"payload not json", func(e *Event) { e.Payload = json.RawMessage(`{"a":`) }, "payload"},
		{"payload string ok", func(e *Event) { e.Payload = json.RawMessage(`"not json-rpc"`) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.edit(&e)
			err := e.Validate(now)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			ve, ok := err.(*ValidationError)
			if !ok || ve.Field != tt.field {
				t.Fatalf("want error on %s, got %v", tt.field, err)
			}
		})
	}
}

func TestBatchValidateNamesTheElement(t *testing.T) {
	b := Batch{Events: []Event{valid(), valid()}}
	b.Events[1].Kind = "bogus"
	err := b.Validate(now)
	if err == nil || !strings.HasPrefix(err.Error(), "events[1].kind") {
		t.Fatalf("got %v", err)
	}
	b = Batch{Sessions: []Session{{ID: "nope"}}}
	if err := b.Validate(now); err == nil || !strings.HasPrefix(err.Error(), "sessions[0].id") {
		t.Fatalf("got %v", err)
	}
}

func TestFailed(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		e    Event
		want bool
	}{
		{Event{Kind: KindError}, true},
		{Event{Kind: KindResponse, IsError: &yes}, true},
		{Event{Kind: KindResponse, IsError: &no}, false},
		{Event{Kind: KindResponse}, false},
		{Event{Kind: KindRequest, IsError: &yes}, false},
	}
	for _, tt := range tests {
		if got := tt.e.Failed(); got != tt.want {
			t.Errorf("%+v: Failed() = %v", tt.e, got)
		}
	}
}
