package ship

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
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
	setAside []string // reasons
	asideIDs []string // ids of the events set aside, "session <id>" for sessions
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
func (c *fakeClaim) SetAside(ctx context.Context, reason string, sessions []event.Session, events []event.Event) error {
	c.sp.mu.Lock()
	defer c.sp.mu.Unlock()
	c.sp.setAside = append(c.sp.setAside, reason)
	for _, e := range events {
		c.sp.asideIDs = append(c.sp.asideIDs, e.ID)
	}
	for _, s := range sessions {
		c.sp.asideIDs = append(c.sp.asideIDs, "session "+s.ID)
	}
	return nil
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
	// refuse, if set, answers a status other than 200 for a batch it
	// refuses whole, as the real API's single transaction does.
	refuse func(b event.Batch) int
	calls  int
	// healthChecks counts GET /health, which calls leaves out; health, if
	// set, answers it (else the answer the next ingest would get).
	healthChecks int
	health       func() int
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.URL.Path == "/health" {
		// Up exactly when the next ingest would not be told otherwise.
		a.healthChecks++
		answer := func() int { return a.answer(a.calls + 1) }
		if a.health != nil {
			answer = a.health
		}
		if st := answer(); st != http.StatusOK {
			w.WriteHeader(st)
			return
		}
		fmt.Fprint(w, `{"status":"ok","database":"ok"}`)
		return
	}
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
	if a.refuse != nil {
		if st := a.refuse(b); st != http.StatusOK {
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"error":{"code":"invalid","message":"refused with %d"}}`, st)
			return
		}
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

// A batch refused once, not again, ships whole on the next try of its
// halves: nothing is set aside for an answer that does not repeat.
func TestRefusalThatDoesNotRepeat(t *testing.T) {
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
	if r.SetAside != 0 || r.Accepted != 30 || len(sp.setAside) != 0 || sp.pending() != 0 || api.calls != 5 {
		t.Fatalf("report %+v, set aside %q, pending %d, calls %d", r, sp.setAside, sp.pending(), api.calls)
	}
}

// refuseIDs refuses, with status, every batch that holds one of ids (event
// or session ids).
func refuseIDs(status int, ids ...string) func(event.Batch) int {
	return func(b event.Batch) int {
		for _, e := range b.Events {
			if slices.Contains(ids, e.ID) {
				return status
			}
		}
		for _, s := range b.Sessions {
			if slices.Contains(ids, s.ID) {
				return status
			}
		}
		return http.StatusOK
	}
}

// TestOneRefusedEventNeverBlocksTheRest: an API that refuses every batch
// holding particular events (or session records), the same way every time,
// gets everything else, each once; the refused items, and only they, are
// set aside, whatever the status that refuses them, wherever they are.
func TestOneRefusedEventNeverBlocksTheRest(t *testing.T) {
	evs := makeEvents(100, `{}`)
	for _, c := range []struct {
		name   string
		status int
		bad    []int // indexes of refused events; -1 is the session
		batch  int
	}{
		{"500 for one event", http.StatusInternalServerError, []int{37}, 100},
		{"502 for the first event", http.StatusBadGateway, []int{0}, 100},
		{"500 for the last event", http.StatusInternalServerError, []int{99}, 100},
		{"500 for two events in different halves", http.StatusInternalServerError, []int{3, 77}, 100},
		{"500 for three events", http.StatusInternalServerError, []int{10, 40, 60}, 100},
		{"400 for one event", http.StatusBadRequest, []int{50}, 100},
		{"422 for events next to each other", http.StatusUnprocessableEntity, []int{20, 21}, 100},
		{"400 for half the events", http.StatusBadRequest, seq(0, 100, 2), 100},
		{"500 for the session record", http.StatusInternalServerError, []int{-1}, 100},
		{"413 for the session record", http.StatusRequestEntityTooLarge, []int{-1}, 100},
		{"500 for an event, small batches", http.StatusInternalServerError, []int{12}, 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ids, want []string
			for _, i := range c.bad {
				if i < 0 {
					ids = append(ids, evs[0].SessionID)
					want = append(want, "session "+evs[0].SessionID)
					continue
				}
				ids = append(ids, evs[i].ID)
				want = append(want, evs[i].ID)
			}
			api, client := newAPI(t, func(int) int { return 200 })
			api.refuse = refuseIDs(c.status, ids...)
			sp := &fakeSpool{events: evs}
			var logs strings.Builder
			r, err := New(sp, client, Options{BatchSize: c.batch, Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Flush(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			refusedEvents := len(want)
			if c.bad[0] < 0 {
				refusedEvents = 0
			}
			if sp.pending() != 0 || r.Events != 100 || r.SetAside != refusedEvents || r.Accepted != 100-refusedEvents ||
				r.SetAside+r.SetAsideSessions != len(c.bad) || len(r.Reasons) != len(c.bad) {
				t.Errorf("report %+v, pending %d", r, sp.pending())
			}
			slices.Sort(want)
			slices.Sort(sp.asideIDs)
			if !slices.Equal(sp.asideIDs, want) {
				t.Errorf("set aside %q, want %q", sp.asideIDs, want)
			}
			for _, reason := range sp.setAside {
				if !strings.Contains(reason, fmt.Sprint(c.status)) {
					t.Errorf("reason %q does not give the status", reason)
				}
			}
			for _, e := range evs {
				if got, refused := api.ids[e.ID], slices.Contains(ids, e.ID); got != 1 && !refused || got != 0 && refused {
					t.Errorf("event %s stored %d times (refused %v)", e.ID, got, refused)
				}
			}
			if !strings.Contains(logs.String(), "set aside") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
		})
	}
}

func seq(from, to, step int) []int {
	var s []int
	for i := from; i < to; i += step {
		s = append(s, i)
	}
	return s
}

// TestNarrowingGenerated: random batches, batch sizes, up to three refused
// events anywhere, refused with any status about the data. Every other
// event is delivered once; refused events are set aside, never delivered;
// the only thing left pending, with an error, is a claim made only of
// events refused with a 5xx, which cannot be told from an outage.
func TestNarrowingGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	statuses := []int{http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout}
	for round := range 200 {
		n := 1 + rng.IntN(80)
		evs := makeEvents(n, `{}`)
		bad := map[string]bool{}
		for range rng.IntN(4) {
			bad[evs[rng.IntN(n)].ID] = true
		}
		status := statuses[rng.IntN(len(statuses))]
		api, client := newAPI(t, func(int) int { return 200 })
		api.refuse = refuseIDs(status, slices.Collect(maps.Keys(bad))...)
		sp := &fakeSpool{events: evs}
		batch := 1 + rng.IntN(40)
		_, err := New(sp, client, Options{BatchSize: batch}).Flush(context.Background())
		where := fmt.Sprintf("round %d: %d events in batches of %d, %d refused with %d", round, n, batch, len(bad), status)
		if err != nil {
			e, ok := apiclient.AsError(err)
			if !ok || e.Status != status || status < 500 {
				t.Errorf("%s: %v", where, err)
			}
			for _, e := range sp.events[sp.next:min(sp.next+batch, n)] {
				if !bad[e.ID] {
					t.Errorf("%s: %s left pending, not refused", where, e.ID)
				}
			}
		}
		for i, e := range evs {
			if got := api.ids[e.ID]; bad[e.ID] && got != 0 || !bad[e.ID] && got != 1 && (err == nil || i < sp.next) {
				t.Errorf("%s: event %s (refused %v) stored %d times", where, e.ID, bad[e.ID], got)
			}
		}
		for _, id := range sp.asideIDs {
			if !bad[id] {
				t.Errorf("%s: %s set aside, not refused", where, id)
			}
		}
	}
}

// An API that fails everything with a 5xx is down, not refusing an event:
// narrowing gives up after a bounded number of requests and sets nothing
// aside; so does a lone event failing with nothing else to prove the API
// works, until a later batch has company for it.
func TestPersistent5xxIsAnOutage(t *testing.T) {
	for _, n := range []int{1, 2, 100} {
		api, client := newAPI(t, func(int) int { return 200 })
		api.refuse = func(event.Batch) int { return http.StatusInternalServerError }
		sp := &fakeSpool{events: makeEvents(n, `{}`)}
		r, err := New(sp, client, Options{BatchSize: 100}).Flush(context.Background())
		if e, ok := apiclient.AsError(err); !ok || e.Status != 500 {
			t.Fatalf("%d events: err = %v", n, err)
		}
		// newAPI's client tries each request 3 times; the session record
		// alone is one request more.
		if sp.pending() != n || len(sp.setAside) != 0 || r.Events != 0 || api.calls > 3*(maxBlindFailures+1) {
			t.Errorf("%d events: report %+v, pending %d, set aside %v, %d calls", n, r, sp.pending(), sp.setAside, api.calls)
		}
	}
	// The lone event of the first run, with others recorded since.
	evs := makeEvents(10, `{}`)
	api, client := newAPI(t, func(int) int { return 200 })
	api.refuse = refuseIDs(http.StatusInternalServerError, evs[0].ID)
	sp := &fakeSpool{events: evs[:1]}
	if _, err := New(sp, client, Options{}).Flush(context.Background()); err == nil || sp.pending() != 1 {
		t.Fatalf("lone failing event: %v, pending %d", err, sp.pending())
	}
	sp.events = evs
	r, err := New(sp, client, Options{}).Flush(context.Background())
	if err != nil || r.SetAside != 1 || r.Accepted != 9 || sp.asideIDs[0] != evs[0].ID {
		t.Fatalf("with company: %v, %+v, set aside %q", err, r, sp.asideIDs)
	}
}

// An API that answers 5xx and says it is down is in an outage: the shipper
// asks /health once and stops, sending no pieces of the batch.
func TestOutageToldByHealth(t *testing.T) {
	api, client := newAPI(t, func(int) int { return http.StatusBadGateway })
	sp := &fakeSpool{events: makeEvents(40, `{}`)}
	_, err := New(sp, client, Options{}).Flush(context.Background())
	if e, ok := apiclient.AsError(err); !ok || e.Status != http.StatusBadGateway {
		t.Fatalf("err = %v", err)
	}
	// newAPI's client tries a request 3 times: the whole batch, no pieces.
	if api.calls != 3 || api.healthChecks == 0 || sp.pending() != 40 || len(sp.setAside) != 0 {
		t.Errorf("%d calls, %d health checks, %d pending, set aside %v", api.calls, api.healthChecks, sp.pending(), sp.setAside)
	}
}

// A piece that failed before the API was seen working may have met the end
// of an outage: it is sent once more, and ships, rather than set aside.
func TestOutageEndingDuringNarrowing(t *testing.T) {
	// The whole batch (3 tries) and then the session records alone (3
	// tries) fail; everything after goes through.
	api, client := newAPI(t, func(n int) int {
		if n <= 6 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	api.health = func() int { return http.StatusOK }
	sp := &fakeSpool{events: makeEvents(40, `{}`)}
	r, err := New(sp, client, Options{}).Flush(context.Background())
	if err != nil || r.Accepted != 40 || r.SetAside != 0 || r.SetAsideSessions != 0 || len(sp.setAside) != 0 || sp.pending() != 0 {
		t.Fatalf("%v, %+v, set aside %v, pending %d", err, r, sp.setAside, sp.pending())
	}
	if api.calls != 8 {
		t.Errorf("%d requests, want 8: the batch and the sessions 3 times each, the events, the sessions again", api.calls)
	}
}

// Once events of the claim went through, a failing part is tried twice,
// not RetryMax+1 times: a 5xx for one part while others pass is the data's.
func TestNarrowingRetriesLessOnceTheAPIWorks(t *testing.T) {
	api := &fakeAPI{ids: map[string]int{}, answer: func(int) int { return 200 }}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client := apiclient.New(srv.URL, "k", apiclient.Options{RetryMax: 4, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	evs := makeEvents(4, `{}`)
	api.refuse = refuseIDs(http.StatusInternalServerError, evs[3].ID)
	sp := &fakeSpool{events: evs}
	r, err := New(sp, client, Options{}).Flush(context.Background())
	if err != nil || r.SetAside != 1 || r.Accepted != 3 {
		t.Fatalf("%v, %+v", err, r)
	}
	// The whole batch and its events alone fail 5 times each before any
	// event went through; the session records, e0+e1 and e2 go at once;
	// e2+e3 and e3 fail twice each.
	if want := 5 + 1 + 5 + 1 + 2 + 1 + 2; api.calls != want {
		t.Errorf("%d requests, want %d", api.calls, want)
	}
}

// Answers that are not about the data stop narrowing at once.
func TestNoNarrowingForAnswersNotAboutTheData(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusUnauthorized,
		http.StatusNotFound, http.StatusNotImplemented, http.StatusRequestTimeout} {
		api, client := newAPI(t, func(int) int { return 200 })
		evs := makeEvents(50, `{}`)
		api.refuse = refuseIDs(status, evs[7].ID)
		sp := &fakeSpool{events: evs}
		_, err := New(sp, client, Options{}).Flush(context.Background())
		if e, ok := apiclient.AsError(err); !ok || e.Status != status {
			t.Errorf("%d: err = %v", status, err)
		}
		if sp.pending() != 50 || len(sp.setAside) != 0 || len(api.ids) != 0 {
			t.Errorf("%d: pending %d, set aside %v, stored %d", status, sp.pending(), sp.setAside, len(api.ids))
		}
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

// sent is the batch the API gets for sessions and events under mode.
func sent(t *testing.T, sessions []event.Session, events []event.Event, mode string) event.Batch {
	t.Helper()
	gz, err := new(encoder).encode(sessions, events, mode, backend.MaxBodyBytes, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b event.Batch
	if err := json.Unmarshal([]byte(gunzip(t, gz)), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCaptureModes(t *testing.T) {
	evs := makeEvents(1, secretPayload)
	sess := []event.Session{{ID: evs[0].SessionID, Command: []string{"server", "--api-key", "xyz"}}}
	full := sent(t, sess, evs, config.CaptureFull)
	if string(full.Events[0].Payload) != secretPayload || full.Sessions[0].Command[2] != "xyz" {
		t.Errorf("full changed the batch: %+v", full)
	}
	red := sent(t, sess, evs, config.CaptureRedacted)
	if strings.Contains(string(red.Events[0].Payload), "sekrit") || red.Sessions[0].Command[2] != "[REDACTED]" {
		t.Errorf("redacted: %s %q", red.Events[0].Payload, red.Sessions[0].Command)
	}
	meta := sent(t, sess, evs, config.CaptureMetadata)
	if meta.Events[0].Payload != nil || meta.Events[0].Tool != "fetch" || meta.Sessions[0].Command[2] != "[REDACTED]" {
		t.Errorf("metadata: %+v", meta.Events[0])
	}
	if string(evs[0].Payload) != secretPayload || sess[0].Command[2] != "xyz" {
		t.Errorf("shipping modified its input")
	}
	cut := sent(t, nil, makeEvents(1, `{"jsonrpc":"2.0","params":{"password":"hunt`), config.CaptureRedacted)
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
	gz, err := new(encoder).encode(c.Sessions(), c.Events(), config.CaptureRedacted, backend.MaxBodyBytes, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.IngestEncoded(ctx, gz); err != nil {
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

// TestCaptureKeepsMetadata: whatever the capture mode, only payloads (and
// command lines) change on the way out; the fields stats count (kind,
// is_error, error_code, latency, risk, cost) leave exactly as recorded.
func TestCaptureKeepsMetadata(t *testing.T) {
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
		b := sent(t, nil, base, mode)
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

// prepared is the batch as it may leave the machine, whole: what
// encoding/json makes of it is what writeBatch must stream.
func prepared(sessions []event.Session, events []event.Event, mode string) event.Batch {
	b := event.Batch{Events: make([]event.Event, len(events)), Sessions: outgoingSessions(sessions, mode)}
	for i := range events {
		b.Events[i] = Outgoing(events[i], mode)
	}
	return b
}

// The shipper streams each batch onto the wire (writeBatch, with
// event.AppendJSON) instead of preparing and encoding it whole; the API must
// get what encoding/json makes of the prepared batch, in every capture mode,
// batch after batch with the same gzip writer.
func TestWireMatchesEncodingJSON(t *testing.T) {
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
		var enc encoder // one for every round, as a Shipper keeps one
		for round, batch := range [][]event.Event{evs, evs[:1], nil, evs[2:]} {
			ses := sessions
			if round == 1 {
				ses = nil
			}
			gz, err := enc.encode(ses, batch, mode, backend.MaxBodyBytes, 0)
			if err != nil {
				t.Fatal(err)
			}
			wantRaw, err := json.Marshal(prepared(ses, batch, mode))
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
	gz, err := new(encoder).encode(sessions, evs, config.CaptureRedacted, backend.MaxBodyBytes, 0)
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
		b := sent(t, sessions, evs, mode)
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
