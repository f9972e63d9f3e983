package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/event"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// frameAll runs stream through a framer in chunks of size chunk (the whole
// stream when 0) and returns the lines, timestamped one millisecond apart.
func frameAll(dir event.Direction, stream []byte, chunk, payloadCap int) []*line {
	var out []*line
	tick := t0
	now := func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	f := newFramer(dir, payloadCap, nil, now, func(l *line) { out = append(out, l) })
	if chunk <= 0 {
		chunk = len(stream) + 1
	}
	for len(stream) > 0 {
		n := min(chunk, len(stream))
		f.write(stream[:n], now())
		stream = stream[n:]
	}
	f.flush()
	return out
}

type exchange struct {
	dir  event.Direction
	text string
}

// eventsOf turns an exchange into events, each line fed in chunks.
func eventsOf(t *testing.T, ex []exchange, chunk, payloadCap int) ([]event.Event, *builder) {
	t.Helper()
	n := 0
	b := newBuilder("0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31", func() string {
		n++
		return fmt.Sprintf("0196f1c2-7a3b-7c11-9d2e-%012d", n)
	})
	var evs []event.Event
	tick := t0
	for _, e := range ex {
		for _, l := range frameAll(e.dir, []byte(e.text), chunk, payloadCap) {
			tick = tick.Add(10 * time.Millisecond)
			l.ts = tick
			for _, bt := range b.events(l) {
				evs = append(evs, bt.ev)
			}
		}
	}
	return evs, b
}

// summary is the part of an event the table checks.
func summary(e *event.Event) string {
	s := fmt.Sprintf("%s %s id=%s m=%s tool=%s size=%d", e.Direction[:1], e.Kind, e.RPCID, e.Method, e.Tool, e.Size)
	if e.LatencyMS != nil {
		s += fmt.Sprintf(" lat=%g", *e.LatencyMS)
	}
	if e.ErrorCode != nil {
		s += fmt.Sprintf(" code=%d", *e.ErrorCode)
	}
	if e.IsError != nil {
		s += fmt.Sprintf(" isError=%v", *e.IsError)
	}
	if e.PayloadTruncated {
		s += " truncated"
	}
	return s
}

const (
	c2s = event.ClientToServer
	s2c = event.ServerToClient
)

func TestEvents(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	tests := []struct {
		name string
		ex   []exchange
		want []string
	}{
		{"request and response correlate", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/x"}}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}` + "\n"},
		}, []string{
			"c request id=1 m=tools/call tool=read_file size=102",
			"s response id=1 m=tools/call tool=read_file size=63 lat=10 isError=true",
		}},
		{"id after result, as the TypeScript SDK writes it", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":"t"}}` + "\n"},
			{s2c, `{"result":{"content":[{"type":"text","text":"` + big + `"}]},"jsonrpc":"2.0","id":"a\"b"}` + "\n"},
		}, []string{
			`c request id=a"b m=tools/call tool=t size=73`,
			fmt.Sprintf(`s response id=a"b m=tools/call tool=t size=%d lat=10 isError=false truncated`, len(big)+78),
		}},
		{"json-rpc error", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"nope"}}` + "\r\n"},
			{s2c, `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"unknown tool"}}` + "\r\n"},
		}, []string{
			"c request id=7 m=tools/call tool=nope size=71",
			"s error id=7 m=tools/call tool=nope size=73 lat=10 code=-32602 isError=false",
		}},
		{"same id both ways does not cross-correlate", []exchange{
			{s2c, `{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage"}` + "\n"},
			{c2s, `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":1,"result":{}}` + "\n"},
			{c2s, `{"jsonrpc":"2.0","id":1,"result":{"model":"m"}}` + "\n"},
		}, []string{
			"s request id=1 m=sampling/createMessage tool= size=58",
			"c request id=1 m=ping tool= size=40",
			"s response id=1 m=ping tool= size=36 lat=10",
			"c response id=1 m=sampling/createMessage tool= size=47 lat=30",
		}},
		{"notification", []exchange{{c2s, `{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"}},
			[]string{"c notification id= m=notifications/initialized tool= size=54"}},
		{"batch yields one event per element", []exchange{
			{c2s, `[{"jsonrpc":"2.0","id":1,"method":"a"}, {"jsonrpc":"2.0","method":"b"},3]` + "\n"},
		}, []string{
			"c request id=1 m=a tool= size=37",
			"c notification id= m=b tool= size=30",
			"c invalid id= m= tool= size=1",
		}},
		{"not json", []exchange{{s2c, "Server listening on stdio\n"}}, []string{"s invalid id= m= tool= size=25"}},
		{"invalid utf-8 and a last line without newline", []exchange{{s2c, "\xff\xfe{\n{\"a\":1}"}},
			[]string{"s invalid id= m= tool= size=3", "s invalid id= m= tool= size=7"}},
		{"blank lines make no event", []exchange{{c2s, "\n\r\n  \n"}}, nil},
		{"trailing garbage", []exchange{{c2s, `{"jsonrpc":"2.0","method":"x"} x` + "\n"}}, []string{"c invalid id= m= tool= size=32"}},
		{"bad escape caught by json.Valid", []exchange{{c2s, `{"jsonrpc":"2.0","method":"x\q"}` + "\n"}}, []string{"c invalid id= m= tool= size=32"}},
		{"unclosed", []exchange{{c2s, `{"jsonrpc":"2.0","method":"x"` + "\n"}}, []string{"c invalid id= m= tool= size=29"}},
		{"empty batch", []exchange{{c2s, "[]\n"}}, []string{"c invalid id= m= tool= size=2"}},
		{"null id is a notification", []exchange{{c2s, `{"jsonrpc":"2.0","id":null,"method":"x"}` + "\n"}}, []string{"c notification id= m=x tool= size=40"}},
		{"float id as written", []exchange{{c2s, `{"jsonrpc":"2.0","id":1.50,"method":"x"}` + "\n"}}, []string{"c request id=1.50 m=x tool= size=40"}},
		{"nested lookalikes are ignored", []exchange{
			{c2s, `{"params":{"x":{"method":"no","id":9}},"jsonrpc":"2.0","method":"yes","id":2}` + "\n"},
		}, []string{"c request id=2 m=yes tool= size=77"}},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 7, 4096} {
			t.Run(fmt.Sprintf("%s/chunk%d", tt.name, chunk), func(t *testing.T) {
				evs, _ := eventsOf(t, tt.ex, chunk, DefaultPayloadCap)
				var got []string
				for i := range evs {
					got = append(got, summary(&evs[i]))
					if err := evs[i].Validate(t0.Add(time.Hour)); err != nil {
						t.Errorf("event %d invalid: %v", i, err)
					}
					if evs[i].Seq != int64(i+1) {
						t.Errorf("event %d has seq %d", i, evs[i].Seq)
					}
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
			})
		}
	}
}

func TestPayloads(t *testing.T) {
	tests := []struct {
		name, line string
		want       string
		truncated  bool
	}{
		{"message kept as is", `{"jsonrpc":"2.0","method":"x", "params":{}}`, `{"jsonrpc":"2.0","method":"x", "params":{}}`, false},
		{"batch element", `[ {"jsonrpc":"2.0","method":"x"} ]`, `{"jsonrpc":"2.0","method":"x"}`, false},
		{"invalid line as a string", "hi \"there\"\r", `"hi \"there\""`, false},
		// ToValidUTF8 runs before json.Marshal, which writes a valid U+FFFD
		// as is (it escapes only invalid bytes): the same JSON value as
		// "\ufffd", spelled the way the message case below spells it.
		{"invalid utf-8 replaced", "\xff", "\"\uFFFD\"", false},
		{"invalid utf-8 run in a line", "a\xff\xfe\xc3", "\"a\uFFFD\"", false},
		{"invalid utf-8 inside a message", "{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}", "{\"jsonrpc\":\"2.0\",\"method\":\"\uFFFD\"}", false},
		{"capped", `{"jsonrpc":"2.0","method":"x","params":{"p":"` + strings.Repeat("y", 100) + `"}}`,
			`"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"p\":\"yyy"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, _ := eventsOf(t, []exchange{{c2s, tt.line + "\n"}}, 3, 48)
			if len(evs) != 1 {
				t.Fatalf("got %d events", len(evs))
			}
			e := evs[0]
			if string(e.Payload) != tt.want || e.PayloadTruncated != tt.truncated {
				t.Errorf("payload %s (truncated %v), want %s (truncated %v)", e.Payload, e.PayloadTruncated, tt.want, tt.truncated)
			}
			if !json.Valid(e.Payload) || !utf8.Valid(e.Payload) {
				t.Errorf("payload %q is not valid JSON in UTF-8", e.Payload)
			}
			if _, err := json.Marshal(e); err != nil {
				t.Errorf("event does not encode: %v", err)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name string
		ex   []exchange
		want handshake
	}{
		{"initialize", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","clientInfo":{"name":"claude","version":"1.2"},"capabilities":{}}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26","serverInfo":{"name":"everything","version":"2.0"},"capabilities":{}}}` + "\n"},
		}, handshake{ClientName: "claude", ClientVersion: "1.2", ServerName: "everything", ServerVersion: "2.0",
			ProtocolVersion: "2025-03-26", serverProtocol: true, serverSpoke: true}},
		{"2026-07-28 _meta", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":1,"result":{"tools":[],"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"2"}}}}` + "\n"},
		}, handshake{ClientName: "c", ClientVersion: "1", ServerName: "s", ServerVersion: "2", ProtocolVersion: "2026-07-28", serverSpoke: true}},
		{"initialize error still ends the wait", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":0,"error":{"code":-32600,"message":"no"}}` + "\n"},
		}, handshake{serverSpoke: true}},
		{"no handshake", []exchange{{c2s, `{"jsonrpc":"2.0","id":0,"method":"ping"}` + "\n"}}, handshake{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := eventsOf(t, tt.ex, 5, DefaultPayloadCap)
			if b.hs != tt.want {
				t.Errorf("handshake %+v, want %+v", b.hs, tt.want)
			}
		})
	}
}

func TestPendingIsBounded(t *testing.T) {
	var buf bytes.Buffer
	for i := range maxPending + 100 {
		fmt.Fprintf(&buf, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`+"\n", i)
	}
	_, b := eventsOf(t, []exchange{{c2s, buf.String()}}, 0, DefaultPayloadCap)
	if b.pending.Len() > maxPending {
		t.Errorf("%d pending requests kept", b.pending.Len())
	}
}

// A repeated member counts by its last value, whatever came between, and
// the repeats do not grow the captured scalars.
func TestRepeatedMembersLastWins(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t"}`)
	for i := range 1000 {
		fmt.Fprintf(&b, `,"id":%d,"jsonrpc":"2.%d"`, i*1000, i)
	}
	b.WriteString(`,"id":"last"}`)
	ls := frameAll(c2s, []byte(b.String()+"\n"), 7, DefaultPayloadCap)
	if len(ls) != 1 || len(ls[0].msgs) != 1 {
		t.Fatalf("framed as %d lines", len(ls))
	}
	m := &ls[0].msgs[0]
	for f, want := range map[field]string{fID: `"last"`, fJSONRPC: `"2.999"`, fMethod: `"tools/call"`, fToolName: `"t"`} {
		if got := string(m.val(f)); got != want {
			t.Errorf("field %d = %s, want %s", f, got, want)
		}
	}
	if n := len(m.scalars); n != len(`"last""2.999""tools/call""t"`) {
		t.Errorf("%d bytes of captured scalars kept, want only the last of each", n)
	}
}

func TestDeepNestingIsInvalidNotHuge(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	evs, _ := eventsOf(t, []exchange{{c2s, deep + "\n"}}, 0, DefaultPayloadCap)
	if len(evs) != 1 || evs[0].Kind != event.KindInvalid {
		t.Fatalf("got %d events, first %+v", len(evs), evs)
	}
}

func TestNamesAndReasons(t *testing.T) {
	long := strings.Repeat("é", event.MaxErrorMessage) // 2 bytes a rune
	type want struct{ prompt, uri, msg string }
	tests := []struct {
		name string
		ex   []exchange
		want []want // per event
	}{
		{"json-rpc error message", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool \"t\"\n\u00e9\ud83d\ude80"}}` + "\n"},
		}, []want{{}, {msg: "unknown tool \"t\"\né🚀"}}},
		{"message before code, data ignored", []exchange{
			{s2c, `{"error":{"message":"boom","data":{"message":"no","text":"no"},"code":-1},"jsonrpc":"2.0","id":"x"}` + "\n"},
		}, []want{{msg: "boom"}}},
		{"isError result: first text content", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t"}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"image","data":"AAA"},{"type":"text","text":"disk full"},{"type":"text","text":"second"}],"isError":true}}` + "\n"},
		}, []want{{}, {msg: "disk full"}}},
		{"successful result keeps no message", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t"}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"fine"}],"isError":false}}` + "\n"},
		}, []want{{}, {}}},
		{"isError on a non-tool reply is not a failure", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":4,"method":"ping"}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"x"}],"isError":true}}` + "\n"},
		}, []want{{}, {}}},
		{"message capped on a rune boundary", []exchange{
			{s2c, `{"jsonrpc":"2.0","id":5,"error":{"code":-1,"message":"a` + long + `"}}` + "\n"},
		}, []want{{msg: "a" + long[:event.MaxErrorMessage-2]}}},
		{"invalid utf-8 in a message", []exchange{
			{s2c, "{\"jsonrpc\":\"2.0\",\"id\":6,\"error\":{\"code\":-1,\"message\":\"bad \xff byte\"}}\n"},
		}, []want{{msg: "bad \uFFFD byte"}}},
		{"prompt name on request and reply", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":7,"method":"prompts/get","params":{"name":"simple_prompt","arguments":{}}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":7,"result":{"messages":[]}}` + "\n"},
		}, []want{{prompt: "simple_prompt"}, {prompt: "simple_prompt"}}},
		{"resource uri on request and reply", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":8,"method":"resources/read","params":{"uri":"file:///tmp/a b.txt"}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":8,"result":{"contents":[{"uri":"file:///tmp/other","text":"hi"}]}}` + "\n"},
		}, []want{{uri: "file:///tmp/a b.txt"}, {uri: "file:///tmp/a b.txt"}}},
		{"discover answered method not found is negotiation", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}` + "\n"},
			{s2c, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}` + "\n"},
		}, []want{{}, {msg: "Method not found"}}},
		{"uri of another method is not a resource read", []exchange{
			{c2s, `{"jsonrpc":"2.0","id":9,"method":"resources/subscribe","params":{"uri":"file:///x"}}` + "\n"},
		}, []want{{}}},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 7} {
			t.Run(fmt.Sprintf("%s/chunk%d", tt.name, chunk), func(t *testing.T) {
				evs, _ := eventsOf(t, tt.ex, chunk, DefaultPayloadCap)
				if len(evs) != len(tt.want) {
					t.Fatalf("got %d events, want %d", len(evs), len(tt.want))
				}
				for i, w := range tt.want {
					e := evs[i]
					if e.Method == "server/discover" && e.IsReply() && (e.Failed() || !e.Negotiation()) {
						t.Errorf("event %d: a discover probe's answer counts as a failure", i)
					}
					got := want{e.Prompt, e.ResourceURI, e.ErrorMessage}
					if got != w {
						t.Errorf("event %d: got %+q, want %+q", i, got, w)
					}
					if len(e.ErrorMessage) > event.MaxErrorMessage || !utf8.ValidString(e.ErrorMessage) {
						t.Errorf("event %d: message of %d bytes, valid UTF-8 %v", i, len(e.ErrorMessage), utf8.ValidString(e.ErrorMessage))
					}
				}
			})
		}
	}
}

// A failed reply whose message runs past the kept prefix still says what
// the prefix holds of it.
func TestReasonPastThePrefix(t *testing.T) {
	line := `{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"` + strings.Repeat("ab", 100) + `"}}` + "\n"
	evs, _ := eventsOf(t, []exchange{{s2c, line}}, 5, 64)
	if len(evs) != 1 || evs[0].Kind != event.KindError {
		t.Fatalf("got %+v", evs)
	}
	// 64 bytes of prefix, of which the message's opening quote ends at 54.
	if want := strings.Repeat("ab", 5); evs[0].ErrorMessage != want {
		t.Errorf("message %q, want %q", evs[0].ErrorMessage, want)
	}
}

func TestDecodeStringPrefix(t *testing.T) {
	tests := []struct {
		raw  string
		max  int
		want string
	}{
		{`plain"rest`, 100, "plain"},
		{`cut mid escape \`, 100, "cut mid escape "},
		{`cut mid unicode \u00`, 100, "cut mid unicode "},
		{`bad escape \q after`, 100, "bad escape "},
		{`lone surrogate \ud83d then`, 100, "lone surrogate \uFFFD then"},
		{`\"\\\/\b\f\n\r\t`, 100, "\"\\/\b\f\n\r\t"},
		{`0123456789`, 4, "0123"}, // the caller cuts on a rune boundary
		{"raw\tcontrol", 100, "raw"},
		{`surrogate pair \ud83d\ude80!`, 100, "surrogate pair 🚀!"},
		{`\u0041\u0042\u0043\u0044`, 2, "AB"},
	}
	for _, tt := range tests {
		if got := decodeStringPrefix([]byte(tt.raw), tt.max); got != tt.want {
			t.Errorf("decodeStringPrefix(%q, %d) = %q, want %q", tt.raw, tt.max, got, tt.want)
		}
	}
}

// Replies that succeed must cost the builder nothing for reasons: the
// scanner notes offsets, and only a failure's text is decoded.
func TestNoAllocationForReasonsOfSuccesses(t *testing.T) {
	ok := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"fine and long enough to matter"}],"isError":false}}`)
	plain := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}`)
	count := func(line []byte) float64 {
		var sc scanner
		sc.reset()
		sc.write(line) // warm the key buffer
		return testing.AllocsPerRun(100, func() {
			sc.reset()
			sc.write(line)
			if !sc.valid() {
				t.Fatal("invalid")
			}
		})
	}
	if a, b := count(ok), count(plain); a != b {
		t.Errorf("scanning a text result allocates %v times, one without text %v", a, b)
	}
}

// A request repeated after an input_required answer carries what the server
// asked for (inputResponses, or only requestState when it was shedding
// load); the monitor marks it so stats count the call once.
func TestRetryAfterInputRequired(t *testing.T) {
	evs, _ := eventsOf(t, []exchange{
		{c2s, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ask"}}` + "\n"},
		{s2c, `{"jsonrpc":"2.0","id":2,"result":{"resultType":"input_required","inputRequests":{"input":{"method":"elicitation/create","params":{}}}}}` + "\n"},
		{c2s, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ask","inputResponses":{"input":{"action":"accept"}}}}` + "\n"},
		{s2c, `{"jsonrpc":"2.0","id":3,"result":{"content":[],"resultType":"complete"}}` + "\n"},
		{c2s, `{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"p","requestState":"abc"}}` + "\n"},
		{c2s, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ask","arguments":{"inputResponses":1}}}` + "\n"},
	}, 3, DefaultPayloadCap)
	var got []bool
	for _, e := range evs {
		got = append(got, e.Retry)
	}
	if want := []bool{false, false, true, false, true, false}; !slices.Equal(got, want) {
		t.Errorf("retry flags %v, want %v", got, want)
	}
}
