package httpapi_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// clock is a settable time for the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestReadRateLimit(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	clk := &clock{t: time.Now().UTC().Truncate(time.Minute).Add(40 * time.Second)}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: db, AdminToken: httpapi.StaticToken(adminToken), Now: clk.Now}))
	t.Cleanup(srv.Close)
	do := apitest.HTTP(srv.URL)
	tenant := apitest.CreateTenant(t, do, adminToken, "limited")
	other := apitest.CreateKey(t, do, adminToken, tenant.TenantID, nil)
	a := do(t, apitest.Request{Method: "PATCH", Path: "/api/admin/tenants/" + tenant.TenantID, Token: adminToken,
		Body: []byte(`{"settings":{"read_requests_per_minute":2}}`)})
	if a.Status != 200 {
		t.Fatalf("set limit: %d %s", a.Status, a.Body)
	}
	read := func(key string) apitest.Answer {
		t.Helper()
		return do(t, apitest.Request{Method: "GET", Path: "/api/activity?limit=1", Token: key})
	}
	for i, want := range []string{"1", "0"} {
		a := read(tenant.APIKey)
		if a.Status != 200 || a.Header.Get("RateLimit-Limit") != "2" || a.Header.Get("RateLimit-Remaining") != want || a.Header.Get("RateLimit-Reset") != "20" {
			t.Fatalf("read %d: %d %v", i+1, a.Status, a.Header)
		}
	}
	a = read(tenant.APIKey)
	if a.Status != 429 || a.ErrorCode(t) != "rate_limited" || a.Header.Get("Retry-After") != "20" || !strings.Contains(string(a.Body), "2 read requests") {
		t.Fatalf("third read: %d %s Retry-After %q, want 429 rate_limited, Retry-After 20", a.Status, a.Body, a.Header.Get("Retry-After"))
	}
	// Another key of the tenant has its own window; ingest is not a read.
	if a := read(other.APIKey); a.Status != 200 {
		t.Errorf("other key: %d %s", a.Status, a.Body)
	}
	ev := apitest.MustJSON(t, apitest.SampleBatch(clk.Now(), 1).Events[0])
	if a := do(t, apitest.Request{Method: "POST", Path: "/api/events", Token: tenant.APIKey, Body: ev}); a.Status != 200 || a.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("ingest while reads are limited: %d %s %v", a.Status, a.Body, a.Header)
	}
	clk.Set(clk.Now().Add(20 * time.Second))
	if a := read(tenant.APIKey); a.Status != 200 || a.Header.Get("RateLimit-Remaining") != "1" {
		t.Errorf("next minute: %d %s %v", a.Status, a.Body, a.Header)
	}
	// 0 lifts the limit.
	do(t, apitest.Request{Method: "PATCH", Path: "/api/admin/tenants/" + tenant.TenantID, Token: adminToken,
		Body: []byte(`{"settings":{"read_requests_per_minute":0}}`)})
	for range 3 {
		if a := read(tenant.APIKey); a.Status != 200 || a.Header.Get("RateLimit-Limit") != "" {
			t.Fatalf("no limit: %d %v", a.Status, a.Header)
		}
	}
}

func TestAdminRoutesRefuseBadInput(t *testing.T) {
	do, _ := newAPI(t)
	tenant := apitest.CreateTenant(t, do, adminToken, "admin-input")
	unknown := "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10"
	path := "/api/admin/tenants/" + tenant.TenantID
	cases := []struct {
		method, path, body string
		status             int
		code               backend.Code
		msg                string
	}{
		{"GET", "/api/admin/tenants?limit=0", "", 400, backend.EINVALID, "limit"},
		{"GET", "/api/admin/tenants?limit=1001", "", 400, backend.EINVALID, "limit"},
		{"GET", "/api/admin/tenants?cursor=abc", "", 400, backend.EINVALID, "cursor"},
		{"GET", "/api/admin/tenants/" + unknown, "", 404, backend.ENOTFOUND, "tenant"},
		{"GET", "/api/admin/tenants/acme", "", 404, backend.ENOTFOUND, "UUID"},
		{"PUT", path, "", 405, backend.EMETHOD, "PATCH"},
		{"PATCH", path, "", 400, backend.EINVALID, "empty"},
		{"PATCH", path, `{}`, 400, backend.EINVALID, "nothing to change"},
		{"PATCH", path, `{"settings":{}}`, 400, backend.EINVALID, "nothing to change"},
		{"PATCH", path, `{"nmae":"x"}`, 400, backend.EINVALID, `unknown field \"nmae\"`},
		{"PATCH", path, `{"settings":{"event_retention":7}}`, 400, backend.EINVALID, `unknown field \"event_retention\"`},
		{"PATCH", path, `{"name":"  "}`, 400, backend.EINVALID, "name"},
		{"PATCH", path, `{"settings":{"event_retention_days":"30"}}`, 400, backend.EINVALID, "event_retention_days"},
		{"PATCH", path, `{"settings":{"event_retention_days":0}}`, 400, backend.EINVALID, "event_retention_days: want 1-3660"},
		{"PATCH", path, `{"settings":{"rollup_retention_days":4000}}`, 400, backend.EINVALID, "rollup_retention_days"},
		{"PATCH", path, `{"settings":{"ingest_events_per_minute":-1}}`, 400, backend.EINVALID, "ingest_events_per_minute"},
		{"PATCH", path, `{"settings":{"read_requests_per_minute":1.5}}`, 400, backend.EINVALID, "read_requests_per_minute"},
		{"PATCH", path, `[1]`, 400, backend.EINVALID, "object"},
		{"PATCH", "/api/admin/tenants/" + unknown, `{"name":"x"}`, 404, backend.ENOTFOUND, "tenant"},
		{"DELETE", "/api/admin/tenants/x", "", 404, backend.ENOTFOUND, "UUID"},
		{"GET", "/api/admin/tenants/" + unknown + "/keys", "", 404, backend.ENOTFOUND, "tenant"},
		{"POST", path + "/keys", `{"scopes":["ingest","write"]}`, 400, backend.EINVALID, `unknown scope \"write\"`},
		{"POST", path + "/keys", `{"scopes":"read"}`, 400, backend.EINVALID, "scopes"},
		{"POST", "/api/admin/tenants", `{"name":"x","scopes":[]}`, 400, backend.EINVALID, "at least one"},
		{"POST", "/api/admin/tenants", `{"name":"x","scope":["read"]}`, 400, backend.EINVALID, `unknown field \"scope\"`},
		{"POST", path + "/keys", `{"scope":["read"]}`, 400, backend.EINVALID, `unknown field \"scope\"`},
		{"POST", path + "/keys", `{"scopes":["read"]} x`, 400, backend.EINVALID, "after the JSON"},
		{"DELETE", "/api/admin/keys/nope", "", 404, backend.ENOTFOUND, "key"},
		{"GET", "/api/admin/audit?tenant=acme", "", 400, backend.EINVALID, "tenant"},
		{"GET", "/api/admin/audit?cursor=x", "", 400, backend.EINVALID, "cursor"},
		{"POST", "/api/admin/audit", "", 405, backend.EMETHOD, "GET"},
	}
	for _, c := range cases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		a := do(t, apitest.Request{Method: c.method, Path: c.path, Token: adminToken, Body: body})
		if a.Status != c.status || a.ErrorCode(t) != string(c.code) || !strings.Contains(string(a.Body), c.msg) {
			t.Errorf("%s %s %s: %d %s, want %d %s mentioning %q", c.method, c.path, c.body, a.Status, a.Body, c.status, c.code, c.msg)
		}
	}
	// None of it changed the tenant.
	var got backend.Tenant
	a := do(t, apitest.Request{Method: "GET", Path: path, Token: adminToken})
	a.Decode(t, &got)
	if got.Name != "admin-input" || got.Settings.EventRetentionDays != 30 || got.Settings.IngestEventsPerMinute != 100000 {
		t.Errorf("tenant after refused changes: %+v", got)
	}
	// Every admin route needs the token.
	for _, r := range [][2]string{{"GET", "/api/admin/tenants"}, {"GET", path}, {"PATCH", path}, {"DELETE", path},
		{"GET", path + "/keys"}, {"GET", "/api/admin/audit"}} {
		if a := do(t, apitest.Request{Method: r[0], Path: r[1], Token: tenant.APIKey}); a.Status != 401 {
			t.Errorf("%s %s with an API key: %d %s", r[0], r[1], a.Status, a.Body)
		}
	}
}

// TestAuditRecordsWhoAndWhere checks one entry's fields over a real
// loopback connection.
func TestAuditRecordsWhoAndWhere(t *testing.T) {
	do, _ := newAPI(t)
	tenant := apitest.CreateTenant(t, do, adminToken, "who")
	var page backend.AuditPage
	a := do(t, apitest.Request{Method: "GET", Path: "/api/admin/audit?limit=1&tenant=" + tenant.TenantID, Token: adminToken})
	a.Decode(t, &page)
	if a.Status != 200 || len(page.Entries) != 1 || page.NextCursor != "" {
		t.Fatalf("audit: %d %s", a.Status, a.Body)
	}
	e := page.Entries[0]
	if e.Action != "tenant.create" || e.Admin != backend.Fingerprint(adminToken) || len(e.Admin) != 12 ||
		e.Address != "127.0.0.1" || e.KeyID != tenant.KeyID || time.Since(e.At) > time.Minute {
		t.Errorf("entry = %+v", e)
	}
}

// limitedStore is fakeStore with a read limit whose counter fails.
type limitedStore struct {
	fakeStore
	countErr error
}

func (l *limitedStore) Authenticate(ctx context.Context, raw string) (backend.Key, error) {
	k, err := l.fakeStore.Authenticate(ctx, raw)
	k.ReadLimit = 10
	return k, err
}

func (l *limitedStore) CountRead(context.Context, backend.Key, time.Time) (backend.ReadWindow, error) {
	return backend.ReadWindow{}, l.countErr
}

// TestReadCountFails checks that a read whose count cannot be kept is
// refused, not let through uncounted.
func TestReadCountFails(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{backend.Errorf(backend.EUNAVAILABLE, "database unavailable"), 503, "unavailable"},
		{errors.New("pq: something at 10.0.0.7"), 500, "internal"},
	} {
		srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: &limitedStore{countErr: tc.err}}))
		a := apitest.HTTP(srv.URL)(t, apitest.Request{Method: "GET", Path: "/api/stats", Token: "good"})
		srv.Close()
		if a.Status != tc.status || a.ErrorCode(t) != tc.code || strings.Contains(string(a.Body), "10.0.0.7") {
			t.Errorf("count fails with %v: %d %s, want %d %s", tc.err, a.Status, a.Body, tc.status, tc.code)
		}
	}
}
