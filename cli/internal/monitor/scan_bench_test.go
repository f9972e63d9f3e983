package monitor

import (
	"encoding/json"
	"strings"
	"testing"

	segjson "github.com/segmentio/encoding/json"
)

// BenchmarkScanTwins measures the incremental scanner against the library
// validators it could be replaced by, on the 1 MiB results the relay meets
// and a 256 B request. The validators do less than the scanner (they pick
// out no member, and need the whole line in memory, which the scanner never
// does), so they bound what a library-based scan could cost from below.
func BenchmarkScanTwins(b *testing.B) {
	msgs := benchResults()
	head, tail := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`, `"}}}`+"\n"
	msgs["request 256 B"] = []byte(head + strings.Repeat("x", 256-len(head)-len(tail)) + tail)
	for _, name := range []string{"plain", "escaped", "structured", "files", "request 256 B"} {
		msg := msgs[name]
		b.Run(name+"/scanner", func(b *testing.B) {
			var s scanner
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				s.reset()
				for p := msg; len(p) > 0; {
					n := min(len(p), relayBufSize)
					s.write(p[:n])
					p = p[n:]
				}
				if !s.valid() {
					b.Fatal("invalid")
				}
			}
		})
		for lib, valid := range map[string]func([]byte) bool{"encoding-json.Valid": json.Valid, "segmentio.Valid": segjson.Valid} {
			b.Run(name+"/"+lib, func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					if !valid(msg) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}
