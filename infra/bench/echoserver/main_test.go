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
		`{"jsonrpc":"2.0","id":"x","method":"tools/call"}`, // last line without newline
	}, "\n")
	for _, size := range []int{256, 4096, 1 << 20} {
		var out bytes.Buffer
		if err := serve(strings.NewReader(in), &out, size); err != nil {
			t.Fatalf("serve: %v", err)
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
				t.Fatalf("answer %q is not a JSON-RPC result: %v", sc.Bytes(), err)
			}
			ids = append(ids, string(msg.ID))
			if string(msg.ID) != "0" && len(sc.Bytes())+1 != size {
				t.Errorf("answer to %s is %d bytes with its newline, want %d", msg.ID, len(sc.Bytes())+1, size)
			}
		}
		if got := strings.Join(ids, ","); got != `0,7,"x"` {
			t.Errorf("answered ids %s, want 0,7,\"x\" (requests only, in order)", got)
		}
	}
}

func TestServeRejectsNonJSON(t *testing.T) {
	if err := serve(strings.NewReader("not json\n"), &bytes.Buffer{}, 256); err == nil {
		t.Fatal("serve accepted a line that is not JSON")
	}
}
