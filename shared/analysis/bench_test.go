package analysis_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// BenchmarkAnalyze measures Analyze on typical messages. Run with
// go test ./shared/analysis -run '^$' -bench Analyze -benchmem.
func BenchmarkAnalyze(b *testing.B) {
	source := strings.Repeat("func main() {\n\tfmt.Println(\"hello, world\")\n}\n", 100) // ~4.5 KB of code
	// A 1 MB query result: JSON rows inside the text, as database servers
	// answer, with keys that look like the password rule's ("token_count").
	var rows strings.Builder
	for i := 0; rows.Len() < 1<<20; i++ {
		fmt.Fprintf(&rows, `{"id":%d,"email":"user%d@example.com","name":"User %d","plan":"pro","token_count":%d,"created_at":"2026-11-%02dT10:00:00Z"},`+"\n", i, i, i, i*7, i%28+1)
	}
	for _, bc := range []struct {
		name   string
		method string
		kind   event.Kind
		msg    string
	}{
		{"call_request", "tools/call", event.KindRequest, callReq(1, "read_file", map[string]any{"path": "/home/dev/project/src/main.go"})},
		{"call_result_4KB", "tools/call", event.KindResponse, textResult(1, source)},
		{"call_result_1MB", "tools/call", event.KindResponse, textResult(1, strings.Repeat(source, 230))},
		{"call_result_1MB_rows", "tools/call", event.KindResponse, textResult(1, "["+rows.String()+"]")},
		{"notification", "notifications/progress", event.KindNotification, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":50,"total":100}}`},
		{"tools_list_filesystem", "tools/list", event.KindResponse, mustRead("tools_list_filesystem.json")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := analysis.NewSession(analysis.DefaultOptions())
			msg := []byte(bc.msg)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				e := event.Event{Kind: bc.kind, Method: bc.method, RPCID: "1", Size: int64(len(msg)), Payload: msg}
				s.Analyze(&e, msg)
			}
		})
	}
}

// BenchmarkAnalyzeLargePrefix is Analyze as the monitor calls it for a
// 1 MiB result: on the 256 KiB it keeps of the line, with the event's
// payload a capped string.
func BenchmarkAnalyzeLargePrefix(b *testing.B) {
	msg := []byte(textResult(1, strings.Repeat("x", 1<<20)))
	raw := msg[:256<<10]
	s := analysis.NewSession(analysis.DefaultOptions())
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		e := event.Event{Kind: event.KindResponse, Method: "tools/call", RPCID: "1", Size: int64(len(msg)),
			Payload: []byte(`"head"`), PayloadTruncated: true}
		s.Analyze(&e, raw)
	}
}
