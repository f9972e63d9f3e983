package monitor

import (
	"fmt"
	"strings"
	"testing"
)

// scanChunks scans line in the chunk sizes cuts gives (cycled, each 1-256
// bytes; all at once when cuts is empty) and summarises what the scanner
// found: everything an event is built from.
func scanChunks(line, cuts []byte, stepOnly bool) string {
	s := scanner{stepOnly: stepOnly}
	s.reset()
	for i := 0; len(line) > 0; i++ {
		n := len(line)
		if len(cuts) > 0 {
			n = min(int(cuts[i%len(cuts)])+1, len(line))
		}
		s.write(line[:n])
		line = line[n:]
	}
	out := fmt.Sprintf("valid=%v top=%q pos=%d", s.valid(), s.top, s.pos)
	for _, m := range s.msgs {
		out += fmt.Sprintf("\n[%d,%d) object=%v has=%v reason=%v", m.start, m.end, m.object, m.has, m.reason)
		for f := field(0); f < numFields; f++ {
			if v := m.val(f); v != nil {
				out += fmt.Sprintf(" %d=%q", f, v)
			}
		}
	}
	return out
}

// deepSeeds are lines whose bulk lies past wantedDepth, where skipDeep
// takes over from step, valid and not.
var deepSeeds = []string{
	`{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"rows":[{"row":0,"score":-1.5e3,"ok":true,"tag":null,"name":"r\"o\\w"},{"row":1,"a":[],"b":{},"c":[[1,2],{"d":"e"}]}]},"isError":false}}`,
	`[{"jsonrpc":"2.0","id":1,"result":{"a":{"b":{"c":{"d":{"e":[1,{"f":"g"}]}}}}}},{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"m","data":{"x":{"y":{"z":[true,false,null]}}}}}]`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k" : "v" , "n" : 12 , "l" : [ ] }]}}},"jsonrpc":"2.0"}`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k":tru}]}}}}`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k":1,}]}}}}`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k":1]}}}}}`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k" 1}]}}}}`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k":1}}}}}}`,
	`{"id":1,"result":{"a":{"b":{"c":[{1:2}]}}}}`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k":"\\\\"},"\\\"",-0.5e+7]}}}} `,
	`{"id":1,"result":{"a":{"b":{"c":[[[[[[[[]]]]]]]]}}}}`,
	`{"id":1,"result":{"a":{"b":{"c":[{"k":nul`,
	// Long strings, which skipDeep takes between quotes, with escaped
	// quotes and backslash runs on either side of a cut.
	`{"id":1,"result":{"structuredContent":{"files":[{"path":"a.go","text":"package main\\n\\tfmt.Println(\\\"hi\\\")\\n// done \\\\\\\\"},{"text":"abcdefghijklmnop\\\"q"}]}},"jsonrpc":"2.0"}`,
	`{"id":1,"result":{"structuredContent":{"files":[{"text":"abcdefghijklmnopqrstuvwxyz\\`,
}

// FuzzScanDeep: skipDeep scans every line, cut into any chunks, exactly as
// step alone does.
func FuzzScanDeep(f *testing.F) {
	for _, seed := range deepSeeds {
		f.Add([]byte(seed), []byte{})
		f.Add([]byte(seed), []byte{0})
		f.Add([]byte(seed), []byte{6, 1, 30})
	}
	f.Fuzz(func(t *testing.T, line, cuts []byte) {
		want := scanChunks(line, nil, true)
		for _, c := range [][]byte{nil, cuts} {
			if got := scanChunks(line, c, false); got != want {
				t.Fatalf("cuts %v: with skipDeep\n%s\nstep only\n%s", c, got, want)
			}
		}
	})
}

// TestSkipDeepTakesTheRows: the rows of a structured result are scanned by
// skipDeep (else the fuzz test above would compare step with itself), and
// the members a message needs, after them as before them, are still found.
func TestSkipDeepTakesTheRows(t *testing.T) {
	rows := strings.Repeat(`{"row":1,"ok":true,"tag":null,"name":"r"},`, 100)
	line := []byte(`{"jsonrpc":"2.0","result":{"structuredContent":{"rows":[` + rows + `{}]},"isError":true},"id":"x"}`)
	var s scanner
	s.reset()
	// Up to the first row's opening brace, step only; then the row is one
	// skipDeep call.
	first := strings.Index(string(line), `{"row"`)
	s.write(line[:first+1])
	if !s.deep() {
		t.Fatal("not deep inside a row")
	}
	rowLen := len(`{"row":1,"ok":true,"tag":null,"name":"r"}`)
	if n := s.skipDeep(line[first+1:]); n != rowLen-1 {
		t.Fatalf("skipDeep took %d bytes, want the rest of the row (%d)", n, rowLen-1)
	}
	s.write(line[first+rowLen:])
	if !s.valid() || len(s.msgs) != 1 {
		t.Fatalf("valid %v, %d messages", s.valid(), len(s.msgs))
	}
	m := s.msgs[0]
	if got := string(m.val(fID)); got != `"x"` {
		t.Errorf("id %s after the rows, want \"x\"", got)
	}
	if got := string(m.val(fIsError)); got != "true" {
		t.Errorf("isError %s after the rows, want true", got)
	}
}
