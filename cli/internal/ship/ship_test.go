package ship

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// fakeSpool hands out its events in order, one claim at a time.
type fakeSpool struct {
	mu       sync.Mutex
	events   []event.Event
	next     int // first unshipped
	claimed  bool
	setAside []string
}

type fakeClaim struct {
	sp       *fakeSpool
	from, to int
}

func (sp *fakeSpool) Claim(ctx context.Context, maxEvents, maxBytes int) (Claim, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.claimed || sp.next >= len(sp.events) {
		return nil, nil
	}
	sp.claimed = true
	return &fakeClaim{sp: sp, from: sp.next, to: min(sp.next+maxEvents, len(sp.events))}, nil
}

func (c *fakeClaim) Events() []event.Event { return c.sp.events[c.from:c.to] }
func (c *fakeClaim) Sessions() []event.Session {
	return []event.Session{{ID: c.sp.events[c.from].SessionID, StartedAt: time.Now(), Command: []string{"srv", "--token=abc123"}}}
}
func (c *fakeClaim) Ack(ctx context.Context) error {
	c.sp.mu.Lock()
	defer c.sp.mu.Unlock()
	c.sp.next, c.sp.claimed = c.to, false
	return nil
}
func (c *fakeClaim) SetAside(ctx context.Context, reason string) error {
	c.sp.mu.Lock()
	c.sp.setAside = append(c.sp.setAside, reason)
	c.sp.mu.Unlock()
	return c.Ack(ctx)
}
func (c *fakeClaim) Release() error {
	c.sp.mu.Lock()
	defer c.sp.mu.Unlock()
	c.sp.claimed = false
	return nil
}

func (sp *fakeSpool) pending() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return len(sp.events) - sp.next
}

func makeEvents(n int, payload string) []event.Event {
	sid := uuid.Must(uuid.NewV7()).String()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sid, Seq: int64(i), TS: time.Now().Add(-time.Hour),
			Direction: event.ClientToServer, Kind: event.KindRequest, Method: "tools/call", Tool: "fetch", Size: int64(len(payload)),
			Payload: json.RawMessage(payload)}
	}
	return evs
}

// fakeAPI records the event ids it received, answering with the status
// that answer returns for each request.
type fakeAPI struct {
	mu     sync.Mutex
	ids    map[string]int
	bodies []string
	answer func(n int) int
	calls  int
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if st := a.answer(a.calls); st != http.StatusOK {
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"error":{"code":"invalid","message":"status %d"}}`, st)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var b event.Batch
	dec := json.NewDecoder(zr)
	if err := dec.Decode(&b); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	raw, _ := json.Marshal(b)
	a.bodies = append(a.bodies, string(raw))
	var res backend.IngestResult
	for _, e := range b.Events {
		if a.ids[e.ID] > 0 {
			res.Duplicates++
		} else {
			res.Accepted++
		}
		a.ids[e.ID]++
	}
	json.NewEncoder(w).Encode(res)
}

func newAPI(t *testing.T, answer func(n int) int) (*fakeAPI, *apiclient.Client) {
	a := &fakeAPI{ids: map[string]int{}, answer: answer}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, apiclient.New(srv.URL, "k", apiclient.Options{RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond})
}

const secretPayload = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch","arguments":{"headers":{"Authorization":"Bearer sekrit-0123456789"}}}}`

func TestFlushRedactsAndAcks(t *testing.T) {
	api, client := newAPI(t, func(int) int { return 200 })
	sp := &fakeSpool{events: makeEvents(25, secretPayload)}
	var progress []Report
	s := New(sp, client, Options{BatchSize: 10, Progress: func(r Report) { progress = append(progress, r) }})
	r, err := s.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Batches != 3 || r.Events != 25 || r.Accepted != 25 || r.Duplicates != 0 || sp.pending() != 0 || len(progress) != 3 {
		t.Fatalf("report %+v, pending %d, progress %d", r, sp.pending(), len(progress))
	}
	for _, b := range api.bodies {
		if strings.Contains(b, "sekrit") || strings.Contains(b, "abc123") {
			t.Errorf("secret left the machine: %s", b)
		}
		if !strings.Contains(b, "[REDACTED]") {
			t.Errorf("no redaction marker: %s", b)
		}
	}
	for id, n := range api.ids {
		if n != 1 {
			t.Errorf("event %s received %d times", id, n)
		}
	}
}

func TestRejectedBatchIsSetAside(t *testing.T) {
	api, client := newAPI(t, func(n int) int {
		if n == 2 {
			return http.StatusBadRequest
		}
		return 200
	})
	sp := &fakeSpool{events: makeEvents(30, `{}`)}
	r, err := New(sp, client, Options{BatchSize: 10}).Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.SetAside != 10 || r.Accepted != 20 || len(sp.setAside) != 1 || sp.pending() != 0 || api.calls != 3 {
		t.Fatalf("report %+v, set aside %q, pending %d, calls %d", r, sp.setAside, sp.pending(), api.calls)
	}
	if !strings.Contains(sp.setAside[0], "400") {
		t.Errorf("reason %q", sp.setAside[0])
	}
}

func TestOutageAndBadKeyLeaveEventsPending(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusUnauthorized, http.StatusNotFound} {
		_, client := newAPI(t, func(int) int { return status })
		sp := &fakeSpool{events: makeEvents(5, `{}`)}
		r, err := New(sp, client, Options{BatchSize: 10}).Flush(context.Background())
		if err == nil {
			t.Fatalf("%d: Flush succeeded", status)
		}
		if sp.pending() != 5 || len(sp.setAside) != 0 || r.Events != 0 || sp.claimed {
			t.Errorf("%d: report %+v, pending %d, set aside %v, claimed %v", status, r, sp.pending(), sp.setAside, sp.claimed)
		}
	}
}

func TestPrepareModes(t *testing.T) {
	evs := makeEvents(1, secretPayload)
	sess := []event.Session{{ID: evs[0].SessionID, Command: []string{"server", "--api-key", "xyz"}}}
	full := Prepare(sess, evs, config.CaptureFull)
	if string(full.Events[0].Payload) != secretPayload || full.Sessions[0].Command[2] != "xyz" {
		t.Errorf("full changed the batch: %+v", full)
	}
	red := Prepare(sess, evs, config.CaptureRedacted)
	if strings.Contains(string(red.Events[0].Payload), "sekrit") || red.Sessions[0].Command[2] != "[REDACTED]" {
		t.Errorf("redacted: %s %q", red.Events[0].Payload, red.Sessions[0].Command)
	}
	meta := Prepare(sess, evs, config.CaptureMetadata)
	if meta.Events[0].Payload != nil || meta.Events[0].Tool != "fetch" || meta.Sessions[0].Command[2] != "[REDACTED]" {
		t.Errorf("metadata: %+v", meta.Events[0])
	}
	if string(evs[0].Payload) != secretPayload || sess[0].Command[2] != "xyz" {
		t.Errorf("Prepare modified its input")
	}
	cut := Prepare(nil, makeEvents(1, `{"jsonrpc":"2.0","params":{"password":"hunt`), config.CaptureRedacted)
	if cut.Events[0].Payload != nil || !cut.Events[0].PayloadTruncated {
		t.Errorf("a payload that is not JSON must not leave: %+v", cut.Events[0])
	}
}

func TestLargeBatchIsSplit(t *testing.T) {
	api, client := newAPI(t, func(int) int { return 200 })
	big := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 900<<10) + `"}]}}`
	sp := &fakeSpool{events: makeEvents(24, big)} // ~21 MiB in one claim
	r, err := New(sp, client, Options{BatchSize: 100, MaxBytes: 64 << 20}).Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Batches != 1 || r.Accepted != 24 || len(api.bodies) < 3 {
		t.Fatalf("report %+v in %d requests", r, len(api.bodies))
	}
	for _, b := range api.bodies {
		if len(b) > backend.MaxBodyBytes {
			t.Errorf("request of %d bytes", len(b))
		}
	}
}

// TestStoreSpool ships from the real store, twice over the same events when
// the first Ack is lost, and the API sees each event delivered once.
func TestStoreSpool(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	st, err := store.Open(ctx, home, store.Options{Spool: true})
	if err != nil {
		t.Fatal(err)
	}
	evs := makeEvents(120, secretPayload)
	w, err := st.NewWriter(ctx, evs[0].SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, event.Session{ID: evs[0].SessionID, StartedAt: time.Now(), Command: []string{"srv"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	api, client := newAPI(t, func(int) int { return 200 })

	// A shipper that dies after posting, before its Ack: the claim is
	// released, as a killed process's lock would be.
	c, err := FromStore(st).Claim(ctx, 50, 0)
	if err != nil || c == nil {
		t.Fatalf("Claim = %v, %v", c, err)
	}
	b := Prepare(c.Sessions(), c.Events(), config.CaptureRedacted)
	if _, err := client.Ingest(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}

	r, err := New(FromStore(st), client, Options{BatchSize: 50}).Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 120 || r.Accepted != 70 || r.Duplicates != 50 {
		t.Errorf("report %+v", r)
	}
	if len(api.ids) != 120 {
		t.Errorf("API has %d distinct events, want 120", len(api.ids))
	}
	p, err := st.Pending(ctx)
	if err != nil || p.Events != 0 {
		t.Errorf("pending %+v, %v", p, err)
	}
	if !strings.Contains(api.bodies[0], `"sessions":[{`) {
		t.Errorf("first batch carries no session: %.200s", api.bodies[0])
	}
}

// TestPrepareKeepsMetadata: whatever the capture mode, only payloads (and
// command lines) change on the way out; the fields stats count (kind,
// is_error, error_code, latency, risk, cost) leave exactly as recorded.
func TestPrepareKeepsMetadata(t *testing.T) {
	lat, code, isErr := 12.5, -32602, true
	base := makeEvents(3, secretPayload)
	base[1].Kind, base[1].Direction, base[1].LatencyMS, base[1].IsError = event.KindResponse, event.ServerToClient, &lat, &isErr
	base[2].Kind, base[2].Direction, base[2].LatencyMS, base[2].ErrorCode = event.KindError, event.ServerToClient, &lat, &code
	for i := range base {
		base[i].Risk = &event.Risk{Score: 80, Level: event.LevelHigh, Reasons: []string{"secret"}}
		base[i].CostUSD, base[i].Tokens, base[i].Server, base[i].RPCID = 0.0042, 77, "github", "1"
	}
	strip := func(e event.Event) string {
		e.Payload, e.PayloadTruncated = nil, false
		b, _ := json.Marshal(e)
		return string(b)
	}
	for _, mode := range []string{config.CaptureFull, config.CaptureRedacted, config.CaptureMetadata} {
		b := Prepare(nil, base, mode)
		for i := range base {
			if got, want := strip(b.Events[i]), strip(base[i]); got != want {
				t.Errorf("%s: event %d changed:\n got %s\nwant %s", mode, i, got, want)
			}
			if p := b.Events[i].Payload; p != nil && !json.Valid(p) {
				t.Errorf("%s: payload %d is not JSON: %s", mode, i, p)
			}
		}
	}
}

// The shipper streams each batch onto the wire (writeBatch) instead of
// preparing and encoding it whole; the API must get what Prepare says may
// leave the machine, in every capture mode, batch after batch with the
// reused gzip writer.
func TestWireMatchesPrepare(t *testing.T) {
	lat, code, yes := 3.5, -32602, true
	sid := "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"
	sessions := []event.Session{{ID: sid, Server: "files", StartedAt: time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC),
		Command: []string{"srv", "--token=" + "ghp_" + "1234567890abcdefghijABCDEFGHIJklmnop", "--dir", "/tmp"}}}
	evs := []event.Event{
		{ID: "plain", SessionID: sid, Seq: 1, Kind: event.KindRequest, Method: "tools/call", Tool: "echo", Size: 60,
			Payload: json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)},
		{ID: "secret", SessionID: sid, Seq: 2, Kind: event.KindRequest, Payload: json.RawMessage(secretPayload)},
		{ID: "html and unicode", SessionID: sid, Seq: 3, Kind: event.KindResponse, LatencyMS: &lat, IsError: &yes,
			Risk: &event.Risk{Score: 40, Level: event.LevelMedium, Reasons: []string{"size"}}, CostUSD: 0.000305,
			Payload: json.RawMessage(`{"r":"<b>&amp; \u2028 é \"q\""}`)},
		{ID: "cut", SessionID: sid, Seq: 4, Kind: event.KindInvalid, PayloadTruncated: true, Payload: json.RawMessage(`"a cut string"`)},
		{ID: "damaged", SessionID: sid, Seq: 5, Kind: event.KindError, ErrorCode: &code, Payload: json.RawMessage(`{"a":`)},
		{ID: "no payload", SessionID: sid, Seq: 6, Kind: event.KindNotification},
		{ID: "truncated but valid", SessionID: sid, Seq: 7, PayloadTruncated: true, Payload: json.RawMessage(`{"password":"hunter2"}`)},
	}
	// normal decodes a batch body and re-encodes every payload through
	// encoding/json, so that equal JSON compares equal whatever its escapes.
	normal := func(t *testing.T, body []byte) event.Batch {
		t.Helper()
		var b event.Batch
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("body is not a batch: %v\n%s", err, body)
		}
		for i, e := range b.Events {
			if e.Payload == nil {
				continue
			}
			var v any
			if err := json.Unmarshal(e.Payload, &v); err != nil {
				t.Fatalf("event %s: payload is not JSON: %s", e.ID, e.Payload)
			}
			b.Events[i].Payload, _ = json.Marshal(v)
		}
		return b
	}
	for _, mode := range []string{config.CaptureFull, config.CaptureRedacted, config.CaptureMetadata} {
		s := New(nil, nil, Options{CaptureMode: mode})
		for round, batch := range [][]event.Event{evs, evs[:1], nil, evs[2:]} {
			ses := sessions
			if round == 1 {
				ses = nil
			}
			gz, err := s.gzipBatch(ses, batch, backend.MaxBodyBytes, 0)
			if err != nil {
				t.Fatal(err)
			}
			wantRaw, err := json.Marshal(Prepare(ses, batch, mode))
			if err != nil {
				t.Fatal(err)
			}
			got, want := normal(t, []byte(gunzip(t, gz))), normal(t, wantRaw)
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("%s, batch %d:\n got %s\nwant %s", mode, round, g, w)
			}
		}
	}
	// What must never leave, whatever the encoding.
	s := New(nil, nil, Options{})
	gz, err := s.gzipBatch(sessions, evs, backend.MaxBodyBytes, 0)
	if err != nil {
		t.Fatal(err)
	}
	body := gunzip(t, gz)
	for _, secret := range []string{"sekrit-0123456789", "hunter2", "ghp_1234567890"} {
		if strings.Contains(body, secret) {
			t.Errorf("redacted body holds %q", secret)
		}
	}
	if !strings.HasSuffix(body, "]}\n") {
		t.Errorf("body does not end the way apiclient.EncodeBatch ends it: %q", body[max(0, len(body)-10):])
	}
}

// A body over the limit stops being written at once, so the shipper can
// split the batch rather than build a body the API would refuse.
func TestWriteBatchStopsAtTheLimit(t *testing.T) {
	evs := makeEvents(50, secretPayload)
	var sb strings.Builder
	err := writeBatch(&sb, nil, evs, config.CaptureRedacted, 1000)
	if !errors.Is(err, errBodyTooBig) {
		t.Fatalf("err = %v, want errBodyTooBig", err)
	}
	if sb.Len() > 1000 {
		t.Errorf("wrote %d bytes past a limit of 1000", sb.Len())
	}
}

func gunzip(t *testing.T, gz []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(string(gz)))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if _, err := io.Copy(&sb, zr); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// What the API would have to clean (event.Clean) is cleaned before it is
// sent, so the batch is never refused for values the monitor recorded
// faithfully, and the stored events are left as they were.
func TestWireAppliesTheCleanRule(t *testing.T) {
	sid := "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"
	sessions := []event.Session{{ID: sid, Host: "box\x00", StartedAt: time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC), Command: []string{"srv\xff"}}}
	deep := strings.Repeat("[", event.MaxPayloadDepth+1) + strings.Repeat("]", event.MaxPayloadDepth+1)
	evs := []event.Event{
		{ID: "nul", SessionID: sid, Seq: 1, Kind: event.KindRequest, RPCID: "a\x00b", Payload: json.RawMessage(`{"id":"a\u0000b","s":"\ud800"}`)},
		{ID: "deep", SessionID: sid, Seq: 2, Kind: event.KindRequest, Payload: json.RawMessage(deep)},
	}
	for _, mode := range []string{config.CaptureFull, config.CaptureRedacted} {
		s := New(nil, nil, Options{CaptureMode: mode})
		gz, err := s.gzipBatch(sessions, evs, backend.MaxBodyBytes, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b event.Batch
		if err := json.Unmarshal([]byte(gunzip(t, gz)), &b); err != nil {
			t.Fatal(err)
		}
		if b.Events[0].RPCID != "a\uFFFDb" || !strings.Contains(string(b.Events[0].Payload), `a\ufffdb`) || strings.Contains(string(b.Events[0].Payload), `\ud800`) {
			t.Errorf("%s: event sent uncleaned: %+v %s", mode, b.Events[0], b.Events[0].Payload)
		}
		if b.Events[1].Payload != nil || !b.Events[1].PayloadTruncated {
			t.Errorf("%s: payload too deep was sent", mode)
		}
		if b.Sessions[0].Host != "box\uFFFD" || b.Sessions[0].Command[0] != "srv\uFFFD" {
			t.Errorf("%s: session sent uncleaned: %+v", mode, b.Sessions[0])
		}
	}
	if evs[0].RPCID != "a\x00b" || sessions[0].Command[0] != "srv\xff" {
		t.Error("cleaning changed the stored events")
	}
}
