package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"café", "café"},
		{"a\x00b", "a\uFFFDb"},
		{"a\xffb", "a\uFFFDb"},
		{"\xed\xa0\x80", "\uFFFD"}, // an encoded surrogate is invalid UTF-8
		{strings.Repeat("x", MaxNameLen+10), strings.Repeat("x", MaxNameLen)},
		{strings.Repeat("x", MaxNameLen-1) + "é", strings.Repeat("x", MaxNameLen-1)}, // cut at a boundary
	}
	for _, tt := range tests {
		got := CleanText(tt.in, MaxNameLen)
		if got != tt.want {
			t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := CleanText(got, MaxNameLen); again != got {
			t.Errorf("cleaning %q twice gave %q", got, again)
		}
	}
}

func TestCleanPayload(t *testing.T) {
	deep := strings.Repeat("[", MaxPayloadDepth) + strings.Repeat("]", MaxPayloadDepth)
	tests := []struct {
		in, want string // want "" means dropped
	}{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"a":"x\u0000y"}`, `{"a":"x\ufffdy"}`},
		{`{"a\u0000":1}`, `{"a\ufffd":1}`},
		{`["\\u0000"]`, `["\\u0000"]`}, // an escaped backslash, not an escape
		{`["\ud800"]`, `["\ufffd"]`},
		{`["\udc00x"]`, `["\ufffdx"]`},
		{`["\ud83d\ude00"]`, `["\ud83d\ude00"]`},
		{`["\ud83d\u0041"]`, `["\ufffd\u0041"]`},
		{"[\"\xff\"]", "[\"\uFFFD\"]"},
		{"[\"ok é\",\"\xc3\"]", "[\"ok é\",\"\uFFFD\"]"},
		{deep, deep},
		{"[" + deep + "]", ""},
		{`[1e300, 6.02e23, -1.5e-7, 0.0, 1E+2]`, `[1e300, 6.02e23, -1.5e-7, 0.0, 1E+2]`},
		{`[1e131072]`, ""},
		{`[1e-16384]`, ""},
		{`[0.0e-16383]`, ""},
		{`[0e99999999]`, `[0e99999999]`},
		{`[` + strings.Repeat(`1e60000,`, 20) + `1]`, ""}, // over MaxPayloadBytes once printed
	}
	for _, tt := range tests {
		got, ok := CleanPayload([]byte(tt.in))
		if tt.want == "" {
			if ok {
				t.Errorf("CleanPayload(%.40q) kept %.40q", tt.in, got)
			}
			continue
		}
		if !ok || string(got) != tt.want {
			t.Errorf("CleanPayload(%.60q) = %.60q, %v; want %.60q", tt.in, got, ok, tt.want)
			continue
		}
		if !json.Valid(got) {
			t.Errorf("CleanPayload(%.40q) made invalid JSON %.40q", tt.in, got)
		}
		if again, _ := CleanPayload(got); string(again) != string(got) {
			t.Errorf("cleaning %.40q twice changed it", got)
		}
	}
}

func TestEventClean(t *testing.T) {
	e := valid()
	e.RPCID, e.Tool = "1\x002", "t\xff"
	e.Risk = &Risk{Score: 1, Level: LevelLow, Reasons: []string{"r\x00"}}
	e.Payload = json.RawMessage(`{"s":"` + strings.Repeat("[", 2) + `"}`)
	e.Clean()
	if e.RPCID != "1\uFFFD2" || e.Tool != "t\uFFFD" || e.Risk.Reasons[0] != "r\uFFFD" {
		t.Errorf("text not cleaned: %+v", e)
	}
	if err := e.Validate(now); err != nil {
		t.Errorf("cleaned event invalid: %v", err)
	}
	e.Payload = json.RawMessage(strings.Repeat("[", MaxPayloadDepth+1) + strings.Repeat("]", MaxPayloadDepth+1))
	e.Clean()
	if e.Payload != nil || !e.PayloadTruncated {
		t.Errorf("too deep payload kept: %s", e.Payload)
	}
	s := Session{ID: e.SessionID, Host: "h\x00", Command: []string{"a\x00"}, Warnings: []string{"w\xff"}}
	s.Clean()
	if s.Host != "h\uFFFD" || s.Command[0] != "a\uFFFD" || s.Warnings[0] != "w\uFFFD" {
		t.Errorf("session not cleaned: %+v", s)
	}
}

func TestCheckBatchShape(t *testing.T) {
	nest := func(n int) string { return strings.Repeat(`{"a":[`, n) + strings.Repeat(`]}`, n) }
	ev := func(fields string) string { return `{"events":[{"id":"x"` + fields + `}]}` }
	tests := []struct {
		name, body string
		path       string // "" means accepted
		tooMany    bool
	}{
		{"flat", ev(``), "", false},
		{"payload at the limit", ev(`,"payload":` + strings.Repeat("[", MaxPayloadDepth) + strings.Repeat("]", MaxPayloadDepth)), "", false},
		{"payload too deep", ev(`,"payload":` + strings.Repeat("[", MaxPayloadDepth+1)), "body", false},
		{"unknown field too deep", ev(`,"future":` + nest(MaxPayloadDepth)), "body", false},
		{"top level too deep", strings.Repeat("[", 100000), "body", false},
		{"brackets in strings do not count", ev(`,"tool":"` + strings.Repeat("[", 1000) + `\"` + strings.Repeat("{", 1000) + `"`), "", false},
		{"too many events", `{"events":[` + strings.Repeat(`{},`, 10) + `{}]}`, "events", true},
		{"too many sessions, odd case", `{"SESSIONS":[` + strings.Repeat(`1,`, 10) + `1]}`, "sessions", true},
		{"too many reasons", ev(`,"risk":{"reasons":[` + strings.Repeat(`"r",`, MaxReasons) + `"r"]}`), "events[0].risk.reasons", false},
		{"folded key", `{"eventſ":[` + strings.Repeat(`{},`, 10) + `{}]}`, "events", true},
		{"escaped key", `{"events":[{},{"risk":{"re\u0061sons":[` + strings.Repeat(`"r",`, MaxReasons) + `"r"]}}]}`, "events[1].risk.reasons", false},
		{"reasons elsewhere do not count", ev(`,"payload":{"reasons":[` + strings.Repeat(`"r",`, 100) + `"r"]}`), "", false},
		{"too many arguments", `{"sessions":[{"command":[` + strings.Repeat(`"a",`, MaxCommandArgs) + `"a"]}]}`, "sessions[0].command", false},
		{"too many warnings", `{"sessions":[{"warnings":[` + strings.Repeat(`"w",`, MaxWarnings) + `"w"]}]}`, "sessions[0].warnings", false},
		{"malformed passes", `{"events":[}}}]]]`, "", false},
	}
	for _, tt := range tests {
		err := CheckBatchShape([]byte(tt.body), 10)
		var se *ShapeError
		switch {
		case tt.path == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.path != "" && !errors.As(err, &se):
			t.Errorf("%s: accepted", tt.name)
		case tt.path != "" && (se.Path != tt.path || se.TooMany != tt.tooMany):
			t.Errorf("%s: %+v, want path %s tooMany %v", tt.name, se, tt.path, tt.tooMany)
		}
	}
	if err := CheckEventShape([]byte(`{"payload":` + strings.Repeat("[", MaxPayloadDepth+1) + `}`)); err == nil {
		t.Error("CheckEventShape accepted a payload too deep")
	}
}

// FuzzCleanPayload: for any valid JSON, CleanPayload keeps it valid JSON,
// cleaning twice changes nothing more, and what it keeps has no NUL or
// surrogate escape and no invalid UTF-8 (what jsonb refuses), and decodes
// to the same value wherever nothing needed cleaning.
func FuzzCleanPayload(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `["\u0000"]`, `["\ud800\udc00"]`, `["\udc00\ud800"]`, "[\"\xff\"]", `[1e400,-0.0e-3]`,
		`{"\u0000":[[[]]]}`, `"\\\\u0000"`, `[1E+131071]`, `0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if !json.Valid(p) {
			return
		}
		out, ok := CleanPayload(p)
		if !ok {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("CleanPayload(%q) = %q, not JSON", p, out)
		}
		if again, ok := CleanPayload(out); !ok || string(again) != string(out) {
			t.Fatalf("cleaning %q twice gave %q, %v", out, again, ok)
		}
		if !utf8.Valid(out) {
			t.Fatalf("CleanPayload(%q) = %q, invalid UTF-8", p, out)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		dec.UseNumber() // numbers beyond float64 are fine here
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if hasNUL(v) {
			t.Fatalf("CleanPayload(%q) = %q still holds NUL", p, out)
		}
	})
}

// hasNUL reports a NUL in any string or key of a decoded JSON value.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		for _, x := range v {
			if hasNUL(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(x) {
				return true
			}
		}
	}
	return false
}
