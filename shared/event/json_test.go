package event

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	segjson "github.com/segmentio/encoding/json"

	"github.com/kilometers-ai/kilometers/shared/event/eventtest"
)

// The CLI's store has the exhaustive tests and the fuzz target of this
// encoder (cli/internal/store/encode_test.go); these keep it honest on its
// own.
func TestAppendJSONMatchesJSONMarshal(t *testing.T) {
	ts := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	lat, code, no := 12.481, -32602, false
	odd := "quote \" backslash \\ controls \x00\x1f\x7f <&> invalid \xff line sep \u2028 é 🚀"
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		e    Event
		ok   bool
	}{
		{"zero", Event{}, true},
		{"full", Event{ID: "a", SessionID: "s", Seq: 42, TS: ts, Direction: ServerToClient, Kind: KindError, Server: "files",
			RPCID: "17", Method: "tools/call", Tool: "read_file", Prompt: "p", ResourceURI: "file:///a", LatencyMS: &lat, ErrorCode: &code,
			IsError: &no, ErrorMessage: "no such file", Size: 312,
			Risk: &Risk{Score: 75, Level: LevelHigh, Reasons: []string{"sensitive_path", "x"}}, CostUSD: 0.000305, Tokens: 99,
			PayloadTruncated: true}, true},
		{"odd strings", Event{ID: odd, SessionID: odd, Direction: Direction(odd), Kind: Kind(odd), Server: odd, RPCID: odd,
			Method: odd, Tool: odd, Prompt: odd, ResourceURI: odd, ErrorMessage: odd, Risk: &Risk{Level: Level(odd), Reasons: []string{odd}}}, true},
		{"floats", Event{CostUSD: 1e-7, LatencyMS: &inf}, false},
		{"tiny and huge", Event{CostUSD: 1.5e-300, Size: math.MinInt64, Seq: math.MaxInt64}, true},
		{"NaN cost", Event{CostUSD: nan}, false},
		{"year 10000", Event{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"payload is left out", Event{ID: "p", Payload: json.RawMessage(`{"a":1}`)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := AppendJSON([]byte("prefix:"), &tt.e)
			noPayload := tt.e
			noPayload.Payload = nil
			want, err := json.Marshal(&noPayload)
			if ok != tt.ok || ok != (err == nil) {
				t.Fatalf("ok = %v, want %v (json.Marshal: %v)", ok, tt.ok, err)
			}
			if ok && string(got) != "prefix:"+string(want) {
				t.Errorf("got  %s\nwant prefix:%s", got, want)
			}
		})
	}
}

// TestAppendJSONEncodesEveryField fills every field of Event, however many
// there are, with a value that is not its zero: a field added to Event
// that AppendJSON does not write (an omitempty one is dropped silently by
// every hand-written case above, which leave it zero) fails here.
func TestAppendJSONEncodesEveryField(t *testing.T) {
	var e Event
	eventtest.FillNonZero(t, &e, time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC))
	e.Payload = nil // AppendJSON leaves the payload to its caller
	got, ok := AppendJSON(nil, &e)
	if !ok {
		t.Fatalf("AppendJSON refused %+v", e)
	}
	want, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("AppendJSON does not write every field of Event:\ngot  %s\nwant %s", got, want)
	}
}

// The figures in docs/performance.md ("PostgreSQL ingest") that keep
// AppendJSON beside json.Marshal come from these.
func benchEvent() Event {
	lat, no := 12.481, false
	return Event{ID: "0192f5a0-0000-7000-8000-000000000001", SessionID: "0192f5a0-0000-7000-8000-000000000002", Seq: 42,
		TS: time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC), Direction: ServerToClient, Kind: KindResponse,
		Server: "filesystem", RPCID: "17", Method: "tools/call", Tool: "read_file", LatencyMS: &lat, IsError: &no, Size: 312,
		Risk: &Risk{Score: 75, Level: LevelHigh, Reasons: []string{"sensitive_path"}}, CostUSD: 0.000305, Tokens: 78}
}

func BenchmarkAppendJSON(b *testing.B) {
	e := benchEvent()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendJSON(buf[:0], &e)
	}
}

func BenchmarkJSONMarshal(b *testing.B) {
	e := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSegmentioAppend is what AppendJSON would cost on segmentio's
// encoder: the event copied to drop its payload (the copy escapes), then
// appended.
func BenchmarkSegmentioAppend(b *testing.B) {
	e := benchEvent()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		noPayload := e
		noPayload.Payload = nil
		var err error
		if buf, err = segjson.Append(buf[:0], &noPayload, segjson.EscapeHTML); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendSessionJSONMatchesJSONMarshal(t *testing.T) {
	start := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	end, code := start.Add(time.Minute), -1
	odd := "quote \" backslash \\ controls \x00\x1f\x7f <&> invalid \xff line sep \u2028 é 🚀"
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		s    Session
		ok   bool
	}{
		{"zero", Session{}, true},
		{"started", Session{ID: "s", Server: "files", StartedAt: start}, true},
		{"ended", Session{ID: "s", StartedAt: start, EndedAt: &end, ExitCode: &code, DroppedEvents: 3}, true},
		{"odd strings", Session{ID: odd, Server: odd, ServerName: odd, ServerVersion: odd, ClientName: odd, ClientVersion: odd,
			ProtocolVersion: odd, Command: []string{odd, ""}, Host: odd, Warnings: []string{odd}}, true},
		{"empty lists", Session{ID: "s", Command: []string{}, Warnings: []string{}}, true},
		{"offset zone", Session{ID: "s", StartedAt: start.In(time.FixedZone("x", 5*3600+1800))}, true},
		{"year 10000 start", Session{StartedAt: far}, false},
		{"year 10000 end", Session{EndedAt: &far}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := AppendSessionJSON([]byte("prefix:"), &tt.s)
			want, err := json.Marshal(&tt.s)
			if ok != tt.ok || ok != (err == nil) {
				t.Fatalf("ok = %v, want %v (json.Marshal: %v)", ok, tt.ok, err)
			}
			if ok && string(got) != "prefix:"+string(want) {
				t.Errorf("got  %s\nwant prefix:%s", got, want)
			}
		})
	}
}

// As TestAppendJSONEncodesEveryField, for Session.
func TestAppendSessionJSONEncodesEveryField(t *testing.T) {
	var s Session
	eventtest.FillNonZero(t, &s, time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC))
	got, ok := AppendSessionJSON(nil, &s)
	if !ok {
		t.Fatalf("AppendSessionJSON refused %+v", s)
	}
	want, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("AppendSessionJSON does not write every field of Session:\ngot  %s\nwant %s", got, want)
	}
}
