package monitor

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// frameChunks runs stream through a framer in the chunk sizes cuts gives
// (cycled, each 1-256 bytes).
func frameChunks(stream, cuts []byte, payloadCap int) []*line {
	var out []*line
	f := newFramer(c2s, payloadCap, func() time.Time { return t0 }, func(l *line) { out = append(out, l) })
	for i := 0; len(stream) > 0; i++ {
		n := len(stream)
		if len(cuts) > 0 {
			n = min(int(cuts[i%len(cuts)])+1, len(stream))
		}
		f.write(stream[:n], t0)
		stream = stream[n:]
	}
	f.flush()
	return out
}

// lineSummary is what a framed line must be whatever the chunking.
func lineSummary(l *line) string {
	s := fmt.Sprintf("size=%d prefix=%q valid=%v batch=%v", l.size, l.prefix, l.valid, l.batch)
	for _, m := range l.msgs {
		s += fmt.Sprintf(" [%d,%d) %s id=%s", m.start, m.end, classify(&m), m.vals[fID])
	}
	return s
}

// FuzzFrame: any input cut into any chunks frames into the lines that
// splitting it on "\n" gives (one trailing "\r" off, blank lines skipped),
// and scans them the same as when it arrives whole.
func FuzzFrame(f *testing.F) {
	f.Add([]byte(hostileSeed), []byte{0})
	f.Add([]byte(hostileSeed), []byte{6, 1, 30})
	f.Add([]byte(`{"jsonrpc":"2.0","id":"a\"b\\","result":{"isError":true}}`+"\r\n[1,{\"id\":2}]"), []byte{2})
	f.Add([]byte("\r\n\r\r\n\n \t\n"), []byte{0, 1})
	f.Add([]byte("x\r"), []byte{})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		for _, payloadCap := range []int{8, 1 << 20} {
			got := frameChunks(stream, cuts, payloadCap)
			whole := frameChunks(stream, nil, payloadCap)

			var want [][]byte
			parts := bytes.Split(stream, []byte("\n"))
			for i, p := range parts {
				if i == len(parts)-1 && len(p) == 0 {
					break
				}
				if len(bytes.Trim(p, " \t\r")) == 0 {
					continue
				}
				want = append(want, bytes.TrimSuffix(p, []byte("\r")))
			}
			if len(got) != len(want) || len(whole) != len(want) {
				t.Fatalf("cap %d: %d lines in chunks, %d whole, want %d", payloadCap, len(got), len(whole), len(want))
			}
			for i, w := range want {
				g := got[i]
				if g.size != int64(len(w)) || !bytes.Equal(g.prefix, w[:min(len(w), payloadCap)]) {
					t.Fatalf("cap %d line %d: size %d prefix %q, want %q", payloadCap, i, g.size, g.prefix, w)
				}
				if a, b := lineSummary(g), lineSummary(whole[i]); a != b {
					t.Fatalf("cap %d line %d scanned differently in chunks:\n%s\nwhole:\n%s", payloadCap, i, a, b)
				}
			}
		}
	})
}

const hostileSeed = "not json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n\xff\xfe\n\n\r\n  \t\n" +
	`[{"jsonrpc":"2.0","id":"b","method":"a"},{"jsonrpc":"2.0","method":"b"}]` + "\n" +
	`{"jsonrpc":"2.0","method":"x","params":{"s":"\u00e9 \"q\\"}}` + "\n{\"open\": \n\r\r\r\nlast without newline"
