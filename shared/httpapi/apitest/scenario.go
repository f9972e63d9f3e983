package apitest

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Rounds is how many rounds of SampleBatch the scenario posts.
const Rounds = 20

// Tenant is a tenant made through the admin API.
type Tenant struct {
	TenantID string `json:"tenant_id"`
	KeyID    string `json:"key_id"`
	APIKey   string `json:"api_key"`
}

// CreateTenant creates a tenant through POST /api/admin/tenants.
func CreateTenant(tb testing.TB, do Doer, adminToken, name string) Tenant {
	tb.Helper()
	a := do(tb, Request{Method: "POST", Path: "/api/admin/tenants", Token: adminToken, Body: []byte(`{"name":"` + name + `"}`)})
	if a.Status != 201 {
		tb.Fatalf("create tenant: %d %s", a.Status, a.Body)
	}
	var t Tenant
	a.Decode(tb, &t)
	if t.TenantID == "" || t.APIKey == "" || t.KeyID == "" {
		tb.Fatalf("create tenant answered %s", a.Body)
	}
	return t
}

// ExportAll reads GET /api/export?v page by page, following the
// Kilometers-Next-Cursor header, and returns every event exported.
func ExportAll(tb testing.TB, do Doer, key string, v url.Values) []event.Event {
	tb.Helper()
	var out []event.Event
	for pages := 0; ; pages++ {
		if pages > 10000 {
			tb.Fatal("export pages never end")
		}
		a := do(tb, Request{Method: "GET", Path: "/api/export?" + v.Encode(), Token: key})
		if a.Status != 200 {
			tb.Fatalf("export page %d: %d %s", pages, a.Status, a.Body)
		}
		if ct := a.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			tb.Fatalf("export Content-Type %q, want application/x-ndjson", ct)
		}
		dec := json.NewDecoder(bytes.NewReader(a.Body))
		for dec.More() {
			var e event.Event
			if err := dec.Decode(&e); err != nil {
				tb.Fatalf("export page %d: %v", pages, err)
			}
			out = append(out, e)
		}
		next := a.Header.Get("Kilometers-Next-Cursor")
		if next == "" {
			return out
		}
		v = maps.Clone(v)
		v.Set("cursor", next)
	}
}

// Scenario runs the end-to-end story against an API with every route:
// health, a tenant made with the admin token, a batch posted plain and
// again gzipped (all duplicates), activity read page by page and with
// filters, stats checked number by number, another tenant that sees
// nothing, a second key that stops working once revoked, then keys
// scoped to ingest or read alone, and every other admin route (AdminScenario).
func Scenario(t *testing.T, do Doer, adminToken string) {
	t.Helper()
	now := time.Now().UTC()

	a := do(t, Request{Method: "GET", Path: "/health"})
	if a.Status != 200 || string(a.Body) != `{"status":"ok","database":"ok"}`+"\n" {
		t.Fatalf("health: %d %s", a.Status, a.Body)
	}

	acme := CreateTenant(t, do, adminToken, "acme")
	batch := SampleBatch(now, Rounds)
	n := len(batch.Events)
	body := MustJSON(t, batch)

	var res backend.IngestResult
	a = do(t, Request{Method: "POST", Path: "/api/events/batch", Token: acme.APIKey, Body: body})
	if a.Status != 200 {
		t.Fatalf("batch: %d %s", a.Status, a.Body)
	}
	a.Decode(t, &res)
	if res != (backend.IngestResult{Accepted: n}) {
		t.Fatalf("first batch: got %+v, want %d accepted", res, n)
	}
	a = do(t, Request{Method: "POST", Path: "/api/events/batch", Token: acme.APIKey, Body: Gzip(t, body),
		Header: map[string]string{"Content-Encoding": "gzip"}})
	a.Decode(t, &res)
	if a.Status != 200 || res != (backend.IngestResult{Duplicates: n}) {
		t.Fatalf("gzipped repeat: %d %s, want %d duplicates", a.Status, a.Body, n)
	}
	a = do(t, Request{Method: "POST", Path: "/api/events", Token: acme.APIKey, Body: MustJSON(t, batch.Events[0])})
	a.Decode(t, &res)
	if a.Status != 200 || res != (backend.IngestResult{Duplicates: 1}) {
		t.Fatalf("single repeat: %d %s, want 1 duplicate", a.Status, a.Body)
	}

	// Activity, page by page: every event once, newest first.
	want := slices.Clone(batch.Events)
	slices.SortFunc(want, func(x, y event.Event) int {
		if activity.Less(&x, &y) {
			return -1
		}
		return 1
	})
	var got []event.Event
	cursor, pages := "", 0
	for {
		v := url.Values{"limit": {"25"}, "since": {"3h"}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var page activity.Page
		a = do(t, Request{Method: "GET", Path: "/api/activity?" + v.Encode(), Token: acme.APIKey})
		if a.Status != 200 {
			t.Fatalf("activity page %d: %d %s", pages, a.Status, a.Body)
		}
		a.Decode(t, &page)
		pages++
		got = append(got, page.Events...)
		if page.NextCursor == "" {
			break
		}
		if pages > n {
			t.Fatal("activity pages never end")
		}
		cursor = page.NextCursor
	}
	if len(got) != n || pages != (n+24)/25 {
		t.Fatalf("activity: %d events in %d pages, want %d in %d", len(got), pages, n, (n+24)/25)
	}
	for i := range got {
		if got[i].ID != want[i].ID || !got[i].TS.Equal(want[i].TS) || got[i].Kind != want[i].Kind || got[i].Tool != want[i].Tool {
			t.Fatalf("activity[%d] = %s %s %s, want %s %s %s", i, got[i].ID, got[i].TS, got[i].Kind, want[i].ID, want[i].TS, want[i].Kind)
		}
	}
	// Export, page by page: the same events as activity, one a line.
	exported := ExportAll(t, do, acme.APIKey, url.Values{"limit": {"40"}, "since": {"3h"}})
	if len(exported) != n {
		t.Fatalf("export: %d events, want %d", len(exported), n)
	}
	for i := range exported {
		if exported[i].ID != want[i].ID || !exported[i].TS.Equal(want[i].TS) || exported[i].Kind != want[i].Kind {
			t.Fatalf("export[%d] = %s %s, want %s %s", i, exported[i].ID, exported[i].TS, want[i].ID, want[i].TS)
		}
	}
	if e := ExportAll(t, do, acme.APIKey, url.Values{"kind": {"error"}}); len(e) != Rounds {
		t.Errorf("export?kind=error: %d events, want %d", len(e), Rounds)
	}

	for query, count := range map[string]int{
		"kind=error":                      Rounds,
		"tool=read_file":                  2 * Rounds,
		"session=" + batch.Sessions[1].ID: 2 * Rounds,
		"server=fs&method=tools%2Flist":   Rounds,
		"kind=notification&limit=1000":    Rounds,
		"until=" + url.QueryEscape(want[n-1].TS.Format(time.RFC3339Nano)): 0,
	} {
		var page activity.Page
		a = do(t, Request{Method: "GET", Path: "/api/activity?limit=1000&" + query, Token: acme.APIKey})
		if a.Status != 200 {
			t.Fatalf("activity?%s: %d %s", query, a.Status, a.Body)
		}
		a.Decode(t, &page)
		if len(page.Events) != count {
			t.Errorf("activity?%s: %d events, want %d", query, len(page.Events), count)
		}
	}

	// Failed calls, sessions with their counts, and one call by either half.
	var failed activity.Page
	a = do(t, Request{Method: "GET", Path: "/api/activity?failed=true&limit=1000", Token: acme.APIKey})
	a.Decode(t, &failed)
	if a.Status != 200 || len(failed.Events) != Rounds || failed.Events[0].ErrorMessage == "" {
		t.Errorf("activity?failed=true: %d, %d events, want %d with their messages", a.Status, len(failed.Events), Rounds)
	}
	checkSessions(t, do, acme.APIKey, batch)
	checkCalls(t, do, acme.APIKey, batch)

	// Stats over a window holding the whole batch.
	q := stats.Query{Since: now.Add(-2 * time.Hour), Until: now}.Align(now)
	var st stats.Stats
	a = do(t, Request{Method: "GET", Path: "/api/stats?" + q.Values().Encode(), Token: acme.APIKey})
	if a.Status != 200 {
		t.Fatalf("stats: %d %s", a.Status, a.Body)
	}
	a.Decode(t, &st)
	tot := st.Totals
	if tot.Events != int64(n) || tot.Requests != 3*Rounds || tot.Errors != Rounds || tot.Sessions != 2 ||
		tot.Bytes != int64(100*n) || math.Abs(tot.CostUSD-0.0001*float64(n)) > 1e-9 || math.Abs(tot.ErrorRate-0.333333) > 1e-9 {
		t.Errorf("stats totals = %+v", tot)
	}
	if st.Latency.Count != 2*Rounds {
		t.Errorf("latency count = %d, want %d", st.Latency.Count, 2*Rounds)
	}
	if st.RiskLevels != (stats.RiskLevels{High: Rounds, Low: int64(n - Rounds)}) {
		t.Errorf("risk levels = %+v", st.RiskLevels)
	}
	if len(st.Tools) != 2 {
		t.Fatalf("tools = %+v", st.Tools)
	}
	for _, tool := range st.Tools {
		switch tool.Tool {
		case "read_file":
			if tool.Calls != Rounds || tool.Errors != 0 || math.Abs(tool.P50-10) > 1 {
				t.Errorf("read_file = %+v", tool)
			}
		case "run_shell":
			if tool.Calls != Rounds || tool.Errors != Rounds || math.Abs(tool.P50-30) > 1 {
				t.Errorf("run_shell = %+v", tool)
			}
		default:
			t.Errorf("unexpected tool %+v", tool)
		}
	}
	// The whole answer equals the reference aggregator's.
	agg := stats.NewAggregator(q.Since, q.Until, "")
	for i := range batch.Events {
		agg.Add(&batch.Events[i])
	}
	ref := agg.Result()
	if string(MustJSON(t, ref.Totals)) != string(MustJSON(t, st.Totals)) ||
		string(MustJSON(t, ref.Tools)) != string(MustJSON(t, st.Tools)) ||
		string(MustJSON(t, ref.Methods)) != string(MustJSON(t, st.Methods)) ||
		string(MustJSON(t, ref.Series)) != string(MustJSON(t, st.Series)) {
		t.Errorf("stats differ from the reference aggregator:\n got %s\nwant %s", MustJSON(t, st), MustJSON(t, ref))
	}

	// Another tenant sees none of it.
	other := CreateTenant(t, do, adminToken, "other")
	var page activity.Page
	a = do(t, Request{Method: "GET", Path: "/api/activity", Token: other.APIKey})
	a.Decode(t, &page)
	if a.Status != 200 || len(page.Events) != 0 {
		t.Errorf("other tenant's activity: %d %s", a.Status, a.Body)
	}

	var sessions activity.SessionPage
	a = do(t, Request{Method: "GET", Path: "/api/sessions", Token: other.APIKey})
	a.Decode(t, &sessions)
	if a.Status != 200 || len(sessions.Sessions) != 0 {
		t.Errorf("other tenant's sessions: %d %s", a.Status, a.Body)
	}
	a = do(t, Request{Method: "GET", Path: "/api/events/" + batch.Events[0].ID, Token: other.APIKey})
	if a.Status != 404 || a.ErrorCode(t) != "not_found" {
		t.Errorf("other tenant's call: %d %s", a.Status, a.Body)
	}

	// A second key works until revoked; the first keeps working.
	var key struct {
		KeyID    string `json:"key_id"`
		TenantID string `json:"tenant_id"`
		APIKey   string `json:"api_key"`
	}
	a = do(t, Request{Method: "POST", Path: "/api/admin/tenants/" + acme.TenantID + "/keys", Token: adminToken})
	if a.Status != 201 {
		t.Fatalf("create key: %d %s", a.Status, a.Body)
	}
	a.Decode(t, &key)
	if key.TenantID != acme.TenantID || key.KeyID == "" || key.APIKey == "" || key.APIKey == acme.APIKey {
		t.Fatalf("create key answered %s", a.Body)
	}
	if a = do(t, Request{Method: "GET", Path: "/api/activity?limit=1", Token: key.APIKey}); a.Status != 200 {
		t.Fatalf("new key: %d %s", a.Status, a.Body)
	}
	if a = do(t, Request{Method: "DELETE", Path: "/api/admin/keys/" + key.KeyID, Token: adminToken}); a.Status != 200 {
		t.Fatalf("revoke: %d %s", a.Status, a.Body)
	}
	if a = do(t, Request{Method: "GET", Path: "/api/stats", Token: key.APIKey}); a.Status != 401 || a.ErrorCode(t) != "unauthorized" {
		t.Errorf("revoked key: %d %s", a.Status, a.Body)
	}
	if a = do(t, Request{Method: "GET", Path: "/api/stats", Token: acme.APIKey}); a.Status != 200 {
		t.Errorf("first key after revoking the second: %d %s", a.Status, a.Body)
	}

	AdminScenario(t, do, adminToken, acme, other, key.KeyID)
	AlertsScenario(t, do, adminToken)
}

// Key is a key made through POST /api/admin/tenants/{id}/keys.
type Key struct {
	KeyID    string          `json:"key_id"`
	TenantID string          `json:"tenant_id"`
	Prefix   string          `json:"prefix"`
	Scopes   []backend.Scope `json:"scopes"`
	APIKey   string          `json:"api_key"`
}

// CreateKey makes a key for tenantID with body (nil: no body, the default
// scopes).
func CreateKey(tb testing.TB, do Doer, adminToken, tenantID string, body []byte) Key {
	tb.Helper()
	a := do(tb, Request{Method: "POST", Path: "/api/admin/tenants/" + tenantID + "/keys", Token: adminToken, Body: body})
	if a.Status != 201 {
		tb.Fatalf("create key %s: %d %s", body, a.Status, a.Body)
	}
	var k Key
	a.Decode(tb, &k)
	if k.KeyID == "" || k.APIKey == "" || k.TenantID != tenantID {
		tb.Fatalf("create key answered %s", a.Body)
	}
	return k
}

// AdminScenario checks key scopes and the admin routes on tenant acme
// (which has stored the sample batch, and whose key revoked was revoked)
// and tenant other, which it deletes.
func AdminScenario(t *testing.T, do Doer, adminToken string, acme, other Tenant, revoked string) {
	t.Helper()
	expect := func(r Request, status int, code string) Answer {
		t.Helper()
		a := do(t, r)
		if a.Status != status || (code != "" && a.ErrorCode(t) != code) {
			t.Fatalf("%s %s: %d %s, want %d %s", r.Method, r.Path, a.Status, a.Body, status, code)
		}
		return a
	}
	one := MustJSON(t, SampleBatch(time.Now(), 1).Events[0])

	// Scopes: a read-only key cannot post, an ingest-only key cannot read.
	reader := CreateKey(t, do, adminToken, acme.TenantID, []byte(`{"scopes":["read"]}`))
	writer := CreateKey(t, do, adminToken, acme.TenantID, []byte(`{"scopes":["ingest"]}`))
	if !slices.Equal(reader.Scopes, []backend.Scope{backend.ScopeRead}) || !slices.Equal(writer.Scopes, []backend.Scope{backend.ScopeIngest}) {
		t.Fatalf("scoped keys: %+v %+v", reader, writer)
	}
	expect(Request{Method: "POST", Path: "/api/events", Token: reader.APIKey, Body: one}, 403, "forbidden")
	expect(Request{Method: "POST", Path: "/api/events/batch", Token: reader.APIKey, Body: MustJSON(t, SampleBatch(time.Now(), 1))}, 403, "forbidden")
	expect(Request{Method: "GET", Path: "/api/activity?limit=1", Token: reader.APIKey}, 200, "")
	expect(Request{Method: "GET", Path: "/api/stats", Token: reader.APIKey}, 200, "")
	expect(Request{Method: "GET", Path: "/api/activity", Token: writer.APIKey}, 403, "forbidden")
	expect(Request{Method: "GET", Path: "/api/export", Token: writer.APIKey}, 403, "forbidden")
	expect(Request{Method: "GET", Path: "/api/export?limit=1", Token: reader.APIKey}, 200, "")
	expect(Request{Method: "GET", Path: "/api/stats", Token: writer.APIKey}, 403, "forbidden")
	expect(Request{Method: "POST", Path: "/api/events", Token: writer.APIKey, Body: one}, 200, "")
	expect(Request{Method: "POST", Path: "/api/admin/tenants/" + acme.TenantID + "/keys", Token: adminToken, Body: []byte(`{"scopes":["admin"]}`)}, 400, "invalid")
	expect(Request{Method: "POST", Path: "/api/admin/tenants/" + acme.TenantID + "/keys", Token: adminToken, Body: []byte(`{"scopes":[]}`)}, 400, "invalid")

	// The maintenance job: admin only, answers what it did (a database
	// fresh from its migrations has every partition already), audited.
	expect(Request{Method: "POST", Path: "/api/admin/maintenance", Token: acme.APIKey}, 401, "unauthorized")
	expect(Request{Method: "GET", Path: "/api/admin/maintenance", Token: adminToken}, 405, "bad_method")
	var maint backend.MaintenanceResult
	expect(Request{Method: "POST", Path: "/api/admin/maintenance", Token: adminToken}, 200, "").Decode(t, &maint)
	if maint.Created == nil || maint.Dropped == nil || maint.DurationMS <= 0 {
		t.Errorf("maintenance answered %+v", maint)
	}

	// Tenants: list, one, rename and settings.
	var page backend.TenantPage
	expect(Request{Method: "GET", Path: "/api/admin/tenants", Token: adminToken}, 200, "").Decode(t, &page)
	ids := map[string]bool{}
	for _, tn := range page.Tenants {
		ids[tn.ID] = true
	}
	if !ids[acme.TenantID] || !ids[other.TenantID] {
		t.Errorf("tenant list %+v lacks acme or other", page)
	}
	var tn backend.Tenant
	expect(Request{Method: "GET", Path: "/api/admin/tenants/" + acme.TenantID, Token: adminToken}, 200, "").Decode(t, &tn)
	if tn.ID != acme.TenantID || tn.Name != "acme" || tn.Settings.EventRetentionDays != 30 || tn.Settings.ReadRequestsPerMinute != 600 {
		t.Errorf("GET tenant = %+v", tn)
	}
	expect(Request{Method: "PATCH", Path: "/api/admin/tenants/" + acme.TenantID, Token: adminToken,
		Body: []byte(`{"name":"acme corp","settings":{"rollup_retention_days":800,"ingest_events_per_day":5000000}}`)}, 200, "").Decode(t, &tn)
	if tn.Name != "acme corp" || tn.Settings.RollupRetentionDays != 800 || tn.Settings.IngestEventsPerDay != 5000000 || tn.Settings.EventRetentionDays != 30 {
		t.Errorf("PATCH tenant = %+v", tn)
	}
	expect(Request{Method: "PATCH", Path: "/api/admin/tenants/" + acme.TenantID, Token: adminToken, Body: []byte(`{"settings":{"retention":7}}`)}, 400, "invalid")

	// Keys: every key with its scopes, the revoked one marked.
	var keys struct {
		Keys []backend.APIKey `json:"keys"`
	}
	expect(Request{Method: "GET", Path: "/api/admin/tenants/" + acme.TenantID + "/keys", Token: adminToken}, 200, "").Decode(t, &keys)
	byID := map[string]backend.APIKey{}
	for _, k := range keys.Keys {
		byID[k.ID] = k
	}
	if len(keys.Keys) != 4 || byID[acme.KeyID].RevokedAt != nil || byID[acme.KeyID].LastUsedAt == nil || byID[revoked].RevokedAt == nil ||
		!slices.Equal(byID[reader.KeyID].Scopes, []backend.Scope{backend.ScopeRead}) || byID[writer.KeyID].Prefix != writer.Prefix {
		t.Errorf("keys of acme = %s", MustJSON(t, keys))
	}
	// A tenant's first key, known by the id its creation answered, can be
	// revoked like any other.
	expect(Request{Method: "GET", Path: "/api/stats", Token: other.APIKey}, 200, "")
	expect(Request{Method: "DELETE", Path: "/api/admin/keys/" + other.KeyID, Token: adminToken}, 200, "")
	expect(Request{Method: "GET", Path: "/api/stats", Token: other.APIKey}, 401, "unauthorized")

	// Delete a tenant with its data.
	expect(Request{Method: "DELETE", Path: "/api/admin/tenants/" + other.TenantID, Token: adminToken}, 200, "")
	expect(Request{Method: "GET", Path: "/api/admin/tenants/" + other.TenantID, Token: adminToken}, 404, "not_found")
	expect(Request{Method: "GET", Path: "/api/activity", Token: other.APIKey}, 401, "unauthorized")
	expect(Request{Method: "DELETE", Path: "/api/admin/tenants/" + other.TenantID, Token: adminToken}, 404, "not_found")

	// The audit trail names every action, the credential by fingerprint.
	var audit backend.AuditPage
	expect(Request{Method: "GET", Path: "/api/admin/audit?tenant=" + acme.TenantID + "&limit=1000", Token: adminToken}, 200, "").Decode(t, &audit)
	seen := map[string]bool{}
	for _, e := range audit.Entries {
		seen[e.Action] = true
		if e.Admin != backend.Fingerprint(adminToken) || e.Address == "" || e.TenantID != acme.TenantID {
			t.Errorf("audit entry %+v: want the admin's fingerprint, an address and the tenant", e)
		}
		if strings.Contains(string(MustJSON(t, e)), adminToken) {
			t.Errorf("audit entry shows the admin token: %+v", e)
		}
	}
	for _, action := range []string{backend.ActionTenantCreate, backend.ActionTenantGet, backend.ActionTenantUpdate, backend.ActionKeyCreate, backend.ActionKeyList, backend.ActionKeyRevoke} {
		if !seen[action] {
			t.Errorf("audit of acme lacks %s: %s", action, MustJSON(t, audit))
		}
	}
	expect(Request{Method: "GET", Path: "/api/admin/audit?tenant=" + other.TenantID, Token: adminToken}, 200, "").Decode(t, &audit)
	if len(audit.Entries) == 0 || audit.Entries[0].Action != backend.ActionTenantDelete {
		t.Errorf("audit of the deleted tenant: %s", MustJSON(t, audit))
	}
}

// checkSessions reads GET /api/sessions a session a page: both sessions of
// the batch, newest start first (they share one, so by id), each with its
// tool calls and failed replies counted.
func checkSessions(t *testing.T, do Doer, key string, batch event.Batch) {
	t.Helper()
	want := slices.Clone(batch.Sessions)
	slices.SortFunc(want, func(x, y event.Session) int {
		if activity.SessionLess(&x, &y) {
			return -1
		}
		return 1
	})
	var got []activity.SessionRow
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("session pages never end")
		}
		v := url.Values{"limit": {"1"}, "since": {"3h"}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var page activity.SessionPage
		a := do(t, Request{Method: "GET", Path: "/api/sessions?" + v.Encode(), Token: key})
		if a.Status != 200 {
			t.Fatalf("sessions: %d %s", a.Status, a.Body)
		}
		a.Decode(t, &page)
		got = append(got, page.Sessions...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("sessions: got %d, want %d", len(got), len(want))
	}
	for i := range got {
		// fs makes read_file calls that succeed, shell run_shell calls
		// that all fail.
		wantFailed := int64(0)
		if want[i].Server == "shell" {
			wantFailed = Rounds
		}
		if got[i].ID != want[i].ID || got[i].Server != want[i].Server || got[i].Calls != Rounds || got[i].Failed != wantFailed {
			t.Errorf("sessions[%d] = %s %s calls %d failed %d, want %s %s calls %d failed %d", i,
				got[i].ID, got[i].Server, got[i].Calls, got[i].Failed, want[i].ID, want[i].Server, Rounds, wantFailed)
		}
	}
	for path, status := range map[string]int{
		"/api/sessions?server=shell":  200,
		"/api/sessions?limit=0":       400,
		"/api/sessions?cursor=nope":   400,
		"/api/sessions?since=someday": 400,
	} {
		if a := do(t, Request{Method: "GET", Path: path, Token: key}); a.Status != status {
			t.Errorf("%s: %d %s, want %d", path, a.Status, a.Body, status)
		}
	}
}

// checkCalls reads GET /api/events/{id} by either half of a failed call,
// and for ids that are not there.
func checkCalls(t *testing.T, do Doer, key string, batch event.Batch) {
	t.Helper()
	req, reply := batch.Events[2], batch.Events[3] // run_shell 0 and its error
	for _, id := range []string{req.ID, reply.ID} {
		var call activity.Call
		a := do(t, Request{Method: "GET", Path: "/api/events/" + id, Token: key})
		if a.Status != 200 {
			t.Fatalf("call %s: %d %s", id, a.Status, a.Body)
		}
		a.Decode(t, &call)
		if call.Request == nil || call.Response == nil || call.Request.ID != req.ID || call.Response.ID != reply.ID ||
			call.Response.ErrorMessage != reply.ErrorMessage {
			t.Errorf("call by %s = %s", id, a.Body)
		}
	}
	var call activity.Call
	note := batch.Events[5] // a notification: no reply
	a := do(t, Request{Method: "GET", Path: "/api/events/" + note.ID, Token: key})
	a.Decode(t, &call)
	if a.Status != 200 || call.Request == nil || call.Request.ID != note.ID || call.Response != nil {
		t.Errorf("call by a notification: %d %s", a.Status, a.Body)
	}
	for _, id := range []string{"0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", "not-an-id"} {
		if a := do(t, Request{Method: "GET", Path: "/api/events/" + id, Token: key}); a.Status != 404 || a.ErrorCode(t) != "not_found" {
			t.Errorf("call %s: %d %s, want 404", id, a.Status, a.Body)
		}
	}
	if a := do(t, Request{Method: "GET", Path: "/api/events/" + req.ID}); a.Status != 401 {
		t.Errorf("call without a key: %d %s, want 401", a.Status, a.Body)
	}
}
