package monitor

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// benchResults are 1 MiB tools/call results of the shapes the framer meets:
// one big plain string (infra/bench/echoserver's), a text holding escaped
// JSON (quotes and backslashes throughout), structured content (many
// small values outside strings) and files in structured content (long
// strings deep inside it).
func benchResults() map[string][]byte {
	const size = 1 << 20
	wrap := func(body func(b []byte) []byte) []byte {
		b := []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"`)
		b = body(b)
		return append(b, `"}],"isError":false}}`+"\n"...)
	}
	plain := wrap(func(b []byte) []byte { return append(b, bytes.Repeat([]byte{'x'}, size)...) })
	escaped := wrap(func(b []byte) []byte {
		for i := 0; len(b) < size; i++ {
			b = append(b, `{\"row\":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,\"path\":\"C:\\\\tmp\\\\file\",\"ok\":true},`...)
		}
		return append(b, "0"...)
	})
	structured := []byte(`{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"rows":[`)
	for i := 0; len(structured) < size; i++ {
		structured = append(structured, `{"row":`...)
		structured = strconv.AppendInt(structured, int64(i), 10)
		structured = append(structured, `,"score":-1.5e3,"ok":true,"tag":null,"name":"row"},`...)
	}
	structured = append(structured, `{}]},"isError":false}}`+"\n"...)
	// Files in structured content: long strings past wantedDepth.
	files := []byte(`{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"files":[`)
	for i := 0; len(files) < size; i++ {
		files = append(files, `{"path":"src/file`...)
		files = strconv.AppendInt(files, int64(i), 10)
		files = append(files, `.go","text":"`...)
		files = append(files, bytes.Repeat([]byte("package main\\n\\tfmt.Println(\\\"hi\\\")\\n"), 256)...)
		files = append(files, `"},`...)
	}
	files = append(files, `{}]},"isError":false}}`+"\n"...)
	return map[string][]byte{"plain": plain, "escaped": escaped, "structured": structured, "files": files}
}

// BenchmarkFramer1MiB feeds a 1 MiB result through a framer in the relay's
// 64 KiB reads, as the relay goroutine does after each write.
func BenchmarkFramer1MiB(b *testing.B) {
	for _, name := range []string{"plain", "escaped", "structured", "files"} {
		msg := benchResults()[name]
		b.Run(name, func(b *testing.B) {
			var got *line
			// The pool gets each prefix back at once, as the pipeline does
			// after recording the line's events.
			pool := newPrefixPool(DefaultPayloadCap, prefixPoolBuffers)
			f := newFramer(s2c, DefaultPayloadCap, pool, time.Now, func(l *line) {
				got = l
				if l.pooled {
					pool.put(l.prefix)
				}
			})
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				for p := msg; len(p) > 0; {
					n := min(len(p), relayBufSize)
					f.write(p[:n], t0)
					p = p[n:]
				}
			}
			if got == nil || !got.valid || got.size != int64(len(msg)-1) {
				b.Fatalf("framed %+v", got)
			}
		})
	}
}
