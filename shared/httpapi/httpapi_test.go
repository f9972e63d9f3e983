package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

const adminToken = "test-admin-token"

// newAPI serves the whole API over a fresh database.
func newAPI(t *testing.T) (apitest.Doer, *postgres.DB) {
	t.Helper()
	do, db, _ := newAPIDSN(t)
	return do, db
}

// newAPIDSN is newAPI that also returns the database's DSN, for tests
// that look at its tables (pgtest.MustOpenPool).
func newAPIDSN(t *testing.T) (apitest.Doer, *postgres.DB, string) {
	t.Helper()
	db, dsn := pgtest.MustOpenDBDSN(t)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: db, AdminToken: httpapi.StaticToken(adminToken)}))
	t.Cleanup(srv.Close)
	return apitest.HTTP(srv.URL), db, dsn
}

func TestScenario(t *testing.T) {
	do, _ := newAPI(t)
	apitest.Scenario(t, do, adminToken)
}

// countEvents counts what the tenant has stored.
func countEvents(t *testing.T, do apitest.Doer, key string) int {
	t.Helper()
	var page activity.Page
	a := do(t, apitest.Request{Method: "GET", Path: "/api/activity?limit=1000", Token: key})
	if a.Status != 200 {
		t.Fatalf("activity: %d %s", a.Status, a.Body)
	}
	a.Decode(t, &page)
	return len(page.Events)
}

func TestBadInputStoresNothing(t *testing.T) {
	do, _ := newAPI(t)
	tenant := apitest.CreateTenant(t, do, adminToken, "bad-input")
	good := apitest.SampleBatch(time.Now(), 2)
	goodJSON := apitest.MustJSON(t, good)

	mutate := func(f func(b *event.Batch)) []byte {
		var b event.Batch
		if err := json.Unmarshal(goodJSON, &b); err != nil {
			t.Fatal(err)
		}
		f(&b)
		return apitest.MustJSON(t, b)
	}
	replaceLast := func(old, new string) []byte {
		s := string(goodJSON)
		i := strings.LastIndex(s, old)
		if i < 0 {
			t.Fatalf("%q not in the sample", old)
		}
		return []byte(s[:i] + new + s[i+len(old):])
	}
	tooMany := event.Batch{}
	for range backend.MaxBatchEvents + 1 {
		tooMany.Events = append(tooMany.Events, good.Events[0])
	}
	// A gzip bomb: a small body that inflates past MaxBodyBytes.
	bomb := apitest.Gzip(t, bytes.Repeat([]byte(" "), 4*backend.MaxBodyBytes))
	if len(bomb) > backend.MaxBodyBytes/100 {
		t.Fatalf("bomb is %d bytes, not small", len(bomb))
	}
	oversized := append(bytes.Repeat([]byte(" "), backend.MaxBodyBytes), goodJSON...)

	cases := []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		status int
		code   backend.Code
		msg    string
	}{
		{"truncated", "/api/events/batch", goodJSON[:len(goodJSON)/2], nil, 400, backend.EINVALID, "truncated"},
		{"not json", "/api/events/batch", []byte("hello"), nil, 400, backend.EINVALID, "not valid JSON"},
		{"empty body", "/api/events/batch", nil, nil, 400, backend.EINVALID, "empty"},
		{"array", "/api/events/batch", []byte(`[1,2]`), nil, 400, backend.EINVALID, "JSON object"},
		{"trailing data", "/api/events/batch", append(append([]byte{}, goodJSON...), `{}`...), nil, 400, backend.EINVALID, "after the JSON"},
		{"wrong type", "/api/events/batch", replaceLast(`"seq":12`, `"seq":"12"`), nil, 400, backend.EINVALID, "events.seq"},
		{"unknown kind", "/api/events/batch", mutate(func(b *event.Batch) { b.Events[11].Kind = "gossip" }), nil, 400, backend.EINVALID, "events[11].kind"},
		{"bad id", "/api/events/batch", mutate(func(b *event.Batch) { b.Events[5].ID = "not-a-uuid" }), nil, 400, backend.EINVALID, "events[5].id"},
		{"bad timestamp", "/api/events/batch", replaceLast(`"ts":"`, `"ts":"yesterday`), nil, 400, backend.EINVALID, "RFC 3339"},
		{"future timestamp", "/api/events/batch", mutate(func(b *event.Batch) { b.Events[3].TS = time.Now().Add(72 * time.Hour) }), nil, 400, backend.EINVALID, "events[3].ts"},
		{"bad session", "/api/events/batch", mutate(func(b *event.Batch) { b.Sessions[1].ID = "x" }), nil, 400, backend.EINVALID, "sessions[1].id"},
		{"no events", "/api/events/batch", []byte(`{"evnets":[]}`), nil, 400, backend.EINVALID, "events\\\" and no"},
		{"too many events", "/api/events/batch", apitest.MustJSON(t, tooMany), nil, 413, backend.ETOOLARGE, "at most 5000"},
		{"body too large", "/api/events/batch", oversized, nil, 413, backend.ETOOLARGE, "larger than"},
		{"gzip bomb", "/api/events/batch", bomb, map[string]string{"Content-Encoding": "gzip"}, 413, backend.ETOOLARGE, "after gzip"},
		{"bad gzip", "/api/events/batch", goodJSON, map[string]string{"Content-Encoding": "gzip"}, 400, backend.EINVALID, "gzip"},
		{"truncated gzip", "/api/events/batch", apitest.Gzip(t, goodJSON)[:200], map[string]string{"Content-Encoding": "gzip"}, 400, backend.EINVALID, "gzip"},
		{"brotli", "/api/events/batch", goodJSON, map[string]string{"Content-Encoding": "br"}, 415, backend.EUNSUPPORTED, "Content-Encoding"},
		{"form", "/api/events/batch", goodJSON, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, backend.EUNSUPPORTED, "Content-Type"},
		{"single: batch body", "/api/events", goodJSON, nil, 400, backend.EINVALID, "id: must be a UUID"},
		{"single: bad direction", "/api/events", replaceOne(t, apitest.MustJSON(t, good.Events[0]), `"client_to_server"`, `"sideways"`), nil, 400, backend.EINVALID, "direction"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, apitest.Request{Method: "POST", Path: c.path, Token: tenant.APIKey, Body: c.body, Header: c.header})
			if a.Status != c.status || a.ErrorCode(t) != string(c.code) {
				t.Fatalf("got %d %s, want %d %s", a.Status, a.Body, c.status, c.code)
			}
			if !strings.Contains(string(a.Body), c.msg) {
				t.Errorf("message %s does not mention %q", a.Body, c.msg)
			}
		})
	}
	if n := countEvents(t, do, tenant.APIKey); n != 0 {
		t.Fatalf("bad input stored %d events", n)
	}
	// The good batch still goes in whole, and unknown fields are ignored.
	withExtra := bytes.Replace(goodJSON, []byte(`{"sessions"`), []byte(`{"future_field":{"x":1},"sessions"`), 1)
	a := do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: tenant.APIKey, Body: withExtra})
	if a.Status != 200 {
		t.Fatalf("good batch: %d %s", a.Status, a.Body)
	}
	if n := countEvents(t, do, tenant.APIKey); n != len(good.Events) {
		t.Fatalf("stored %d events, want %d", n, len(good.Events))
	}
}

func replaceOne(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not in %s", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func TestRoutesAndAuth(t *testing.T) {
	do, _ := newAPI(t)
	tenant := apitest.CreateTenant(t, do, adminToken, "routes")
	cases := []struct {
		method, path, token string
		status              int
		code                backend.Code
	}{
		{"GET", "/nope", "", 404, backend.ENOTFOUND},
		{"GET", "/api/events/", tenant.APIKey, 404, backend.ENOTFOUND},
		{"GET", "/api/events/batch", tenant.APIKey, 405, backend.EMETHOD},
		{"POST", "/health", "", 405, backend.EMETHOD},
		{"DELETE", "/api/admin/tenants", adminToken, 405, backend.EMETHOD},
		{"GET", "/api/activity", "", 401, backend.EUNAUTHORIZED},
		{"GET", "/api/activity", "km_wrong", 401, backend.EUNAUTHORIZED},
		{"GET", "/api/stats", adminToken, 401, backend.EUNAUTHORIZED},
		{"POST", "/api/events", "", 401, backend.EUNAUTHORIZED},
		{"GET", "/api/activity?kind=gossip", tenant.APIKey, 400, backend.EINVALID},
		{"GET", "/api/activity?cursor=zzz", tenant.APIKey, 400, backend.EINVALID},
		{"GET", "/api/activity?limit=0", tenant.APIKey, 400, backend.EINVALID},
		{"GET", "/api/stats?since=tomorrow", tenant.APIKey, 400, backend.EINVALID},
		{"POST", "/api/admin/tenants", "", 401, backend.EUNAUTHORIZED},
		{"POST", "/api/admin/tenants", tenant.APIKey, 401, backend.EUNAUTHORIZED},
		{"POST", "/api/admin/tenants", adminToken + "x", 401, backend.EUNAUTHORIZED},
		{"POST", "/api/admin/tenants/0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10/keys", adminToken, 404, backend.ENOTFOUND},
		{"POST", "/api/admin/tenants/acme/keys", adminToken, 404, backend.ENOTFOUND},
		{"DELETE", "/api/admin/keys/0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", adminToken, 404, backend.ENOTFOUND},
	}
	for _, c := range cases {
		a := do(t, apitest.Request{Method: c.method, Path: c.path, Token: c.token})
		if a.Status != c.status || a.ErrorCode(t) != string(c.code) {
			t.Errorf("%s %s: got %d %s, want %d %s", c.method, c.path, a.Status, a.Body, c.status, c.code)
		}
		if ct := a.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
		}
		if c.status == 401 && a.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", c.method, c.path)
		}
		if c.status == 405 && a.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
	for _, body := range []string{`{"name":""}`, `{"name":"   "}`, `{"name":42}`, `{}`, `{"name":"` + strings.Repeat("n", 300) + `"}`} {
		a := do(t, apitest.Request{Method: "POST", Path: "/api/admin/tenants", Token: adminToken, Body: []byte(body)})
		if a.Status != 400 || a.ErrorCode(t) != "invalid" {
			t.Errorf("create tenant %s: %d %s", body, a.Status, a.Body)
		}
	}
	// Scheme is case-insensitive.
	a := do(t, apitest.Request{Method: "GET", Path: "/api/activity", Header: map[string]string{"Authorization": "bearer " + tenant.APIKey}})
	if a.Status != 200 {
		t.Errorf("lower-case bearer: %d %s", a.Status, a.Body)
	}
}

// fakeStore answers from memory; it is only for tests of the HTTP shape
// that do not need a database (the admin switch and fuzzing).
type fakeStore struct {
	backend.Store // nil: unused methods panic
	mu            sync.Mutex
	ingested      int
	pingErr       error
	activity      []activity.Query
	stats         []stats.Query
}

func (f *fakeStore) Activity(_ context.Context, _ string, q activity.Query) (activity.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.activity = append(f.activity, q)
	return activity.Page{}, nil
}

func (f *fakeStore) Stats(_ context.Context, _ string, q stats.Query) (stats.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = append(f.stats, q)
	return stats.Stats{Since: q.Since, Until: q.Until}, nil
}

func (f *fakeStore) Ping(context.Context) error { return f.pingErr }
func (f *fakeStore) Authenticate(_ context.Context, key string) (backend.Key, error) {
	if key != "good" {
		return backend.Key{}, backend.Errorf(backend.EUNAUTHORIZED, "unknown key")
	}
	return backend.Key{ID: "k1", TenantID: "t1", Scopes: backend.DefaultScopes()}, nil
}
func (f *fakeStore) Ingest(_ context.Context, _ string, b event.Batch) (backend.IngestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ingested += len(b.Events)
	return backend.IngestResult{Accepted: len(b.Events)}, nil
}

func TestAdminSwitch(t *testing.T) {
	cases := []struct {
		name   string
		token  httpapi.TokenFunc
		status int
		code   string
	}{
		{"not configured", nil, 404, "not_found"},
		{"empty", httpapi.StaticToken(""), 404, "not_found"},
		{"secret unreadable", func(context.Context) (string, error) { return "", errors.New("secrets manager down") }, 503, "unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: &fakeStore{}, AdminToken: c.token}))
			defer srv.Close()
			a := apitest.HTTP(srv.URL)(t, apitest.Request{Method: "POST", Path: "/api/admin/tenants", Token: "whatever", Body: []byte(`{"name":"x"}`)})
			if a.Status != c.status || a.ErrorCode(t) != c.code {
				t.Fatalf("got %d %s", a.Status, a.Body)
			}
			if strings.Contains(string(a.Body), "secrets manager down") {
				t.Errorf("internal detail leaked: %s", a.Body)
			}
		})
	}
}

// TestInternalErrorsHidden checks that an error without a code answers a
// bare 500.
func TestInternalErrorsHidden(t *testing.T) {
	store := &panicky{fakeStore: fakeStore{}}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: store}))
	defer srv.Close()
	do := apitest.HTTP(srv.URL)
	for _, path := range []string{"/api/activity", "/api/stats"} {
		a := do(t, apitest.Request{Method: "GET", Path: path, Token: "good"})
		if a.Status != 500 || string(a.Body) != `{"error":{"code":"internal","message":"internal error"}}`+"\n" {
			t.Errorf("%s: %d %s", path, a.Status, a.Body)
		}
	}
}

type panicky struct{ fakeStore }

func (p *panicky) Activity(context.Context, string, activity.Query) (activity.Page, error) {
	return activity.Page{}, fmt.Errorf("pq: relation \"secret_table\" at host 10.0.0.7")
}

func (p *panicky) Stats(context.Context, string, stats.Query) (stats.Stats, error) {
	panic("stats exploded")
}

// TestHealthDownAndRecovery cuts the database off behind a TCP relay and
// lets it back.
func TestHealthDownAndRecovery(t *testing.T) {
	pgURL := testenv.DatabaseURL(t)
	relay := testenv.NewTCPRelay(t, testenv.DatabaseAddr(t, pgURL), true)
	ctx := context.Background()
	db, err := postgres.Open(ctx, testenv.DSNVia(t, pgURL, relay.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: db}))
	defer srv.Close()
	do := apitest.HTTP(srv.URL)
	check := func(status int, body string) {
		t.Helper()
		a := do(t, apitest.Request{Method: "GET", Path: "/health"})
		if a.Status != status || !strings.HasPrefix(string(a.Body), body) {
			t.Fatalf("health: %d %s, want %d %s", a.Status, a.Body, status, body)
		}
	}
	check(200, `{"status":"ok","database":"ok"}`)
	relay.SetUp(false)
	check(503, `{"status":"unavailable","database":"unreachable","error":{"code":"unavailable"`)
	check(503, `{"status":"unavailable"`)
	relay.SetUp(true)
	check(200, `{"status":"ok","database":"ok"}`)
}
