package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	in := strings.Join([]string{
		`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		``,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`,
		`{"jsonrpc":"2.0","id":8,"method":"tools/call"}`,   // built once for both
		`{"jsonrpc":"2.0","id":"x","method":"tools/call"}`, // last line without newline
	}, "\n")
	for _, tc := range []struct {
		shape  string
		result func([]byte, json.RawMessage, int) []byte
		size   int
	}{
		{"text", echoResult, 256}, {"text", echoResult, 4096}, {"text", echoResult, 1 << 20},
		{"rows", rowsResult, 256}, {"rows", rowsResult, 4096}, {"rows", rowsResult, 1<<20 + 13},
	} {
		size := tc.size
		var out bytes.Buffer
		if err := serve(strings.NewReader(in), &out, size, tc.result); err != nil {
			t.Fatalf("%s: serve: %v", tc.shape, err)
		}
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 2<<20)
		var ids []string
		for sc.Scan() {
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Result json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(sc.Bytes(), &msg); err != nil || msg.Result == nil {
				t.Fatalf("%s: answer %.200q is not a JSON-RPC result: %v", tc.shape, sc.Bytes(), err)
			}
			if tc.shape == "rows" && string(msg.ID) != "0" {
				var r struct {
					Structured struct {
						Rows []json.RawMessage `json:"rows"`
					} `json:"structuredContent"`
				}
				if err := json.Unmarshal(msg.Result, &r); err != nil || (size > 4096 && len(r.Structured.Rows) < 1000) {
					t.Errorf("rows: %d rows in a %d-byte answer (%v)", len(r.Structured.Rows), size, err)
				}
			}
			ids = append(ids, string(msg.ID))
			if string(msg.ID) != "0" && len(sc.Bytes())+1 != size {
				t.Errorf("%s: answer to %s is %d bytes with its newline, want %d", tc.shape, msg.ID, len(sc.Bytes())+1, size)
			}
		}
		if got := strings.Join(ids, ","); got != `0,7,8,"x"` {
			t.Errorf("answered ids %s, want 0,7,8,\"x\" (requests only, in order)", got)
		}
	}
}

func TestServeRejectsNonJSON(t *testing.T) {
	if err := serve(strings.NewReader("not json\n"), &bytes.Buffer{}, 256, echoResult); err == nil {
		t.Fatal("serve accepted a line that is not JSON")
	}
}
