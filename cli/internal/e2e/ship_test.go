package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// Fake secrets, built from parts so scanners leave this file alone.
var (
	ghToken  = "ghp_" + "1234567890abcdefghijABCDEFGHIJklmnop"
	password = "hunter2" + "hunter2"
)

func TestShipEndToEnd(t *testing.T) {
	e := setup(t)
	a := e.startAPI(t, "")
	key := a.tenant("acme")
	u := e.user(t)

	if out, errOut, code := u.run(t, key+"\n", "init", "--api-url", a.url(), "--api-key-stdin"); code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	cfg := u.mustRun(t, "config")
	if strings.Contains(cfg, key) || !strings.Contains(cfg, a.url()) {
		t.Errorf("config shows the key or lacks the URL:\n%s", cfg)
	}

	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 12, "login with password="+password+" and token "+ghToken)
		calls(t, cs, "fail", 3, "x")
		calls(t, cs, "crash", 2, "x")
	})
	u.mustRun(t, "sync")

	s := a.stats(key)
	for _, want := range []struct {
		tool          string
		calls, errors int64
	}{{"echo", 12, 0}, {"fail", 3, 3}, {"crash", 2, 2}} {
		got := toolStats(s, want.tool)
		if got.Calls != want.calls || got.Errors != want.errors {
			t.Errorf("API stats for %s: %d calls %d errors, want %d and %d", want.tool, got.Calls, got.Errors, want.calls, want.errors)
		}
	}
	if s.Totals.Sessions != 1 {
		t.Errorf("API sessions = %d, want 1", s.Totals.Sessions)
	}

	// activity reads the API by default, the local store with --local:
	// the same events, the same shape; secrets stayed on the machine.
	remote := activityPage(t, u, "activity", "--json", "--limit", "1000")
	local := activityPage(t, u, "activity", "--json", "--limit", "1000", "--local")
	if len(remote.Events) != len(local.Events) || int64(len(remote.Events)) != s.Totals.Events {
		t.Errorf("API has %d events (stats %d), local store %d", len(remote.Events), s.Totals.Events, len(local.Events))
	}
	raw, _ := json.Marshal(remote)
	for _, secret := range []string{password, ghToken} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("secret %q reached the API", secret)
		}
	}
	if !bytes.Contains(raw, []byte("[REDACTED]")) {
		t.Errorf("no redacted payload in the API's activity")
	}
}

func activityPage(t *testing.T, u *user, args ...string) activity.Page {
	t.Helper()
	var p activity.Page
	if err := json.Unmarshal([]byte(u.mustRun(t, args...)), &p); err != nil {
		t.Fatalf("kilometers %v: %v", args, err)
	}
	return p
}

// waitFor polls cond until it holds; the deadline only stops a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAPIStoppedDuringSession(t *testing.T) {
	e := setup(t)
	a := e.startAPI(t, "")
	key := a.tenant("outage")
	p, proxyURL := newProxy(t, a.url(), nil)
	u := e.user(t, "KILOMETERS_API_URL="+proxyURL, "KILOMETERS_API_KEY="+key)

	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 5, "before")
		waitFor(t, "the first calls to ship", func() bool { return toolStats(a.stats(key), "echo").Calls == 5 })
		a.stop()
		calls(t, cs, "echo", 5, "during")
		calls(t, cs, "fail", 2, "during")
	})

	out, errOut, code := u.run(t, "", "sync")
	if code == 0 || !strings.Contains(errOut, "not delivered") {
		t.Errorf("sync with the API down: exit %d\n%s%s", code, out, errOut)
	}

	a.restart()
	u.mustRun(t, "sync")
	s := a.stats(key)
	if echo, fail := toolStats(s, "echo"), toolStats(s, "fail"); echo.Calls != 10 || fail.Calls != 2 || fail.Errors != 2 {
		t.Errorf("after the outage: echo %+v, fail %+v", echo, fail)
	}
	if out := u.mustRun(t, "sync"); !strings.Contains(out, "Shipped 0 events") {
		t.Errorf("second sync shipped again:\n%s", out)
	}
	s = a.stats(key)
	if n := toolStats(s, "echo").Calls; n != 10 {
		t.Errorf("echo calls after a second sync = %d, want 10", n)
	}
	p.checkDeliveredOnce(t, s.Totals.Events, nil)
	checkSameStats(t, u, s)
}

// proxy forwards ingest requests to the API and counts every event id it
// sees: sent counts every attempt, delivered those the API answered 2xx.
// The API's counts cannot tell a resend from a first send (it dedups by
// id), so the proxy is what catches double sending. When hold says so it
// forwards a request and then never answers.
type proxy struct {
	target    string
	mu        sync.Mutex
	sent      map[string]int
	delivered map[string]int
	calls     int // tools/call requests forwarded
	hold      func(calls int) bool
	held      chan struct{}
	heldIDs   map[string]bool
	// refusals are the API's answers other than 2xx, for the log.
	refusals []string
	once     sync.Once
	// refuse, if set, answers a batch itself with the status it returns
	// when that is not 0, instead of forwarding it.
	refuse func(event.Batch) int
}

func newProxy(t *testing.T, target string, hold func(int) bool) (*proxy, string) {
	p := &proxy{target: target, sent: map[string]int{}, delivered: map[string]int{}, heldIDs: map[string]bool{}, hold: hold, held: make(chan struct{})}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var b event.Batch
	holdThis := false
	if r.URL.Path == "/api/events/batch" {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			json.NewDecoder(zr).Decode(&b)
		}
		p.mu.Lock()
		for _, e := range b.Events {
			p.sent[e.ID]++
			if e.IsToolCall() {
				p.calls++
			}
		}
		holdThis = p.hold != nil && p.hold(p.calls)
		refuse := p.refuse
		p.mu.Unlock()
		if refuse != nil {
			if status := refuse(b); status != 0 {
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"error":{"code":"internal","message":"refused by the test proxy with %d"}}`, status)
				return
			}
		}
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 && r.URL.Path == "/api/events/batch" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		p.mu.Lock()
		p.refusals = append(p.refusals, fmt.Sprintf("%d %s", resp.StatusCode, b))
		p.mu.Unlock()
	}
	if resp.StatusCode/100 == 2 {
		p.mu.Lock()
		for _, e := range b.Events {
			p.delivered[e.ID]++
			if holdThis {
				p.heldIDs[e.ID] = true
			}
		}
		p.mu.Unlock()
	}
	if holdThis {
		// Delivered, but the shipper never hears so.
		p.once.Do(func() { close(p.held) })
		<-r.Context().Done()
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// checkDeliveredOnce fails t unless every event the API holds was
// delivered exactly once, but those in again (delivered twice: once
// unacknowledged, once more), and nothing else was delivered.
func (p *proxy) checkDeliveredOnce(t *testing.T, apiEvents int64, again map[string]bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, n := range p.delivered {
		want := 1
		if again[id] {
			want = 2
		}
		if n != want {
			t.Errorf("event %s delivered %d times, want %d", id, n, want)
		}
	}
	if int64(len(p.delivered)) != apiEvents {
		t.Errorf("%d distinct events delivered, API has %d", len(p.delivered), apiEvents)
	}
}

func TestKill9DuringBatch(t *testing.T) {
	e := setup(t)
	a := e.startAPI(t, "")
	key := a.tenant("kill9")
	const n = 20
	p, proxyURL := newProxy(t, a.url(), func(calls int) bool { return calls >= n })
	u := e.user(t, "KILOMETERS_API_URL="+proxyURL, "KILOMETERS_API_KEY="+key)

	u.session(t, func(cs *mcp.ClientSession, monitor *exec.Cmd) {
		calls(t, cs, "echo", n, "x")
		select {
		case <-p.held:
		case <-time.After(90 * time.Second):
			t.Fatal("the monitor never shipped the calls")
		}
		// The API stored the batch; the monitor and the shipper it
		// launched die before they hear so.
		if !testenv.CanFindShippers {
			t.Skip("finding the background shipper needs /proc")
		}
		shippers := testenv.Shippers(u.home)
		if len(shippers) == 0 {
			t.Fatal("no background shipper is running, yet a batch is held")
		}
		if err := monitor.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range shippers {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	})

	out := u.mustRun(t, "sync", "--api-url", a.url(), "--json")
	var r struct {
		Events, Accepted, Duplicates int
		Pending                      int64
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Duplicates == 0 || r.Pending != 0 {
		t.Errorf("sync after kill -9: %+v (want the held batch again, as duplicates)", r)
	}
	s := a.stats(key)
	if got := toolStats(s, "echo").Calls; got != n {
		t.Errorf("API echo calls = %d, want %d", got, n)
	}
	// sync went to the API directly, so the proxy saw the held batch once:
	// the held events are the only ones whose delivery went unheard.
	p.mu.Lock()
	held := len(p.heldIDs)
	p.mu.Unlock()
	if held == 0 || r.Duplicates != held {
		t.Errorf("sync resent %d duplicates, the held batch had %d events", r.Duplicates, held)
	}
	local := activityPage(t, u, "activity", "--json", "--limit", "1000", "--local")
	if int64(len(local.Events)) != s.Totals.Events {
		t.Errorf("local store has %d events, API %d", len(local.Events), s.Totals.Events)
	}
}

func TestFiveConcurrentMonitors(t *testing.T) {
	e := setup(t)
	a := e.startAPI(t, "")
	key := a.tenant("five")
	p, proxyURL := newProxy(t, a.url(), nil)
	u := e.user(t, "KILOMETERS_API_URL="+proxyURL, "KILOMETERS_API_KEY="+key)

	t.Run("monitors", func(t *testing.T) {
		for i := range 5 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
					calls(t, cs, "echo", 20, fmt.Sprintf("monitor %d", i))
					calls(t, cs, "fail", 2, "x")
				})
			})
		}
	})
	u.mustRun(t, "sync")

	s := a.stats(key)
	if echo, fail := toolStats(s, "echo"), toolStats(s, "fail"); echo.Calls != 100 || fail.Calls != 10 || fail.Errors != 10 || s.Totals.Sessions != 5 {
		t.Errorf("API: echo %+v, fail %+v, sessions %d", echo, fail, s.Totals.Sessions)
	}
	// An event may be sent again after the API failed to take it (that is
	// what retries are for); it must be delivered once.
	p.checkDeliveredOnce(t, s.Totals.Events, nil)
	p.mu.Lock()
	for _, r := range p.refusals {
		t.Logf("the API refused a batch, retried: %s", r)
	}
	p.mu.Unlock()
	// Where an undercount comes from: the local store holds what the
	// monitor recorded; if it agrees with the API, shipping lost nothing.
	checkSameStats(t, u, s)
}

// TestRefusedEventIsSetAside: an event that the API refuses every time, with
// a 400 of its own (a timestamp before 2000) or with a 500 (a proxy that
// fails every batch holding it), is set aside alone, visibly, by the
// monitor's shippers as by sync; every other event of its batches reaches
// the API, once.
func TestRefusedEventIsSetAside(t *testing.T) {
	e := setup(t)
	a := e.startAPI(t, "")
	key := a.tenant("refused")
	p, proxyURL := newProxy(t, a.url(), nil)
	// Both halves of the call whose text says "poison" fail with 500.
	p.refuse = func(b event.Batch) int {
		for _, e := range b.Events {
			if bytes.Contains(e.Payload, []byte("poison")) {
				return http.StatusInternalServerError
			}
		}
		return 0
	}
	u := e.user(t, "KILOMETERS_API_URL="+proxyURL, "KILOMETERS_API_KEY="+key)
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 10, "ok")
		calls(t, cs, "echo", 1, "poison")
		calls(t, cs, "echo", 10, "ok again")
	})
	awaitShippers(t, u.home)

	// An event the API refuses itself (a timestamp before 2000), recorded
	// among good ones.
	ctx := context.Background()
	st, err := store.Open(ctx, u.home, store.Options{Spool: true})
	if err != nil {
		t.Fatal(err)
	}
	sid := uuid.Must(uuid.NewV7()).String()
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, event.Session{ID: sid, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for i := range 9 {
		ts := time.Now()
		if i == 4 {
			ts = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		evs = append(evs, event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sid, Seq: int64(i), TS: ts,
			Direction: event.ClientToServer, Kind: event.KindNotification, Method: "notifications/progress"})
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	for run := range 2 { // the second sync, with nothing to ship, still says so
		out, errOut, code := u.run(t, "", "sync")
		if code == 0 || strings.Count(out, "Set aside: 1 events") != 3 || !strings.Contains(out, "500") ||
			!strings.Contains(out, "ts") || !strings.Contains(out, "id "+evs[4].ID) || !strings.Contains(errOut, "3 events and 0 session records") {
			t.Errorf("sync %d with refused events: exit %d\n%s%s", run, code, out, errOut)
		}
	}
	var o struct {
		Pending         int64                 `json:"pending"`
		SetAsideBatches []store.SetAsideBatch `json:"set_aside_batches"`
	}
	out, _, _ := u.run(t, "", "sync", "--json")
	if err := json.Unmarshal([]byte(out), &o); err != nil || o.Pending != 0 || len(o.SetAsideBatches) != 3 {
		t.Fatalf("sync --json: %v\n%s", err, out)
	}
	// Kept on disk, whole: the poisoned call's request and response.
	var poisoned int
	for _, b := range o.SetAsideBatches {
		raw, err := os.ReadFile(b.Path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("poison #0")) {
			poisoned++
		}
	}
	if poisoned != 2 {
		t.Errorf("%d set-aside files hold the poisoned call, want 2", poisoned)
	}

	s := a.stats(key)
	if echo := toolStats(s, "echo"); echo.Calls != 20 {
		t.Errorf("API has %d echo calls, want the 20 good ones", echo.Calls)
	}
	p.checkDeliveredOnce(t, s.Totals.Events, nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range evs {
		if want := map[bool]int{true: 0, false: 1}[e.ID == evs[4].ID]; p.delivered[e.ID] != want {
			t.Errorf("event %d delivered %d times, want %d", e.Seq, p.delivered[e.ID], want)
		}
	}
}
