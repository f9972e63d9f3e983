package ship

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// A tenant over its ingest quota is answered 429 with Retry-After by the
// real API; the shipper leaves the events in the spool, sets nothing aside,
// and ships them once the quota's window has passed.
func TestQuotaKeepsEventsInTheSpool(t *testing.T) {
	db, dsn := pgtest.MustOpenDBDSN(t)
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 10, 5, 15, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(to time.Time) { mu.Lock(); now = to; mu.Unlock() }
	db.SetClock(clock)

	const admin = "quota-admin"
	api := httpapi.New(httpapi.Config{Store: db, AdminToken: httpapi.StaticToken(admin)})
	var retryAfter []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if rec.Code == http.StatusTooManyRequests {
			mu.Lock()
			retryAfter = append(retryAfter, rec.Header().Get("Retry-After"))
			mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	do := apitest.HTTP(srv.URL)
	tenant := apitest.CreateTenant(t, do, admin, "quota")
	if a := do(t, apitest.Request{Method: "PATCH", Path: "/api/admin/tenants/" + tenant.TenantID, Token: admin,
		Body: []byte(`{"settings":{"ingest_events_per_minute":10}}`)}); a.Status != 200 {
		t.Fatalf("settings: %d %s", a.Status, a.Body)
	}

	// The client honours Retry-After up to MaxRetryAfter: 1 ms here, so
	// the test does not wait the minute the API names.
	client := apiclient.New(srv.URL, tenant.APIKey, apiclient.Options{RetryMax: 2, RetryWaitMin: time.Millisecond,
		RetryWaitMax: time.Millisecond, MaxRetryAfter: time.Millisecond})
	sp := &fakeSpool{events: makeEvents(25, `{}`)}
	s := New(sp, client, Options{BatchSize: 10})

	r, err := s.Flush(context.Background())
	if err == nil || r.Accepted != 10 || sp.pending() != 15 || len(sp.setAside) != 0 {
		t.Fatalf("first minute: report %+v, err %v, pending %d, set aside %v", r, err, sp.pending(), sp.setAside)
	}
	if len(retryAfter) != 3 || retryAfter[0] != "45" {
		t.Errorf("429 answers with Retry-After %q, want 3 of 45", retryAfter)
	}

	advance(time.Date(2026, 11, 23, 10, 6, 0, 0, time.UTC))
	if r, err = s.Flush(context.Background()); err == nil || r.Accepted != 10 || sp.pending() != 5 {
		t.Fatalf("second minute: report %+v, err %v, pending %d", r, err, sp.pending())
	}
	advance(time.Date(2026, 11, 23, 10, 7, 0, 0, time.UTC))
	if r, err = s.Flush(context.Background()); err != nil || r.Accepted != 5 || sp.pending() != 0 || len(sp.setAside) != 0 {
		t.Fatalf("third minute: report %+v, err %v, pending %d, set aside %v", r, err, sp.pending(), sp.setAside)
	}
	var stored int
	if err := pgtest.MustOpenPool(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM events WHERE tenant_id = $1`, tenant.TenantID).Scan(&stored); err != nil || stored != 25 {
		t.Errorf("%d events stored (%v), want 25", stored, err)
	}
}
