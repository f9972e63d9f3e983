package sync

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/otelexport/otlptest"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
)

func record(t *testing.T, home string, n int) {
	t.Helper()
	sid := uuid.Must(uuid.NewV7()).String()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sid, Seq: int64(i), TS: time.Now(),
			Direction: event.ClientToServer, Kind: event.KindRequest, Method: "ping", Payload: json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)}
	}
	writeSession(t, home, event.Session{ID: sid, StartedAt: time.Now()}, evs)
}

// writeSession records a session and its events into home's spool, as a
// monitor does.
func writeSession(t *testing.T, home string, sess event.Session, evs []event.Event) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, home, store.Options{Spool: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.NewWriter(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, home, url string, args ...string) (string, string, error) {
	return runEnv(t, home, map[string]string{"KILOMETERS_API_URL": url, "KILOMETERS_API_KEY": "km_test_key_0123456789"}, args...)
}

func runEnv(t *testing.T, home string, env map[string]string, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Now: time.Now, Getenv: getenv}
	f.Config = func() (*config.Config, error) { return config.Load(home, getenv) }
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestSyncShipsAndReportsRefusals(t *testing.T) {
	home := t.TempDir()
	record(t, home, 1200)
	// The API refuses, every time, any batch that holds the event of seq
	// 703; the rest of its batch must ship all the same.
	seen := map[string]bool{}
	var refused string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, _ := gzip.NewReader(r.Body)
		var b event.Batch
		json.NewDecoder(zr).Decode(&b)
		for i, e := range b.Events {
			if e.Seq == 703 {
				refused = e.ID
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":{"code":"invalid","message":"events[%d].ts: out of range"}}`, i)
				return
			}
		}
		for _, e := range b.Events {
			seen[e.ID] = true
		}
		json.NewEncoder(w).Encode(backend.IngestResult{Accepted: len(b.Events)})
	}))
	defer srv.Close()

	out, errOut, err := run(t, home, srv.URL, "--batch-size", "500", "--progress")
	if err == nil || !strings.Contains(err.Error(), "1 events and 0 session records were refused by the API and set aside, the rest shipped") {
		t.Fatalf("err = %v\nstdout:\n%s", err, out)
	}
	if len(seen) != 1199 || seen[refused] || !strings.Contains(out, "events[0].ts: out of range") ||
		!strings.Contains(out, "id "+refused) || !strings.Contains(out, "rejected") || !strings.Contains(out, "Shipped 1199 events") {
		t.Errorf("seen %d\nstdout:\n%s", len(seen), out)
	}
	if !strings.Contains(errOut, "/1200 events shipped") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}

	// Nothing left to ship; the refused batch is still reported.
	out, _, err = run(t, home, srv.URL, "--json")
	if err == nil {
		t.Fatal("second sync succeeded with a set-aside batch")
	}
	var o Output
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatal(err)
	}
	if o.Events != 0 || o.Pending != 0 || len(o.SetAsideBatches) != 1 || o.SetAsideBatches[0].Events != 1 ||
		len(o.SetAsideBatches[0].IDs) != 1 || o.SetAsideBatches[0].IDs[0] != refused {
		t.Errorf("output %+v", o)
	}
}

// TestSyncProgressOnlyWhenAsked: stderr that is not a terminal gets no
// progress lines unless --progress asks for them.
func TestSyncProgressOnlyWhenAsked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, _ := gzip.NewReader(r.Body)
		var b event.Batch
		json.NewDecoder(zr).Decode(&b)
		json.NewEncoder(w).Encode(backend.IngestResult{Accepted: len(b.Events)})
	}))
	defer srv.Close()
	for _, c := range []struct {
		args []string
		want bool
	}{{[]string{"--batch-size", "10"}, false}, {[]string{"--batch-size", "10", "--progress"}, true}, {[]string{"--progress"}, false}} {
		home := t.TempDir()
		record(t, home, 50)
		out, errOut, err := run(t, home, srv.URL, c.args...)
		if err != nil || !strings.Contains(out, "Shipped 50 events") {
			t.Fatalf("%v: %v\n%s", c.args, err, out)
		}
		if got := strings.Contains(errOut, "50/50 events shipped"); got != c.want {
			t.Errorf("%v: progress shown = %v, want %v (a small backlog never shows it)\nstderr:\n%s", c.args, got, c.want, errOut)
		}
	}
}

func TestSyncOutage(t *testing.T) {
	home := t.TempDir()
	record(t, home, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"unauthorized","message":"unknown API key"}}`))
	}))
	defer srv.Close()
	out, _, err := run(t, home, srv.URL)
	if err == nil || !strings.Contains(err.Error(), "10 events not delivered") || !strings.Contains(err.Error(), "unknown API key") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(out, "Shipped") {
		t.Errorf("stdout %q speaks of shipping before the error", out)
	}
	st, err := store.Open(context.Background(), home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := st.LastShipStatus(); err != nil || s == nil || !strings.Contains(s.Error, "unknown API key") {
		t.Errorf("last shipping status %+v, %v; want the error kept for doctor", s, err)
	}
}

// Every shipper of a store ships only while it holds the store's shipping
// lock: a background shipper beside one at work waits its turn, then ships
// everything silently; one that cannot get the lock in time fails saying
// why. A background shipper fails, for the monitor to back off, when the
// API does not take the events.
func TestSyncBackground(t *testing.T) {
	var mu sync.Mutex
	shipped, status := 0, http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if status != http.StatusOK {
			w.WriteHeader(status)
			w.Write([]byte(`{"error":{"code":"unavailable","message":"down"}}`))
			return
		}
		zr, _ := gzip.NewReader(r.Body)
		var b event.Batch
		json.NewDecoder(zr).Decode(&b)
		shipped += len(b.Events)
		json.NewEncoder(w).Encode(backend.IngestResult{Accepted: len(b.Events)})
	}))
	defer srv.Close()
	home := t.TempDir()
	record(t, home, 700)

	ctx := context.Background()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := st.LockShipping(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockShipping(ctx, st, time.Millisecond); err == nil || !strings.Contains(err.Error(), "another kilometers process has been shipping") {
		t.Errorf("lock held elsewhere: err %v, want one saying another process ships", err)
	}

	var out, errOut string
	done := make(chan error, 1)
	go func() {
		var err error
		out, errOut, err = run(t, home, srv.URL, "--background")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("background shipper did not wait for the running one (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	mu.Lock()
	if shipped != 0 {
		t.Errorf("%d events shipped while another shipper held the store", shipped)
	}
	mu.Unlock()
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("background shipper: %v", err)
	}
	if s, err := st.LastShipStatus(); err != nil || s == nil || s.Error != "" {
		t.Errorf("last shipping status %+v, %v; want a success", s, err)
	}
	mu.Lock()
	if shipped != 700 || out != "" || errOut != "" {
		t.Errorf("shipped %d of 700; wrote %q and %q, want nothing", shipped, out, errOut)
	}
	mu.Unlock()

	record(t, home, 10)
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	if _, _, err := run(t, home, srv.URL, "--background"); err == nil {
		t.Error("background shipper succeeded with the API down")
	}
	p, err := st.Pending(context.Background())
	if err != nil || p.Events != 10 {
		t.Errorf("pending after the outage: %+v, %v; want the 10 events kept", p, err)
	}
}

// sync refuses to ship with a bad setting it ships with, and only warns
// about one it does not use.
func TestSyncChecksWhatItUses(t *testing.T) {
	for _, tc := range []struct {
		name, file, wantErr, wantWarn string
	}{
		{"bad capture mode", `{"capture_mode": "ful"}`, `config.json:1:18: capture_mode: must be full, redacted or metadata, got "ful"`, ""},
		{"bad batch size", "{\n\"batch_size\": 0.5}", "config.json:2:15: batch_size: want a whole number", ""},
		{"bad cost model", `{"cost_model": "free"}`, "", "cost_model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			record(t, home, 3)
			if err := os.WriteFile(config.Path(home), []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var posted int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				posted++
				w.Write([]byte(`{"accepted":3,"duplicates":0}`))
			}))
			defer srv.Close()
			_, errOut, err := run(t, home, srv.URL)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || posted != 0 {
					t.Fatalf("err = %v after %d posts, want %q before any", err, posted, tc.wantErr)
				}
				return
			}
			if err != nil || posted == 0 {
				t.Fatalf("err = %v after %d posts", err, posted)
			}
			if !strings.Contains(errOut, "kilometers sync: warning: ") || !strings.Contains(errOut, tc.wantWarn) {
				t.Errorf("stderr %q, want a warning about %s", errOut, tc.wantWarn)
			}
		})
	}
}

// recordCalls records n tools/call requests with their replies, as a
// monitor does.
func recordCalls(t *testing.T, home string, n int) {
	t.Helper()
	sid := uuid.Must(uuid.NewV7()).String()
	at := time.Now().Add(-time.Minute)
	var evs []event.Event
	for i := range n {
		ms := 3.5
		id := fmt.Sprint(i + 1)
		evs = append(evs,
			event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sid, Seq: int64(2 * i), TS: at, Direction: event.ClientToServer,
				Kind: event.KindRequest, RPCID: id, Method: "tools/call", Tool: "read_file",
				Payload: json.RawMessage(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"read_file"}}`)},
			event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sid, Seq: int64(2*i + 1), TS: at.Add(3 * time.Millisecond), Direction: event.ServerToClient,
				Kind: event.KindResponse, RPCID: id, Method: "tools/call", Tool: "read_file", LatencyMS: &ms,
				Payload: json.RawMessage(`{"jsonrpc":"2.0","id":` + id + `,"result":{"content":[]}}`)})
	}
	writeSession(t, home, event.Session{ID: sid, StartedAt: at, Server: "fs"}, evs)
}

// The foreground sync delivers to every configured destination: an OTLP
// endpoint alone (no API), exactly once across runs and across an outage of
// the endpoint, which fails the command with the endpoint named; and the
// API and the endpoint side by side.
func TestSyncToOTLP(t *testing.T) {
	home := t.TempDir()
	rcv := otlptest.New(t)
	otlpOnly := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL}
	traces := rcv.URL + "/v1/traces"

	if _, _, err := runEnv(t, home, map[string]string{}); err == nil || !strings.Contains(err.Error(), "nothing to sync to") {
		t.Fatalf("no destination: err %v, want 'nothing to sync to'", err)
	}

	recordCalls(t, home, 10)
	out, _, err := runEnv(t, home, otlpOnly)
	if err != nil {
		t.Fatalf("sync to OTLP: %v", err)
	}
	// Two batches: traces and metrics.
	if !strings.Contains(out, "Exported 10 spans in 2 batches to "+traces) || strings.Contains(out, "Shipped") {
		t.Errorf("stdout %q, want the OTLP export told and nothing of the API", out)
	}
	if got := len(rcv.Spans()); got != 10 {
		t.Fatalf("receiver holds %d spans, want 10", got)
	}
	if out, _, err := runEnv(t, home, otlpOnly); err != nil || !strings.Contains(out, "Exported 0 spans") {
		t.Errorf("second sync: %q, %v; want nothing more exported", out, err)
	}

	recordCalls(t, home, 5)
	rcv.SetStatus(http.StatusServiceUnavailable)
	_, _, err = runEnv(t, home, otlpOnly, "--json")
	if err == nil || !strings.Contains(err.Error(), "OTLP: export traces to "+traces) {
		t.Fatalf("sync with the endpoint down: err %v, want the endpoint named", err)
	}
	rcv.SetStatus(0)
	if got := len(rcv.Spans()); got != 10 {
		t.Fatalf("receiver holds %d spans during its outage, want 10", got)
	}

	var api struct {
		sync.Mutex
		events int
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, _ := gzip.NewReader(r.Body)
		var b event.Batch
		json.NewDecoder(zr).Decode(&b)
		api.Lock()
		api.events += len(b.Events)
		api.Unlock()
		json.NewEncoder(w).Encode(backend.IngestResult{Accepted: len(b.Events)})
	}))
	defer srv.Close()
	both := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL, "KILOMETERS_API_URL": srv.URL, "KILOMETERS_API_KEY": "km_test_key_0123456789"}
	out, _, err = runEnv(t, home, both, "--json")
	if err != nil {
		t.Fatalf("sync to both: %v", err)
	}
	var o Output
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("--json: %v in %q", err, out)
	}
	if o.OTLP == nil || o.OTLP.Spans != 5 || o.OTLP.Endpoint != traces || o.OTLP.Error != "" || o.Events != 30 || o.Pending != 0 {
		t.Errorf("--json: %s; want the 5 new spans exported and the 30 events shipped", out)
	}
	api.Lock()
	defer api.Unlock()
	if got := len(rcv.Spans()); got != 15 || api.events != 30 {
		t.Errorf("receiver holds %d spans (want 15), the API %d events (want 30)", got, api.events)
	}
}
