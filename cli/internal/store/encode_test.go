package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/event/eventtest"
)

// oddStrings are the strings whose JSON escaping differs between careless
// encoders: quotes, backslashes, every kind of control character, HTML
// characters, invalid UTF-8, and the JavaScript line terminators.
var oddStrings = []string{
	"",
	`plain`,
	`quote " and backslash \`,
	"controls \x00\x01\b\f\n\r\t\x1f\x7f",
	"<script>&amp;</script>",
	"invalid \xff\xfe utf-8 \xc3",
	"truncated rune \xe2\x82",
	"line sep \u2028 para sep \u2029",
	"unicode é 中文 🚀",
	"\ufffd already replaced",
}

func encodeCases() map[string]event.Event {
	ts := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	lat, zero, neg := 12.481, 0.0, -0.0
	code := -32602
	yes, no := true, false
	cases := map[string]event.Event{
		"zero":    {},
		"minimal": {ID: testID("a"), SessionID: testID("s"), TS: ts, Direction: event.ClientToServer, Kind: event.KindRequest},
		"full": {
			ID: testID("b"), SessionID: testID("s"), Seq: 42, TS: ts, Direction: event.ServerToClient, Kind: event.KindError,
			Server: "files", RPCID: "17", Method: "tools/call", Tool: "read_file", LatencyMS: &lat, ErrorCode: &code,
			IsError: &no, Size: 312, Risk: &event.Risk{Score: 75, Level: event.LevelHigh, Reasons: []string{"sensitive_path", "x"}},
			CostUSD: 0.000305, Tokens: 99, PayloadTruncated: true,
		},
		"zero pointers":     {LatencyMS: &zero, ErrorCode: new(int), IsError: &yes, Risk: &event.Risk{}},
		"negative zero":     {LatencyMS: &neg, CostUSD: neg},
		"empty reasons":     {Risk: &event.Risk{Reasons: []string{}}},
		"zoned time":        {TS: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -(5*3600+30*60)))},
		"negatives":         {Seq: -1, Size: -5, Tokens: -7, CostUSD: -1.5},
		"large numbers":     {Seq: math.MaxInt64, Size: math.MinInt64, CostUSD: 1e21},
		"tiny float":        {CostUSD: 1e-7},
		"tiny float 2":      {CostUSD: 1.5e-300},
		"big float":         {CostUSD: 1.7976931348623157e308},
		"payload json":      {Payload: json.RawMessage(" { \"a\" : [1, 2, \"<&>\"] , \"b\":\"\\u2028\" } ")},
		"payload not json":  {Payload: json.RawMessage("{\"a\":\n\"\xff<")},
		"payload string":    {Payload: json.RawMessage(`"just a string"`)},
		"payload scalar":    {Payload: json.RawMessage(`17`)},
		"payload truncated": {Payload: json.RawMessage(`{"a":`), PayloadTruncated: true},
	}
	for i, s := range oddStrings {
		cases["odd string "+string(rune('a'+i))] = event.Event{
			ID: s, SessionID: s, Direction: event.Direction(s), Kind: event.Kind(s), Server: s, RPCID: s, Method: s, Tool: s,
			Prompt: s, ResourceURI: s, ErrorMessage: s,
			Risk: &event.Risk{Level: event.Level(s), Reasons: []string{s, s}},
		}
	}
	return cases
}

// checkEncodeSame fails unless appendEventLine writes exactly what the
// json.Marshal encoding writes for e, and that line decodes back to e.
func checkEncodeSame(t *testing.T, e event.Event) {
	t.Helper()
	var got, want bytes.Buffer
	gotErr := appendEventLine(&got, &e)
	wantErr := appendEventLineReflect(&want, &e)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("error %v, json.Marshal's %v", gotErr, wantErr)
	}
	if gotErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("error %q, json.Marshal's %q", gotErr, wantErr)
		}
		return
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("line differs from json.Marshal's:\n got %q\nwant %q", got.Bytes(), want.Bytes())
	}
	line := bytes.TrimSuffix(got.Bytes(), []byte("\n"))
	dec, err := decodeEvent(line)
	if err != nil {
		t.Fatalf("decode %q: %v", line, err)
	}
	ref, err := decodeEvent(bytes.TrimSuffix(want.Bytes(), []byte("\n")))
	if err != nil {
		t.Fatalf("decode json.Marshal's line: %v", err)
	}
	if !reflect.DeepEqual(dec, ref) {
		t.Fatalf("decodes to\n%+v\nnot\n%+v", dec, ref)
	}
}

func TestAppendEventLineMatchesJSONMarshal(t *testing.T) {
	for name, e := range encodeCases() {
		t.Run(name, func(t *testing.T) { checkEncodeSame(t, e) })
	}
}

func TestAppendEventLineRejectsWhatJSONMarshalRejects(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(-1)
	tests := map[string]event.Event{
		"year 10000":    {ID: "x", TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year -1":       {ID: "x", TS: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		"NaN latency":   {ID: "x", LatencyMS: &nan},
		"infinite cost": {ID: "x", CostUSD: inf},
		"NaN cost":      {ID: "x", CostUSD: nan},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			err := appendEventLine(&buf, &e)
			if err == nil || !strings.Contains(err.Error(), "encode event x") {
				t.Fatalf("want an encode error, got %v (line %q)", err, buf.Bytes())
			}
			checkEncodeSame(t, e)
		})
	}
}

func FuzzAppendEventLine(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s, s, int64(-3), 0.000305, 12.5, []byte(`{"a": 1}`), true)
	}
	f.Add("0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", "tools/call", int64(1)<<40, 1e-7, 1e21, []byte("not json \xff"), false)
	f.Fuzz(func(t *testing.T, id, method string, n int64, cost, lat float64, payload []byte, flag bool) {
		e := event.Event{
			ID: id, SessionID: method, Seq: n, TS: time.Unix(n%(1<<34), n%1e9).UTC(), Direction: event.Direction(method),
			Kind: event.Kind(id), Method: method, Tool: id, Size: n, CostUSD: cost, Tokens: -n, Payload: payload,
			PayloadTruncated: flag,
		}
		if flag {
			code := int(n)
			e.LatencyMS, e.ErrorCode, e.IsError = &lat, &code, &flag
			e.Risk = &event.Risk{Score: int(n), Level: event.Level(method), Reasons: []string{id}}
		}
		checkEncodeSame(t, e)
	})
}

func BenchmarkAppendEventLine(b *testing.B) {
	e := testEvent(testID("s"), "k", 1, baseTime)
	e.Risk = &event.Risk{Score: 10, Level: event.LevelLow, Reasons: []string{"r"}}
	e.Payload = json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 150) + `"}]}}`)
	for _, enc := range []struct {
		name string
		fn   func(*bytes.Buffer, *event.Event) error
	}{{"append", appendEventLine}, {"reflect", appendEventLineReflect}} {
		b.Run(enc.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := enc.fn(&buf, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Lines longer than the scan buffer are read whole, and the writer does not
// keep the big line buffer such a line needed.
func TestLinesLongerThanScanBuffer(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{})
	sid := testID("long")
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{10, scanBufSize - 40, scanBufSize, scanBufSize + 1, 3*scanBufSize + 7, 2 * maxKeptBuf, 20}
	var want []string
	for i, n := range sizes {
		e := testEvent(sid, fmt.Sprint("long", i), i, baseTime.Add(time.Duration(i)*time.Second))
		p := `{"text":"` + strings.Repeat(string(rune('a'+i)), n) + `"}`
		e.Payload = json.RawMessage(p)
		want = append(want, p)
		if err := w.Record(ctx, []event.Event{e}); err != nil {
			t.Fatal(err)
		}
		if c := w.buf.Cap(); c > maxKeptBuf {
			t.Fatalf("after a %d byte payload the writer keeps a %d byte buffer", n, c)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, 100, 0)
	if err != nil || c == nil {
		t.Fatalf("claim = %v, %v", c, err)
	}
	defer c.Release()
	got := c.Events()
	if len(got) != len(want) {
		t.Fatalf("claimed %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if string(got[i].Payload) != want[i] {
			t.Errorf("event %d: payload of %d bytes, want %d", i, len(got[i].Payload), len(want[i]))
		}
	}
}

// A line written in pieces (a large payload that needs no compacting goes
// to the segment as it is) is byte for byte the line appendEventLine makes,
// and so is every line around it.
func TestRecordWritesTheEncodedLines(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{})
	sid := testID("pieces")
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	big := `"` + strings.Repeat("result text é \\n ", 5000) + `"`
	payloads := []string{
		big,                         // written in pieces
		big[:directPayload-1] + `"`, // one byte short of the size: assembled
		`{"a":` + big + `}`,         // not one string: compacted
		`"` + strings.Repeat("x", directPayload) + "\x01" + `"`, // a control byte: not as it is
		"",
	}
	var evs []event.Event
	var want bytes.Buffer
	for i, p := range payloads {
		e := testEvent(sid, fmt.Sprint(i), i, baseTime.Add(time.Duration(i)*time.Second))
		e.Payload = json.RawMessage(p)
		evs = append(evs, e)
		if err := appendEventLine(&want, &e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, s)
	if len(files) != 1 {
		t.Fatalf("%d segments, want 1", len(files))
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// The segment starts with the writer's own lines; the events' are last.
	if !bytes.HasSuffix(got, want.Bytes()) {
		t.Fatalf("segment does not end with the encoded events:\ngot  %.300q\nwant %.300q", got[max(0, len(got)-want.Len()):], want.Bytes())
	}
	page, err := s.Activity(ctx, activity.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != len(evs) {
		t.Fatalf("read %d events, want %d", len(page.Events), len(evs))
	}
}

// A segment's index and its session lines are written by hand too; they
// must be what json.Marshal writes, which is what their readers decode.
func TestAppendMetaMatchesJSONMarshal(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	end, code := at.Add(time.Hour), 1
	var full segMeta
	eventtest.FillNonZero(t, &full, at)
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		m    segMeta
		ok   bool
	}{
		{"zero", segMeta{}, true},
		{"every field", full, true},
		{"sealed", segMeta{ID: "0001-ab", SessionID: "s", Created: at, Sealed: end, MinTS: at, MaxTS: end, Events: 12, Bytes: 4096,
			Sessions: []event.Session{{ID: "s", StartedAt: at, EndedAt: &end, ExitCode: &code}, {ID: oddStrings[3], Command: oddStrings}}}, true},
		{"recovered", segMeta{ID: "x", Recovered: true, Sessions: []event.Session{}}, true},
		{"year 10000", segMeta{Sealed: far}, false},
		{"a session's year 10000", segMeta{Sessions: []event.Session{{StartedAt: far}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := appendMeta(nil, &tt.m)
			want, err := json.Marshal(&tt.m)
			if ok != tt.ok || ok != (err == nil) {
				t.Fatalf("ok = %v, want %v (json.Marshal: %v)", ok, tt.ok, err)
			}
			if ok && string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendSessionLineMatchesJSONMarshal(t *testing.T) {
	var s event.Session
	eventtest.FillNonZero(t, &s, time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC))
	var buf bytes.Buffer
	buf.WriteString("before\n")
	if err := appendSessionLine(&buf, &s); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(&s)
	if got := buf.String(); got != "before\n"+`{"s":`+string(want)+"}\n" {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	bad := event.Session{ID: "s", StartedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := appendSessionLine(&buf, &bad); err == nil || !strings.Contains(err.Error(), "encode session s") {
		t.Errorf("a session json.Marshal refuses: err = %v", err)
	}
}
