package postgres_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/alerts"
	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// webhook is a real HTTP receiver: it checks every signature against the
// secrets it knows and answers the statuses queued in fail first.
type webhook struct {
	t       *testing.T
	mu      sync.Mutex
	secrets map[string]string // rule id -> secret
	got     []alerts.Alert
	posts   int
	fail    []int
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.posts++
	if len(h.fail) > 0 {
		code := h.fail[0]
		h.fail = h.fail[1:]
		w.WriteHeader(code)
		return
	}
	var a alerts.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		h.t.Errorf("webhook body: %v", err)
	}
	secret, ok := h.secrets[a.RuleID]
	if want := alerts.Sign(secret, body); !ok || !hmac.Equal([]byte(r.Header.Get(alerts.SignatureHeader)), []byte(want)) {
		h.t.Errorf("alert %s: signature %q, want %q", a.ID, r.Header.Get(alerts.SignatureHeader), want)
	}
	h.got = append(h.got, a)
}

func (h *webhook) alerts() []alerts.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alerts.Alert(nil), h.got...)
}

func newRule(t *testing.T, db *postgres.DB, tenant string, h *webhook, url string, r backend.NewAlertRule) backend.AlertRule {
	t.Helper()
	r.Webhook, r.Secret = url, "secret-"+string(r.On)
	got, err := db.CreateAlertRule(context.Background(), tenant, r)
	if err != nil {
		t.Fatalf("CreateAlertRule(%s): %v", r.On, err)
	}
	h.mu.Lock()
	h.secrets[got.ID] = r.Secret
	h.mu.Unlock()
	return got
}

// alertBatch is a session whose tools/list reply shows a poisoned tool and
// a changed one, a high-risk call, and failed slow calls.
func alertBatch(t testing.TB, ts time.Time, server string) event.Batch {
	sess := newID(t)
	b := event.Batch{Sessions: []event.Session{{ID: sess, Server: server, StartedAt: ts}}}
	seq := int64(0)
	add := func(e event.Event) {
		seq++
		e.ID, e.SessionID, e.Server, e.TS, e.Seq, e.Size = newID(t), sess, server, ts.Add(time.Duration(seq)*time.Millisecond), seq, 10
		b.Events = append(b.Events, e)
	}
	add(event.Event{Direction: event.ServerToClient, Kind: event.KindResponse, RPCID: "1", Method: "tools/list",
		Risk:    &event.Risk{Score: 90, Level: event.LevelHigh, Reasons: []string{analysis.ReasonToolPoisoning + "evil", analysis.ReasonDefinitionChanged + "shifty"}},
		Payload: json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"evil"},{"name":"shifty"}]}}`)})
	yes := true
	for i := range 4 {
		id := fmt.Sprint(10 + i)
		add(event.Event{Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: id, Method: "tools/call", Tool: "evil",
			Risk: &event.Risk{Score: 80, Level: event.LevelHigh, Reasons: []string{"sensitive_path"}}})
		ms := 2000.0
		add(event.Event{Direction: event.ServerToClient, Kind: event.KindResponse, RPCID: id, Method: "tools/call", Tool: "evil",
			LatencyMS: &ms, IsError: &yes})
	}
	return b
}

func TestTeamAlertsFireOnceSignedAndQuiet(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "alerts")
	other := mustTenant(t, db, "other")
	h := &webhook{t: t, secrets: map[string]string{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	rules := map[alerts.Kind]backend.AlertRule{}
	for _, k := range alerts.Kinds {
		rules[k] = newRule(t, db, tenant, h, srv.URL, backend.NewAlertRule{On: k, Window: "1m"})
	}
	// The other tenant's rule sees none of this tenant's events.
	newRule(t, db, other, h, srv.URL, backend.NewAlertRule{On: alerts.NewServer, Window: "1m"})

	ts := time.Now().UTC().Truncate(time.Minute).Add(time.Minute + 10*time.Second)
	ingest(t, db, tenant, alertBatch(t, ts, "fs"))
	// The same events again, and more of the same in the same window: quiet.
	ingest(t, db, tenant, alertBatch(t, ts.Add(5*time.Second), "fs"))

	now := ts.Truncate(time.Minute).Add(time.Minute + time.Second)
	run, err := db.RunAlerts(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if run.Fired != 2 || run.Delivered != 8 || run.Failed != 0 {
		t.Errorf("run = %+v, want 2 window alerts fired and 8 delivered", run)
	}
	got := map[string]alerts.Alert{}
	for _, a := range h.alerts() {
		if _, dup := got[a.RuleID+" "+a.Condition]; dup {
			t.Errorf("alert of rule %s about %s delivered twice", a.On, a.Condition)
		}
		got[a.RuleID+" "+a.Condition] = a
	}
	want := map[alerts.Kind][]string{
		alerts.Poisoning: {"fs/evil"}, alerts.DefinitionChanged: {"fs/shifty"}, alerts.HighRisk: {"fs/evil"},
		alerts.NewServer: {"fs"}, alerts.NewTool: {"fs/evil", "fs/shifty"},
		alerts.FailureRate: {"fs/evil"}, alerts.LatencyP95: {"fs/evil"},
	}
	n := 0
	for k, conds := range want {
		for _, c := range conds {
			n++
			a, ok := got[rules[k].ID+" "+c]
			if !ok {
				t.Errorf("rule %s did not fire about %s", k, c)
				continue
			}
			if a.On != k || a.Text == "" || a.ID == "" || a.Server != "fs" {
				t.Errorf("alert %+v", a)
			}
		}
	}
	if len(got) != n {
		t.Errorf("%d alerts delivered, want %d: %+v", len(got), n, got)
	}
	if a := got[rules[alerts.FailureRate].ID+" fs/evil"]; a.Value != 1 || a.Calls != 8 || a.Threshold != 0.5 {
		t.Errorf("failure rate alert = %+v", a)
	}
	if a := got[rules[alerts.LatencyP95].ID+" fs/evil"]; a.Value != 2000 || a.Threshold != 1000 {
		t.Errorf("p95 alert = %+v", a)
	}

	// A later run in the same window fires and sends nothing.
	run, err = db.RunAlerts(ctx, now.Add(10*time.Second))
	if err != nil || run.Fired != 0 || run.Delivered != 0 {
		t.Errorf("second run = %+v, %v; want quiet", run, err)
	}
	if len(h.alerts()) != n {
		t.Errorf("%d alerts after a second run, want %d", len(h.alerts()), n)
	}
	// The next window fires again for the rules that judge windows and
	// per-event rules, never for what is no longer new.
	ingest(t, db, tenant, alertBatch(t, ts.Add(time.Minute), "fs"))
	run, err = db.RunAlerts(ctx, now.Add(time.Minute))
	if err != nil || run.Fired != 2 || run.Delivered != 5 {
		t.Errorf("next window's run = %+v, %v; want 2 fired, 5 delivered (poisoning, changed, high risk, failure, p95)", run, err)
	}

	page, err := db.FiredAlerts(ctx, tenant, backend.AlertQuery{Limit: 4})
	if err != nil || len(page.Alerts) != 4 || page.NextCursor == "" || page.Alerts[0].DeliveredAt == nil {
		t.Fatalf("FiredAlerts = %+v, %v", page, err)
	}
	total := len(page.Alerts)
	for page.NextCursor != "" {
		page, err = db.FiredAlerts(ctx, tenant, backend.AlertQuery{Limit: 4, Cursor: page.NextCursor})
		if err != nil {
			t.Fatal(err)
		}
		total += len(page.Alerts)
	}
	if total != n+5 {
		t.Errorf("%d fired alerts listed, want %d", total, n+5)
	}
	if page, err := db.FiredAlerts(ctx, other, backend.AlertQuery{}); err != nil || len(page.Alerts) != 0 {
		t.Errorf("other tenant's alerts = %+v, %v", page, err)
	}
	if _, err := db.FiredAlerts(ctx, tenant, backend.AlertQuery{Cursor: "x'; DROP TABLE events"}); backend.ErrorCode(err) != backend.EINVALID {
		t.Errorf("hostile cursor: %v", err)
	}
}

// Several processes ingest batches showing the same poisoned tool and the
// same new server at once: each alert fires, and is delivered, once.
func TestTeamAlertsFireOnceAcrossProcesses(t *testing.T) {
	db, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "concurrent")
	h := &webhook{t: t, secrets: map[string]string{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, k := range []alerts.Kind{alerts.Poisoning, alerts.NewServer, alerts.NewTool} {
		newRule(t, db, tenant, h, srv.URL, backend.NewAlertRule{On: k, Window: "1h"})
	}
	ts := time.Now().UTC().Add(time.Second)
	const procs = 6
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := postgres.Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			_, err = p.Ingest(ctx, tenant, alertBatch(t, ts.Add(time.Duration(i)*time.Millisecond), "fs"))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var runs sync.WaitGroup
	for range 3 {
		runs.Add(1)
		go func() {
			defer runs.Done()
			if _, err := db.RunAlerts(ctx, ts.Add(time.Second)); err != nil {
				t.Error(err)
			}
		}()
	}
	runs.Wait()
	// poisoning fs/evil, new_server fs, new_tool fs/evil and fs/shifty.
	if got := h.alerts(); len(got) != 4 {
		t.Errorf("%d alerts delivered, want 4: %+v", len(got), got)
	}
}

func TestTeamAlertsRetryOn5xx(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "retry")
	h := &webhook{t: t, secrets: map[string]string{}, fail: []int{500, 503}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	newRule(t, db, tenant, h, srv.URL, backend.NewAlertRule{On: alerts.NewServer})
	ts := time.Now().UTC().Add(time.Second)
	ingest(t, db, tenant, alertBatch(t, ts, "fs"))

	steps := []struct {
		at                time.Duration
		delivered, failed int
	}{
		{0, 0, 1},
		{postgres.AlertBackoff / 2, 0, 0}, // not due yet
		{postgres.AlertBackoff, 0, 1},
		{postgres.AlertBackoff + 2*postgres.AlertBackoff, 1, 0},
		{time.Hour, 0, 0},
	}
	for _, s := range steps {
		run, err := db.RunAlerts(ctx, ts.Add(s.at))
		if err != nil || run.Delivered != s.delivered || run.Failed != s.failed {
			t.Errorf("run at +%s = %+v, %v; want %d delivered, %d failed", s.at, run, err, s.delivered, s.failed)
		}
	}
	if h.posts != 3 || len(h.alerts()) != 1 {
		t.Errorf("%d posts, %d accepted; want 3 and 1", h.posts, len(h.alerts()))
	}
	page, err := db.FiredAlerts(ctx, tenant, backend.AlertQuery{})
	if err != nil || len(page.Alerts) != 1 || page.Alerts[0].DeliveredAt == nil || page.Alerts[0].LastError != "" {
		t.Errorf("FiredAlerts = %+v, %v", page, err)
	}
}

func TestTeamAlertsGiveUp(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "refused")
	h := &webhook{t: t, secrets: map[string]string{}, fail: []int{410}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	newRule(t, db, tenant, h, srv.URL, backend.NewAlertRule{On: alerts.NewServer})
	ts := time.Now().UTC().Add(time.Second)
	ingest(t, db, tenant, alertBatch(t, ts, "fs"))
	run, err := db.RunAlerts(ctx, ts)
	if err != nil || run.GivenUp != 1 {
		t.Fatalf("run = %+v, %v; want a refused alert given up", run, err)
	}
	if run, err := db.RunAlerts(ctx, ts.Add(time.Hour)); err != nil || run.Delivered+run.Failed+run.GivenUp != 0 {
		t.Errorf("run after giving up = %+v, %v", run, err)
	}
	page, err := db.FiredAlerts(ctx, tenant, backend.AlertQuery{})
	if err != nil || len(page.Alerts) != 1 || page.Alerts[0].DeliveredAt != nil || page.Alerts[0].LastError == "" {
		t.Errorf("FiredAlerts = %+v, %v", page, err)
	}
}

func TestAlertRules(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "rules")
	other := mustTenant(t, db, "other")
	r, err := db.CreateAlertRule(ctx, tenant, backend.NewAlertRule{On: alerts.HighRisk, Threshold: 80, Window: "10m", Webhook: "https://hooks.example/x", Secret: "s"})
	if err != nil || r.Threshold != 80 || r.Window != "10m0s" {
		t.Fatalf("CreateAlertRule = %+v, %v", r, err)
	}
	list, err := db.AlertRules(ctx, tenant)
	if err != nil || len(list) != 1 || list[0].ID != r.ID || list[0].Webhook != r.Webhook || list[0].Window != r.Window || !list[0].CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("AlertRules = %+v, %v; want [%+v]", list, err, r)
	}
	if err := db.DeleteAlertRule(ctx, other, r.ID); backend.ErrorCode(err) != backend.ENOTFOUND {
		t.Errorf("another tenant's rule: %v, want ENOTFOUND", err)
	}
	if err := db.DeleteAlertRule(ctx, tenant, "not-a-uuid"); backend.ErrorCode(err) != backend.ENOTFOUND {
		t.Errorf("bad id: %v", err)
	}
	if _, err := db.CreateAlertRule(ctx, tenant, backend.NewAlertRule{On: "nope", Webhook: "https://x", Secret: "s"}); backend.ErrorCode(err) != backend.EINVALID {
		t.Errorf("unknown kind: %v", err)
	}
	if err := db.DeleteAlertRule(ctx, tenant, r.ID); err != nil {
		t.Fatal(err)
	}
	for range backend.MaxAlertRules {
		if _, err := db.CreateAlertRule(ctx, tenant, backend.NewAlertRule{On: alerts.NewTool, Webhook: "https://x.example", Secret: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.CreateAlertRule(ctx, tenant, backend.NewAlertRule{On: alerts.NewTool, Webhook: "https://x.example", Secret: "s"}); backend.ErrorCode(err) != backend.EINVALID {
		t.Errorf("rule over the limit: %v", err)
	}
	if n, err := db.DeleteAlertRules(ctx, tenant); err != nil || n != backend.MaxAlertRules {
		t.Errorf("DeleteAlertRules = %d, %v", n, err)
	}
}

// A tools/list reply naming tools with NUL and broken UTF-8 (its payload
// is the client's), cleaned as the API cleans every batch, stores and
// fires like any other.
func TestTeamAlertsHostileToolNames(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "hostile")
	if _, err := db.CreateAlertRule(ctx, tenant, backend.NewAlertRule{On: alerts.NewTool, Webhook: "https://h.example", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	b := alertBatch(t, time.Now().UTC().Add(time.Second), "fs")
	b.Events[0].Payload = json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a\u0000b"},{"name":"\ud800"},{"name":"x"}]}}`)
	b.Events[0].Risk = nil
	b.Clean() // as the API does
	ingest(t, db, tenant, b)
	page, err := db.FiredAlerts(ctx, tenant, backend.AlertQuery{})
	if err != nil || len(page.Alerts) != 4 { // a\uFFFDb, \uFFFD, x, and evil from the calls
		t.Fatalf("FiredAlerts = %+v, %v", page, err)
	}
}

// A window rule judges the last two complete windows: a run that did not
// happen at the end of a window (a deploy, a late scheduler) is made up by
// the next, and a window older than that is left alone.
func TestTeamAlertsMissedRun(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "missed")
	h := &webhook{t: t, secrets: map[string]string{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	newRule(t, db, tenant, h, srv.URL, backend.NewAlertRule{On: alerts.FailureRate, Window: "1m"})
	w0 := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	ingest(t, db, tenant, alertBatch(t, w0.Add(10*time.Second), "fs"))
	ingest(t, db, tenant, alertBatch(t, w0.Add(3*time.Minute+10*time.Second), "gh"))
	// No run until two windows after the first batch's: it is judged.
	if run, err := db.RunAlerts(ctx, w0.Add(2*time.Minute+time.Second)); err != nil || run.Fired != 1 || run.Delivered != 1 {
		t.Errorf("late run = %+v, %v; want the skipped window judged", run, err)
	}
	// Three windows after the second batch's: too late, nothing fires.
	if run, err := db.RunAlerts(ctx, w0.Add(7*time.Minute)); err != nil || run.Fired != 0 {
		t.Errorf("run three windows late = %+v, %v; want nothing", run, err)
	}
	if got := h.alerts(); len(got) != 1 || got[0].Server != "fs" {
		t.Errorf("delivered %+v, want the fs window only", got)
	}
}

// A process learns of a rule another process created within ruleKindsTTL
// (5 s): its ingest builds conditions only for watched kinds, and reads
// them again once what it knows is that old. The process that created the
// rule knows at once.
func TestRuleKindsAcrossProcesses(t *testing.T) {
	db, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "kinds")
	other, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Now().UTC()
	other.SetClock(func() time.Time { return now })
	// The other process ingests once with no rule: it now knows of none.
	if _, err := other.Ingest(ctx, tenant, alertBatch(t, now, "before")); err != nil {
		t.Fatal(err)
	}
	h := &webhook{t: t, secrets: map[string]string{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	newRule(t, db, tenant, h, srv.URL, backend.NewAlertRule{On: alerts.Poisoning, Window: "1h"})
	fired := func() int {
		page, err := db.FiredAlerts(ctx, tenant, backend.AlertQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Alerts)
	}
	if _, err := other.Ingest(ctx, tenant, alertBatch(t, now.Add(time.Second), "stale")); err != nil {
		t.Fatal(err)
	}
	if n := fired(); n != 0 {
		t.Fatalf("%d alerts fired by a process that cannot know the rule yet", n)
	}
	now = now.Add(6 * time.Second)
	if _, err := other.Ingest(ctx, tenant, alertBatch(t, now, "fresh")); err != nil {
		t.Fatal(err)
	}
	if n := fired(); n != 1 {
		t.Errorf("%d alerts fired once the process read the rules again, want 1 (poisoning of fresh)", n)
	}
	// The process that creates a rule sees it at its next batch.
	newRule(t, db, tenant, h, srv.URL, backend.NewAlertRule{On: alerts.HighRisk, Threshold: 70, Window: "1h"})
	if _, err := db.Ingest(ctx, tenant, alertBatch(t, time.Now().UTC().Add(2*time.Second), "mine")); err != nil {
		t.Fatal(err)
	}
	if n := fired(); n < 3 {
		t.Errorf("%d alerts after the creating process ingested, want its poisoning and high-risk too", n)
	}
}

// The backend names the poisoned and changed tools in riskiest_tools as
// the local store does: the same events give the same list.
func TestStatsNameAlertedToolsLikeTheAggregator(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "riskiest")
	ts := time.Now().UTC().Add(-time.Hour)
	b := alertBatch(t, ts, "fs")
	ingest(t, db, tenant, b)
	q := stats.Query{Since: ts.Add(-time.Hour), Until: time.Now().UTC().Add(time.Minute)}.Align(time.Now())
	got, err := db.Stats(ctx, tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	agg := stats.NewAggregator(q.Since, q.Until, "")
	for i := range b.Events {
		agg.Add(&b.Events[i])
	}
	want := agg.Result().RiskiestTools
	if !reflect.DeepEqual(got.RiskiestTools, want) {
		t.Errorf("riskiest tools\n got %+v\nwant %+v", got.RiskiestTools, want)
	}
	var named []string
	for _, r := range got.RiskiestTools {
		if len(r.Reasons) > 0 {
			named = append(named, r.Tool+":"+strings.Join(r.Reasons, ","))
		}
	}
	if strings.Join(named, " ") != "evil:tool_poisoning shifty:definition_changed" {
		t.Errorf("alerted tools %v, want evil poisoned and shifty changed", named)
	}
}
