package alerts

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

const secret = "whsec-0123456789"

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// hook is a real webhook receiver: it checks every signature, and answers
// the statuses queued in fail before it answers 200.
type hook struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	fail     []int
	always   int
	got      []Alert
	attempts int
}

func newHook(t *testing.T) *hook {
	h := &hook{t: t}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.attempts++
		if want := Sign(secret, body); !hmac.Equal([]byte(r.Header.Get(SignatureHeader)), []byte(want)) {
			h.t.Errorf("signature %q, want %q", r.Header.Get(SignatureHeader), want)
		}
		if h.always != 0 {
			w.WriteHeader(h.always)
			return
		}
		if len(h.fail) > 0 {
			w.WriteHeader(h.fail[0])
			h.fail = h.fail[1:]
			return
		}
		var a Alert
		var slack struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(body, &a); err != nil || json.Unmarshal(body, &slack) != nil || slack.Text == "" {
			h.t.Errorf("body %s: %v; want an alert with a Slack text", body, err)
		}
		h.got = append(h.got, a)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) alerts() []Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Alert(nil), h.got...)
}

// spool records events into a fresh store, as a monitor would.
type spool struct {
	t    *testing.T
	home string
	st   *store.Store
	seq  int
}

func newSpool(t *testing.T) *spool {
	home := t.TempDir()
	st, err := store.Open(context.Background(), home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &spool{t: t, home: home, st: st}
}

// record writes one session's events.
func (s *spool) record(evs ...event.Event) {
	s.t.Helper()
	ctx := context.Background()
	sid := fmt.Sprintf("sess-%d", s.seq)
	w, err := s.st.NewWriter(ctx, sid)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := w.RecordSession(ctx, event.Session{ID: sid, Server: "everything", StartedAt: t0}); err != nil {
		s.t.Fatal(err)
	}
	for i := range evs {
		s.seq++
		evs[i].ID, evs[i].SessionID, evs[i].Seq = fmt.Sprintf("ev-%d", s.seq), sid, int64(s.seq)
	}
	if err := w.Record(ctx, evs); err != nil {
		s.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *spool) rules(rules ...Rule) {
	s.t.Helper()
	for i := range rules {
		if rules[i].ID == "" {
			rules[i].ID = "al_" + string(rules[i].On)
		}
		if rules[i].CreatedAt.IsZero() {
			rules[i].CreatedAt = t0.Add(-time.Hour)
		}
		rules[i].Secret = secret
	}
	if err := Save(s.home, rules); err != nil {
		s.t.Fatal(err)
	}
}

func (s *spool) run() Report {
	s.t.Helper()
	rep, err := Run(context.Background(), s.st, s.home, &Sender{})
	if err != nil {
		s.t.Fatal(err)
	}
	return rep
}

func toolsList(at time.Time, payload string, reasons ...string) event.Event {
	e := event.Event{TS: at, Direction: event.ServerToClient, Kind: event.KindResponse, RPCID: "1", Method: "tools/list", Payload: json.RawMessage(payload)}
	if len(reasons) > 0 {
		e.Risk = &event.Risk{Score: 80, Level: event.LevelHigh, Reasons: reasons}
	}
	return e
}

func call(at time.Time, tool string, ms float64, failed bool, score int) []event.Event {
	req := event.Event{TS: at, Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: "9", Method: "tools/call", Tool: tool, Payload: json.RawMessage(`{"params":{}}`)}
	if score > 0 {
		req.Risk = &event.Risk{Score: score, Level: event.LevelHigh, Reasons: []string{"shell_command"}}
	}
	rep := event.Event{TS: at.Add(time.Duration(ms * float64(time.Millisecond))), Direction: event.ServerToClient, Kind: event.KindResponse,
		RPCID: "9", Method: "tools/call", Tool: tool, LatencyMS: &ms, Payload: json.RawMessage(`{"result":{}}`)}
	if failed {
		yes := true
		rep.IsError = &yes
	}
	return []event.Event{req, rep}
}

func calls(at time.Time, tool string, n int, ms float64, failed bool) []event.Event {
	var out []event.Event
	for i := range n {
		out = append(out, call(at.Add(time.Duration(i)*time.Second), tool, ms, failed, 0)...)
	}
	return out
}

func TestEachRuleFiresOnce(t *testing.T) {
	h := newHook(t)
	s := newSpool(t)
	var rules []Rule
	for _, k := range Kinds {
		rules = append(rules, Rule{On: k, Webhook: h.srv.URL})
	}
	rules[len(rules)-1].Threshold = 2000 // latency_p95, ms
	s.rules(rules...)

	var evs []event.Event
	evs = append(evs, toolsList(t0, `{"result":{"tools":[{"name":"add"},{"name":"echo"}]}}`, "tool_poisoning:add", "hidden_instructions"))
	evs = append(evs, toolsList(t0.Add(time.Second), `{"result":{"tools":[{"name":"add"},{"name":"echo"}]}}`, "definition_changed:echo"))
	evs = append(evs, call(t0.Add(2*time.Second), "echo", 5, false, 85)...)
	evs = append(evs, calls(t0.Add(3*time.Second), "flaky", 4, 5, true)...)
	evs = append(evs, calls(t0.Add(10*time.Second), "slow", 4, 3000, false)...)
	s.record(evs...)

	rep := s.run()
	got := map[Kind][]Alert{}
	for _, a := range h.alerts() {
		got[a.On] = append(got[a.On], a)
	}
	want := map[Kind]string{
		Poisoning: "everything/add", DefinitionChanged: "everything/echo", HighRisk: "everything/echo",
		NewServer: "everything", FailureRate: "everything/flaky", LatencyP95: "everything/slow",
	}
	for kind, cond := range want {
		if len(got[kind]) != 1 || got[kind][0].Condition != cond {
			t.Errorf("%s: alerts %+v, want one about %s", kind, got[kind], cond)
		}
	}
	// New tools: add, echo (from tools/list), flaky, slow (from calls).
	if len(got[NewTool]) != 4 {
		t.Errorf("new_tool: %d alerts, want 4: %+v", len(got[NewTool]), got[NewTool])
	}
	if a := got[LatencyP95]; len(a) == 1 && (a[0].Value < 2000 || a[0].Calls != 3) {
		// The rule fires on the third slow call: the fewest judged.
		t.Errorf("latency alert value %v over %d calls", a[0].Value, a[0].Calls)
	}
	if rep.Fired != 10 || rep.Sent != 10 {
		t.Errorf("report %+v", rep)
	}
	if a := got[Poisoning]; len(a) == 1 && (!strings.Contains(a[0].Text, "`add`") || a[0].ID == "" || len(a[0].EventIDs) != 1) {
		t.Errorf("poisoning alert %+v", a[0])
	}

	// Nothing fires twice for the same events.
	if rep := s.run(); rep.Fired != 0 || rep.Sent != 0 || len(h.alerts()) != 10 {
		t.Errorf("second run %+v, %d alerts", rep, len(h.alerts()))
	}
}

// At most one alert per rule and condition per window; after the window,
// the same condition fires again.
func TestQuietForAWindow(t *testing.T) {
	h := newHook(t)
	s := newSpool(t)
	s.rules(Rule{On: FailureRate, Window: 5 * time.Minute, Webhook: h.srv.URL}, Rule{On: Poisoning, Window: time.Hour, Webhook: h.srv.URL})
	poisoned := `{"result":{"tools":[{"name":"add"}]}}`
	s.record(append(calls(t0, "flaky", 10, 5, true), toolsList(t0.Add(time.Minute), poisoned, "tool_poisoning:add"))...)
	s.record(append(calls(t0.Add(2*time.Minute), "flaky", 10, 5, true), toolsList(t0.Add(30*time.Minute), poisoned, "tool_poisoning:add"))...)
	s.run()
	if n := len(h.alerts()); n != 2 {
		t.Fatalf("%d alerts within the window, want one per rule: %+v", n, h.alerts())
	}
	s.record(calls(t0.Add(6*time.Minute), "flaky", 3, 5, true)...)
	s.run()
	if n := len(h.alerts()); n != 3 {
		t.Errorf("%d alerts after the failure-rate window passed, want 3", n)
	}
}

// Events recorded before a rule existed never fire it.
func TestOnlyEventsAfterTheRule(t *testing.T) {
	h := newHook(t)
	s := newSpool(t)
	s.rules(Rule{On: NewServer, Webhook: h.srv.URL, CreatedAt: t0.Add(time.Hour)})
	s.record(call(t0, "echo", 5, false, 0)...)
	if rep := s.run(); rep.Fired != 0 || len(h.alerts()) != 0 {
		t.Errorf("rule fired for events older than itself: %+v", h.alerts())
	}
}

// A webhook answering 5xx gets the alert again, with backoff, once.
func TestRetriesOn5xx(t *testing.T) {
	h := newHook(t)
	h.fail = []int{503, 502}
	s := newSpool(t)
	s.rules(Rule{On: NewServer, Webhook: h.srv.URL})
	s.record(call(t0, "echo", 5, false, 0)...)
	synctest.Test(t, func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		start := time.Now()
		rep, err := Run(context.Background(), s.st, s.home, &Sender{Client: client})
		if err != nil || rep.Sent != 1 {
			t.Fatalf("run = %+v, %v", rep, err)
		}
		// Waits of 1s then 2s between the three attempts.
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("delivered after %s of backoff, want 3s", d)
		}
	})
	if h.attempts != 3 || len(h.alerts()) != 1 {
		t.Errorf("%d attempts, %d alerts kept; want 3 and 1", h.attempts, len(h.alerts()))
	}
}

// A webhook down through every retry: the alert waits in the outbox and
// the next run delivers it, once.
func TestUndeliveredAlertWaits(t *testing.T) {
	h := newHook(t)
	h.always = 500
	s := newSpool(t)
	s.rules(Rule{On: NewServer, Webhook: h.srv.URL})
	s.record(call(t0, "echo", 5, false, 0)...)
	synctest.Test(t, func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		if _, err := Run(context.Background(), s.st, s.home, &Sender{Client: client}); err == nil || !strings.Contains(err.Error(), "500") {
			t.Fatalf("run with the webhook down = %v", err)
		}
	})
	if h.attempts != attempts {
		t.Errorf("%d attempts, want %d", h.attempts, attempts)
	}
	h.mu.Lock()
	h.always = 0
	h.mu.Unlock()
	if rep := s.run(); rep.Sent != 1 || rep.Fired != 0 {
		t.Errorf("next run %+v, want the waiting alert sent and nothing fired again", rep)
	}
	if rep := s.run(); rep.Sent != 0 || len(h.alerts()) != 1 {
		t.Errorf("third run %+v, %d alerts", rep, len(h.alerts()))
	}
}

// A 4xx means the webhook will never take it: dropped, not retried.
func TestRefusedAlertDropped(t *testing.T) {
	h := newHook(t)
	h.always = 404
	s := newSpool(t)
	s.rules(Rule{On: NewServer, Webhook: h.srv.URL})
	s.record(call(t0, "echo", 5, false, 0)...)
	rep := s.run()
	if rep.Sent != 0 || h.attempts != 1 {
		t.Errorf("report %+v after %d attempts; want one attempt, nothing sent", rep, h.attempts)
	}
	h.mu.Lock()
	h.always = 0
	h.mu.Unlock()
	if s.run(); len(h.alerts()) != 0 {
		t.Error("a refused alert was sent again")
	}
}

func TestValidate(t *testing.T) {
	ok := Rule{On: HighRisk, Webhook: "https://example.com/h", Secret: "s"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Rule){
		"unknown rule":        func(r *Rule) { r.On = "nope" },
		"no secret":           func(r *Rule) { r.Secret = "" },
		"bad webhook":         func(r *Rule) { r.Webhook = "ftp://x" },
		"rate over 1":         func(r *Rule) { r.On, r.Threshold = FailureRate, 2 },
		"score over 100":      func(r *Rule) { r.Threshold = 101 },
		"threshold not taken": func(r *Rule) { r.On, r.Threshold = Poisoning, 1 },
		"negative":            func(r *Rule) { r.Threshold = -1 },
		"window too long":     func(r *Rule) { r.Window = 8 * 24 * time.Hour },
	} {
		r := ok
		mod(&r)
		if err := r.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSecretFromEnv(t *testing.T) {
	r := Rule{ID: "x", SecretEnv: "HOOK_SECRET"}
	if _, err := r.signingSecret(func(string) string { return "" }); err == nil {
		t.Error("an unset secret variable was accepted")
	}
	if s, err := r.signingSecret(func(k string) string { return map[string]string{"HOOK_SECRET": "v"}[k] }); err != nil || s != "v" {
		t.Errorf("secret = %q, %v", s, err)
	}
}

func TestRemovedRuleForgotten(t *testing.T) {
	st := State{Fired: map[string]time.Time{"al_gone\x00x": t0, "al_kept\x00x": t0}}
	Evaluate(&st, []Rule{{ID: "al_kept", On: NewServer}}, nil, nil)
	if _, ok := st.Fired["al_gone\x00x"]; ok || len(st.Fired) != 1 {
		t.Errorf("fired = %v, want only the live rule's", st.Fired)
	}
}
