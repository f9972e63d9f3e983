package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// The hostile-input suite: bodies and query parameters a tenant holding a
// valid key can send, by class (depth, Unicode, numeric extremes, query
// parameters). For every one the answer is a 4xx with the error shape and
// a message, or a 2xx with what was sent stored exactly as event.Clean
// leaves it; never a 5xx; the server keeps answering; and a refused body
// leaves the row counts as they were.

type hostileCase struct {
	name string
	body string // a batch body
	// gzip sends the body compressed (the deep ones are megabytes plain).
	gzip bool
}

// hostileEvent is a valid batch of one session and one event, with raw JSON
// text (which may be invalid UTF-8, huge numbers, anything) spliced in:
// eventExtra after the event's fields, sessionExtra after the session's.
func hostileBatch(eventExtra, sessionExtra string) (body, eventID, sessionID string) {
	eventID, sessionID = uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	body = `{"sessions":[{"id":"` + sessionID + `","started_at":"` + ts + `"` + sessionExtra + `}],` +
		`"events":[{"id":"` + eventID + `","session_id":"` + sessionID + `","seq":1,"ts":"` + ts +
		`","direction":"client_to_server","kind":"request"` + eventExtra + `}]}`
	return body, eventID, sessionID
}

func hostileIngestCases() []hostileCase {
	var cases []hostileCase
	add := func(name, eventExtra, sessionExtra string, gz bool) {
		body, _, _ := hostileBatch(eventExtra, sessionExtra)
		cases = append(cases, hostileCase{name: name, body: body, gzip: gz})
	}
	// Depth: arrays and objects, in the payload, in an unknown field, at
	// the top level, at the limit and past it.
	for _, d := range []int{event.MaxPayloadDepth, event.MaxPayloadDepth + 1, 10_000, 1_000_000} {
		arr := strings.Repeat("[", d) + strings.Repeat("]", d)
		obj := strings.Repeat(`{"a":`, d) + "1" + strings.Repeat("}", d)
		add(fmt.Sprintf("payload arrays depth %d", d), `,"payload":`+arr, "", true)
		add(fmt.Sprintf("payload objects depth %d", d), `,"payload":`+obj, "", true)
		add(fmt.Sprintf("unknown field depth %d", d), `,"future":`+arr, "", true)
		add(fmt.Sprintf("unknown session field depth %d", d), "", `,"future":`+obj, true)
		cases = append(cases, hostileCase{name: fmt.Sprintf("top level depth %d", d), body: arr, gzip: true})
		cases = append(cases, hostileCase{name: fmt.Sprintf("unclosed depth %d", d), body: `{"events":` + strings.Repeat("[", d), gzip: true})
	}
	// Unicode: NUL, invalid UTF-8, surrogates in every text field and in
	// the payload.
	texts := map[string]string{
		"nul escape": `"a\u0000b"`, "raw invalid": "\"a\xff\xfeb\"", "lone surrogate": `"\ud800"`,
		"low surrogate": `"\udfff x"`, "encoded surrogate": "\"\xed\xa0\x80\"", "long": `"` + strings.Repeat("é", 300) + `"`,
		"line separators": `"\u2028\u2029<>&"`, "bom": "\"\xef\xbb\xbfx\"",
	}
	for tn, v := range texts {
		for _, f := range []string{"server", "rpc_id", "method", "tool", "prompt", "resource_uri", "error_message"} {
			add(tn+" in "+f, `,"`+f+`":`+v, "", false)
		}
		add(tn+" in risk reasons", `,"risk":{"score":1,"level":"low","reasons":[`+v+`]}`, "", false)
		add(tn+" in payload", `,"payload":{"k":`+v+`,`+v+`:[`+v+`]}`, "", false)
		for _, f := range []string{"server", "server_name", "server_version", "client_name", "client_version", "protocol_version", "host"} {
			add(tn+" in session "+f, "", `,"`+f+`":`+v, false)
		}
		add(tn+" in session command", "", `,"command":["x",`+v+`]`, false)
		add(tn+" in session warnings", "", `,"warnings":[`+v+`]`, false)
	}
	// Times at the edges of the calendar.
	for _, ts := range []string{"9999-12-31T23:59:59.9999999Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2000-01-01T00:00:00+14:00"} {
		add("session ended_at "+ts, "", `,"ended_at":"`+ts+`"`, false)
		add("event ts "+ts, `,"ts":"`+ts+`"`, "", false)
		body, _, _ := hostileBatch("", "")
		cases = append(cases, hostileCase{name: "session started_at " + ts, body: strings.Replace(body, `"started_at":"`, `"started_at":"`+ts+`","x":"`, 1)})
	}
	// Reasons that an array literal must quote.
	add("reasons with array syntax", `,"risk":{"score":1,"level":"low","reasons":["q\"uote","back\\slash","{a,b}","NULL"," spaced ","\u00e9\ud83d\ude00"]}`, "", false)
	// Numeric extremes.
	for _, f := range []string{"size", "tokens", "seq"} {
		for _, v := range []string{"0", "1099511627776", "1099511627777", "9223372036854775807", "-1", "9223372036854775808", "1e3", "1.5"} {
			add(f+" "+v, `,"`+f+`":`+v, "", false)
		}
	}
	for _, v := range []string{"0", "1e6", "1000000.0001", "1e308", "-0", "5e-324", "-1e-300", "1e309"} {
		add("cost_usd "+v, `,"cost_usd":`+v, "", false)
	}
	for _, v := range []string{"-32602", "2147483648", "-2147483649", "9223372036854775807", "-9223372036854775807", "-9223372036854775808"} {
		add("error_code "+v, `,"error_code":`+v, "", false)
	}
	for _, v := range []string{"0", "3221225477", "4294967295", "-1", "9223372036854775807"} {
		add("exit_code "+v, "", `,"ended_at":"`+time.Now().UTC().Format(time.RFC3339)+`","exit_code":`+v, false)
	}
	for _, v := range []string{"1099511627776", "1099511627777", "9223372036854775807"} {
		add("dropped_events "+v, "", `,"dropped_events":`+v, false)
	}
	for _, v := range []string{"604800000", "604800001", "1e308", "-0"} {
		add("latency_ms "+v, `,"latency_ms":`+v, "", false)
	}
	for _, v := range []string{"1e131071", "1e131072", "1e-16384", "0.0e-16383", "123456789e-16380", "1" + strings.Repeat("0", 140000)} {
		add("payload number "+v[:min(len(v), 20)], `,"payload":[`+v+`]`, "", true)
	}
	return cases
}

func TestHostileIngest(t *testing.T) {
	do, _, dsn := newAPIDSN(t)
	pool := pgtest.MustOpenPool(t, dsn)
	tenant := apitest.CreateTenant(t, do, adminToken, "hostile")
	for _, c := range hostileIngestCases() {
		t.Run(c.name, func(t *testing.T) {
			before := rowCounts(t, pool)
			body := []byte(c.body)
			var hdr map[string]string
			if c.gzip {
				body, hdr = apitest.Gzip(t, body), map[string]string{"Content-Encoding": "gzip"}
			}
			a := do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: tenant.APIKey, Body: body, Header: hdr})
			switch {
			case a.Status >= 500:
				t.Fatalf("%d %s", a.Status, a.Body)
			case a.Status >= 400:
				if a.ErrorCode(t) == "" {
					t.Fatalf("%d without the error shape: %s", a.Status, a.Body)
				}
				if after := rowCounts(t, pool); after != before {
					t.Fatalf("refused with %s, yet rows went from %v to %v", a.Body, before, after)
				}
			default:
				checkStoredExactly(t, do, pool, tenant.APIKey, c.body)
			}
			if h := do(t, apitest.Request{Method: "GET", Path: "/health"}); h.Status != 200 {
				t.Fatalf("health after the request: %d %s", h.Status, h.Body)
			}
		})
	}
}

type counts struct{ events, sessions int }

func rowCounts(t *testing.T, pool *pgxpool.Pool) counts {
	t.Helper()
	var c counts
	err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM sessions)`).Scan(&c.events, &c.sessions)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkStoredExactly compares what the API answers (and what the sessions
// table holds) with the sent batch after event.Clean.
func checkStoredExactly(t *testing.T, do apitest.Doer, pool *pgxpool.Pool, key, body string) {
	t.Helper()
	var want event.Batch
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatalf("accepted a body encoding/json refuses: %v", err)
	}
	want.Clean()
	we := want.Events[0]
	a := do(t, apitest.Request{Method: "GET", Path: "/api/activity?session=" + we.SessionID, Token: key})
	var page activity.Page
	a.Decode(t, &page)
	if len(page.Events) != 1 {
		t.Fatalf("stored %d events: %s", len(page.Events), a.Body)
	}
	got := page.Events[0]
	if !jsonSame(t, got.Payload, we.Payload) {
		t.Errorf("payload stored as %.200s, want %.200s", got.Payload, we.Payload)
	}
	got.Payload, we.Payload = nil, nil
	got.TS, we.TS = time.Time{}, time.Time{}
	// Fields the server side does not store yet.
	got.Prompt, got.ResourceURI, got.ErrorMessage = we.Prompt, we.ResourceURI, we.ErrorMessage
	if g, w := apitest.MustJSON(t, got), apitest.MustJSON(t, we); string(g) != string(w) {
		t.Errorf("stored\n %s\nwant\n %s", g, w)
	}
	ws := want.Sessions[0]
	var host string
	var exit *int64
	var dropped int64
	var command []string
	err := pool.QueryRow(context.Background(), `SELECT host, exit_code, dropped_events, command FROM sessions WHERE id = $1`, ws.ID).Scan(&host, &exit, &dropped, &command)
	if err != nil {
		t.Fatal(err)
	}
	if host != ws.Host || dropped != ws.DroppedEvents || (exit == nil) != (ws.ExitCode == nil) || (exit != nil && *exit != int64(*ws.ExitCode)) ||
		strings.Join(command, "\x01") != strings.Join(ws.Command, "\x01") {
		t.Errorf("session stored as host %q exit %v dropped %d command %q; want %+v", host, exit, dropped, command, ws)
	}
}

func jsonSame(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	x, y := decodeNumbers(a), decodeNumbers(b)
	return x != nil && y != nil && reflect.DeepEqual(x, y)
}

// decodeNumbers decodes JSON with every number as its exact value in
// text (jsonb prints 1e3 as 1000), nil for invalid JSON.
func decodeNumbers(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	var norm func(any) any
	norm = func(v any) any {
		switch v := v.(type) {
		case json.Number:
			r, ok := new(big.Rat).SetString(string(v))
			if !ok {
				return string(v)
			}
			return r.RatString()
		case []any:
			for i := range v {
				v[i] = norm(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = norm(v[k])
			}
		}
		return v
	}
	return norm(v)
}

// hostileQueries are query strings for /api/activity and /api/stats.
func hostileQueries() []string {
	qs := []string{
		"server=a%00b", "method=%ff%fe", "tool=%ed%a0%80", "server=" + strings.Repeat("x", 300),
		"session=urn:uuid:0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31", "session={0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31}",
		"session=0196f1c26e007a558c1d2f4b6a8e0c31", "session=0196F1C2-6E00-7A55-8C1D-2F4B6A8E0C31",
		"since=0001-01-01T00:00:00Z", "until=9999-12-31T23:59:59Z", "since=9999-12-31T23:59:59.999999999Z",
		"since=0000-01-01T00:00:00Z&until=0000-01-02T00:00:00Z", "since=99999999d", "since=106752d", "since=106751d",
		"since=2562047h", "since=-1h", "since=1h&until=2h", "since=367d", "since=366d", "until=1969-12-31T23:59:59Z",
		"since=2026-02-30T00:00:00Z", "since=2026-01-01T00:00:00+23:59", "limit=1000", "limit=-1", "limit=99999999999999999999",
		"kind=%00", "risk=high%00", "failed=%ff",
	}
	c := activity.Cursor{TS: time.Now(), ID: "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"}
	for _, raw := range []string{
		"0001-01-01T00:00:00Z|0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31", "9999-12-31T23:59:59Z|0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31",
		c.TS.Format(time.RFC3339Nano) + "|urn:uuid:0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31",
		c.TS.Format(time.RFC3339Nano) + "|{0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31}",
		c.TS.Format(time.RFC3339Nano) + "|0196f1c26e007a558c1d2f4b6a8e0c31", "\x00|\xff", "|", "",
	} {
		qs = append(qs, "cursor="+url.QueryEscape(base64URL(raw)))
	}
	qs = append(qs, "cursor="+c.Encode()+"x", "cursor=%ff", "cursor="+strings.Repeat("A", 10000))
	return qs
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestHostileQueries(t *testing.T) {
	do, _ := newAPI(t)
	tenant := apitest.CreateTenant(t, do, adminToken, "hostile-q")
	b := apitest.SampleBatch(time.Now(), 1)
	if a := do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: tenant.APIKey, Body: apitest.MustJSON(t, b)}); a.Status != 200 {
		t.Fatalf("ingest: %d %s", a.Status, a.Body)
	}
	for _, q := range hostileQueries() {
		for _, path := range []string{"/api/activity", "/api/stats"} {
			a := do(t, apitest.Request{Method: "GET", Path: path + "?" + q, Token: tenant.APIKey})
			switch {
			case a.Status >= 500:
				t.Errorf("%s?%s: %d %s", path, q, a.Status, a.Body)
			case a.Status >= 400:
				if a.ErrorCode(t) == "" {
					t.Errorf("%s?%s: %d without the error shape: %s", path, q, a.Status, a.Body)
				}
			default:
				var v map[string]any
				a.Decode(t, &v)
			}
		}
	}
	if h := do(t, apitest.Request{Method: "GET", Path: "/health"}); h.Status != 200 {
		t.Fatalf("health: %d %s", h.Status, h.Body)
	}
}

// The admin body gets the same treatment: NUL, deep nesting and bad text
// in a tenant name are refused with 400 and create nothing.
func TestHostileAdmin(t *testing.T) {
	do, _, dsn := newAPIDSN(t)
	pool := pgtest.MustOpenPool(t, dsn)
	tenants := func() int {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM tenants`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, body := range []string{
		`{"name":"a\u0000b"}`, `{"name":` + strings.Repeat("[", 100000) + `}`, `{"x":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat("}", 200) + `,"name":"n"}`,
		`{"name":"` + strings.Repeat("x", 300) + `"}`, `{"name":"  "}`,
	} {
		before := tenants()
		a := do(t, apitest.Request{Method: "POST", Path: "/api/admin/tenants", Token: adminToken, Body: []byte(body)})
		if a.Status != 400 || a.ErrorCode(t) == "" {
			t.Errorf("%.60s: %d %s", body, a.Status, a.Body)
		}
		if tenants() != before {
			t.Errorf("%.60s: refused, yet a tenant was created", body)
		}
	}
}
