package event

import (
	"encoding/json"
	"math"
	"testing"
	"time"
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
