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
	f := newFramer(c2s, payloadCap, nil, func() time.Time { return t0 }, func(l *line) { out = append(out, l) })
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
		s += fmt.Sprintf(" [%d,%d) %s id=%s", m.start, m.end, classify(&m), m.val(fID))
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

// TestFramerPrefixFitsLine: however a line arrives, its prefix is its
// first bytes up to the cap and holds little unused room, since the
// pipeline bounds memory by the prefixes' lengths.
func TestFramerPrefixFitsLine(t *testing.T) {
	for _, size := range []int{2, 300, 64 << 10, 70 << 10, 200 << 10, DefaultPayloadCap, 1 << 20} {
		for _, chunk := range []int{100, 4096, relayBufSize, 2 << 20} {
			msg := append(append([]byte{'['}, bytes.Repeat([]byte{'7'}, size-2)...), ']')
			var got []*line
			f := newFramer(s2c, DefaultPayloadCap, nil, func() time.Time { return t0 }, func(l *line) { got = append(got, l) })
			for p := append(msg, '\n'); len(p) > 0; {
				n := min(len(p), chunk)
				f.write(p[:n], t0)
				p = p[n:]
			}
			if len(got) != 1 {
				t.Fatalf("size %d in %d B chunks: %d lines, want 1", size, chunk, len(got))
			}
			l := got[0]
			want := msg[:min(size, DefaultPayloadCap)]
			if l.size != int64(size) || !bytes.Equal(l.prefix, want) || !l.valid {
				t.Fatalf("size %d in %d B chunks: size %d, prefix of %d B (want %d), valid %v", size, chunk, l.size, len(l.prefix), len(want), l.valid)
			}
			if c := cap(l.prefix); c-len(l.prefix) > len(l.prefix)/4 {
				t.Errorf("size %d in %d B chunks: prefix of %d B has capacity %d", size, chunk, len(l.prefix), c)
			}
		}
	}
}

// TestScanKeepsOnlyWantedPaths: keys that are skipped for speed (deep ones,
// ones under other top-level members) never stand in for the wanted ones,
// whether they come before or after them.
func TestScanKeepsOnlyWantedPaths(t *testing.T) {
	tests := []struct {
		name, msg          string
		wantTool, wantErr  string
		wantID, wantMethod string
	}{
		{
			name:    "nested isError before and after the result's own",
			msg:     `{"jsonrpc":"2.0","id":1,"result":{"content":[{"isError":true,"x":{"isError":true}}],"isError":false,"more":{"isError":true}}}`,
			wantErr: "false",
			wantID:  "1",
		},
		{
			name:       "tool name under arguments and deeper",
			msg:        `{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"arguments":{"name":"no","a":{"b":{"name":"no"}}},"name":"yes"}}`,
			wantTool:   `"yes"`,
			wantID:     `"a"`,
			wantMethod: `"tools/call"`,
		},
		{
			name:   "id and method inside other members",
			msg:    `{"x":{"id":9,"method":"no"},"other":[{"id":8}],"jsonrpc":"2.0","id":3,"result":{"id":7}}`,
			wantID: "3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cut := range []byte{0, 4, 255} {
				got := frameChunks([]byte(tt.msg+"\n"), []byte{cut}, DefaultPayloadCap)
				if len(got) != 1 || !got[0].valid || len(got[0].msgs) != 1 {
					t.Fatalf("cut %d: %d lines", cut, len(got))
				}
				m := got[0].msgs[0]
				if g := string(m.val(fToolName)); g != tt.wantTool {
					t.Errorf("cut %d: tool %q, want %q", cut, g, tt.wantTool)
				}
				if g := string(m.val(fIsError)); g != tt.wantErr {
					t.Errorf("cut %d: isError %q, want %q", cut, g, tt.wantErr)
				}
				if g := string(m.val(fID)); g != tt.wantID {
					t.Errorf("cut %d: id %q, want %q", cut, g, tt.wantID)
				}
				if g := string(m.val(fMethod)); g != tt.wantMethod {
					t.Errorf("cut %d: method %q, want %q", cut, g, tt.wantMethod)
				}
			}
		})
	}
}
