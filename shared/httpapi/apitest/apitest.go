// Package apitest holds what tests of the HTTP API share: a known batch of
// events and a small client that checks answers.
package apitest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// SampleBatch returns a batch of 2 sessions and 6*rounds events spread
// over the hour before base. Per round: a tools/call request for
// "read_file" and its successful response (latency 10ms), a tools/call for
// "run_shell" and its error response (latency 30ms, JSON-RPC error), a
// tools/list request and a notification. So per round: 3 requests
// (tools/call x2, tools/list), 2 tool calls, 1 error, 2 replies.
func SampleBatch(base time.Time, rounds int) event.Batch {
	s1, s2 := mustV7(), mustV7()
	start := base.Add(-time.Hour).UTC().Truncate(time.Second)
	b := event.Batch{Sessions: []event.Session{
		{ID: s1, Server: "fs", ServerName: "fs", StartedAt: start},
		{ID: s2, Server: "shell", ServerName: "shell", StartedAt: start},
	}}
	ts := start
	seq := int64(0)
	add := func(sess, server string, e event.Event) {
		ts = ts.Add(time.Second)
		seq++
		e.ID, e.SessionID, e.Server, e.TS, e.Seq = mustV7(), sess, server, ts, seq
		if e.Size == 0 {
			e.Size = 100
		}
		e.CostUSD = 0.0001
		b.Events = append(b.Events, e)
	}
	lat := func(v float64) *float64 { return &v }
	code := -32602
	no := false
	for i := range rounds {
		id := fmt.Sprint(i)
		add(s1, "fs", event.Event{Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: id, Method: "tools/call", Tool: "read_file",
			Risk:    &event.Risk{Score: 75, Level: event.LevelHigh, Reasons: []string{"sensitive_path"}},
			Payload: json.RawMessage(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"read_file"}}`)})
		add(s1, "fs", event.Event{Direction: event.ServerToClient, Kind: event.KindResponse, RPCID: id, Method: "tools/call", Tool: "read_file",
			LatencyMS: lat(10), IsError: &no})
		add(s2, "shell", event.Event{Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: id, Method: "tools/call", Tool: "run_shell"})
		add(s2, "shell", event.Event{Direction: event.ServerToClient, Kind: event.KindError, RPCID: id, Method: "tools/call", Tool: "run_shell",
			LatencyMS: lat(30), ErrorCode: &code, ErrorMessage: "permission denied: " + id})
		add(s1, "fs", event.Event{Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: "l" + id, Method: "tools/list"})
		add(s1, "fs", event.Event{Direction: event.ClientToServer, Kind: event.KindNotification, Method: "notifications/initialized"})
	}
	return b
}

func mustV7() string {
	id, err := uuid.NewV7()
	if err != nil {
		panic(err)
	}
	return id.String()
}

// Gzip compresses b.
func Gzip(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// Answer is an HTTP answer.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode decodes the body into v, failing the test when it is not JSON.
func (a Answer) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		tb.Fatalf("answer %d is not the JSON expected: %v\n%s", a.Status, err, a.Body)
	}
}

// ErrorCode returns the error.code of an error answer ("" when none).
func (a Answer) ErrorCode(tb testing.TB) string {
	tb.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	a.Decode(tb, &body)
	if body.Error.Code != "" && body.Error.Message == "" {
		tb.Errorf("error answer without a message: %s", a.Body)
	}
	return body.Error.Code
}

// Request describes one call.
type Request struct {
	Method string
	Path   string
	Token  string // bearer token, if any
	Body   []byte
	Header map[string]string
}

// Doer sends a request and returns the answer; tests implement it over an
// HTTP server or a Lambda runtime.
type Doer func(tb testing.TB, r Request) Answer

// HTTP returns a Doer for a server at base.
func HTTP(base string) Doer {
	return func(tb testing.TB, r Request) Answer {
		tb.Helper()
		req, err := http.NewRequest(r.Method, base+r.Path, bytes.NewReader(r.Body))
		if err != nil {
			tb.Fatal(err)
		}
		if r.Body == nil {
			req.Body = http.NoBody
		}
		if r.Token != "" {
			req.Header.Set("Authorization", "Bearer "+r.Token)
		}
		if r.Body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range r.Header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatalf("%s %s: %v", r.Method, r.Path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			tb.Fatalf("%s %s: read: %v", r.Method, r.Path, err)
		}
		return Answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}
}

// MustJSON encodes v.
func MustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
