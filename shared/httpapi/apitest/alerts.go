package apitest

import (
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// AlertsScenario exercises the team alerts routes with a tenant of its
// own: rules made, listed (never with their secret) and deleted, hostile
// bodies refused with 400, an ingest-only key refused, per-event rules
// fired by an ingest and listed by GET /api/alerts page by page, and the
// scheduled run answering. Delivery itself is tested in shared/postgres
// with a real webhook receiver.
func AlertsScenario(t *testing.T, do Doer, adminToken string) {
	t.Helper()
	team := CreateTenant(t, do, adminToken, "alerting")
	const secret = "s3cret-never-shown"
	a := do(t, Request{Method: "POST", Path: "/api/alerts/rules", Token: team.APIKey,
		Body: []byte(`{"on":"new_server","window":"10m","webhook":"http://127.0.0.1:9/hook","secret":"` + secret + `"}`)})
	if a.Status != 201 || strings.Contains(string(a.Body), secret) {
		t.Fatalf("create rule: %d %s", a.Status, a.Body)
	}
	var rule backend.AlertRule
	a.Decode(t, &rule)
	if rule.ID == "" || rule.On != "new_server" || rule.Window != "10m0s" {
		t.Errorf("created rule = %+v", rule)
	}
	a = do(t, Request{Method: "GET", Path: "/api/alerts/rules", Token: team.APIKey})
	var rules struct {
		Rules []backend.AlertRule `json:"rules"`
	}
	a.Decode(t, &rules)
	if a.Status != 200 || len(rules.Rules) != 1 || rules.Rules[0].ID != rule.ID || strings.Contains(string(a.Body), secret) {
		t.Errorf("list rules: %d %s", a.Status, a.Body)
	}

	for _, c := range []struct{ name, body string }{
		{"empty", ``},
		{"not an object", `[1]`},
		{"unknown kind", `{"on":"everything","webhook":"https://x.example","secret":"s"}`},
		{"misspelt field", `{"on":"high_risk","treshold":90,"webhook":"https://x.example","secret":"s"}`},
		{"negative threshold", `{"on":"high_risk","threshold":-1,"webhook":"https://x.example","secret":"s"}`},
		{"rate over 1", `{"on":"failure_rate","threshold":2,"webhook":"https://x.example","secret":"s"}`},
		{"threshold not taken", `{"on":"poisoning","threshold":3,"webhook":"https://x.example","secret":"s"}`},
		{"threshold a string", `{"on":"high_risk","threshold":"90","webhook":"https://x.example","secret":"s"}`},
		{"huge threshold", `{"on":"latency_p95","threshold":1e308,"webhook":"https://x.example","secret":"s"}`},
		{"bad window", `{"on":"poisoning","window":"soon","webhook":"https://x.example","secret":"s"}`},
		{"window too short", `{"on":"poisoning","window":"1s","webhook":"https://x.example","secret":"s"}`},
		{"window too long", `{"on":"poisoning","window":"9000h","webhook":"https://x.example","secret":"s"}`},
		{"negative window", `{"on":"poisoning","window":"-5m","webhook":"https://x.example","secret":"s"}`},
		{"no webhook", `{"on":"poisoning","secret":"s"}`},
		{"file webhook", `{"on":"poisoning","webhook":"file:///etc/passwd","secret":"s"}`},
		{"no secret", `{"on":"poisoning","webhook":"https://x.example"}`},
		{"huge secret", `{"on":"poisoning","webhook":"https://x.example","secret":"` + strings.Repeat("x", backend.MaxSecretBytes+1) + `"}`},
		{"trailing data", `{"on":"poisoning","webhook":"https://x.example","secret":"s"} {}`},
		{"nul in kind", `{"on":"poison\u0000ing","webhook":"https://x.example","secret":"s"}`},
	} {
		a := do(t, Request{Method: "POST", Path: "/api/alerts/rules", Token: team.APIKey, Body: []byte(c.body)})
		if a.Status != 400 || a.ErrorCode(t) != "invalid" {
			t.Errorf("%s: %d %s, want 400 invalid", c.name, a.Status, a.Body)
		}
	}
	ingestOnly := CreateKey(t, do, adminToken, team.TenantID, []byte(`{"scopes":["ingest"]}`))
	for _, r := range []Request{
		{Method: "GET", Path: "/api/alerts/rules"},
		{Method: "POST", Path: "/api/alerts/rules", Body: []byte(`{"on":"poisoning","webhook":"https://x.example","secret":"s"}`)},
		{Method: "DELETE", Path: "/api/alerts/rules/" + rule.ID},
		{Method: "GET", Path: "/api/alerts"},
	} {
		r.Token = ingestOnly.APIKey
		if a := do(t, r); a.Status != 403 {
			t.Errorf("%s %s with an ingest key: %d %s, want 403", r.Method, r.Path, a.Status, a.Body)
		}
	}
	if a := do(t, Request{Method: "GET", Path: "/api/alerts"}); a.Status != 401 {
		t.Errorf("alerts without a key: %d %s", a.Status, a.Body)
	}

	// SampleBatch starts an hour before its base: events after the rule.
	batch := SampleBatch(time.Now().Add(2*time.Hour), 1)
	if a := do(t, Request{Method: "POST", Path: "/api/events/batch", Token: team.APIKey, Body: MustJSON(t, batch)}); a.Status != 200 {
		t.Fatalf("batch: %d %s", a.Status, a.Body)
	}
	var page backend.AlertPage
	a = do(t, Request{Method: "GET", Path: "/api/alerts?limit=1", Token: team.APIKey})
	a.Decode(t, &page)
	if a.Status != 200 || len(page.Alerts) != 1 || page.NextCursor == "" || page.Alerts[0].On != "new_server" || page.Alerts[0].RuleID != rule.ID {
		t.Fatalf("alerts page 1: %d %s", a.Status, a.Body)
	}
	first := page.Alerts[0].Server
	a = do(t, Request{Method: "GET", Path: "/api/alerts?limit=1&cursor=" + page.NextCursor, Token: team.APIKey})
	page = backend.AlertPage{}
	a.Decode(t, &page)
	if a.Status != 200 || len(page.Alerts) != 1 || page.Alerts[0].Server == first || page.NextCursor != "" {
		t.Errorf("alerts page 2: %d %s", a.Status, a.Body)
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=1000", "limit=x", "cursor=abc", "cursor=-5"} {
		if a := do(t, Request{Method: "GET", Path: "/api/alerts?" + q, Token: team.APIKey}); a.Status != 400 {
			t.Errorf("alerts?%s: %d %s, want 400", q, a.Status, a.Body)
		}
	}
	// The other tenant's key sees none of them.
	if a := do(t, Request{Method: "GET", Path: "/api/alerts", Token: CreateTenant(t, do, adminToken, "quiet").APIKey}); a.Status != 200 || !strings.Contains(string(a.Body), `"alerts":[]`) {
		t.Errorf("another tenant's alerts: %d %s", a.Status, a.Body)
	}

	var run backend.AlertRun
	a = do(t, Request{Method: "POST", Path: "/api/admin/alerts/evaluate", Token: adminToken})
	a.Decode(t, &run)
	if a.Status != 200 || run.Tenants < 1 || run.Delivered+run.Failed+run.GivenUp < 2 {
		t.Errorf("evaluate: %d %s", a.Status, a.Body)
	}
	if a := do(t, Request{Method: "POST", Path: "/api/admin/alerts/evaluate", Token: team.APIKey}); a.Status != 401 {
		t.Errorf("evaluate with an API key: %d %s, want 401", a.Status, a.Body)
	}

	for _, c := range []struct {
		path   string
		status int
	}{
		{"/api/alerts/rules/" + rule.ID, 200},
		{"/api/alerts/rules/" + rule.ID, 404},
		{"/api/alerts/rules/not-a-uuid", 404},
		{"/api/alerts/rules/%27%3B--", 404},
	} {
		if a := do(t, Request{Method: "DELETE", Path: c.path, Token: team.APIKey}); a.Status != c.status {
			t.Errorf("DELETE %s: %d %s, want %d", c.path, a.Status, a.Body, c.status)
		}
	}
	do(t, Request{Method: "POST", Path: "/api/alerts/rules", Token: team.APIKey,
		Body: []byte(`{"on":"high_risk","threshold":90,"webhook":"https://x.example","secret":"s"}`)})
	a = do(t, Request{Method: "DELETE", Path: "/api/alerts/rules", Token: team.APIKey})
	if a.Status != 200 || !strings.Contains(string(a.Body), `"deleted":1`) {
		t.Errorf("DELETE all rules: %d %s", a.Status, a.Body)
	}
}
