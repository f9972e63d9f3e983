package httpapi_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// While one tenant floods the API with slow filtered reads (a dozen at a
// time, filters that match nothing), another tenant's first page is
// always answered, /health keeps saying the database is fine, and the
// flooding tenant gets 200 or 503 with Retry-After, never a 500. The
// other tenant's latencies are logged: a rough figure on a shared machine,
// not a floor.
func TestOneTenantCannotStarveAnother(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: db, AdminToken: httpapi.StaticToken(adminToken)}))
	defer srv.Close()
	do := apitest.HTTP(srv.URL)
	flood := apitest.CreateTenant(t, do, adminToken, "flood")
	other := apitest.CreateTenant(t, do, adminToken, "other")

	// A history for the flooding tenant that its filters walk in vain.
	ctx := context.Background()
	floodID, err := db.Authenticate(ctx, flood.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for round := range 8 {
		b := apitest.SampleBatch(now, backend.MaxBatchEvents/6)
		for i := range b.Events {
			b.Events[i].TS = b.Events[i].TS.Add(-time.Duration(round) * time.Hour)
		}
		if _, err := db.Ingest(ctx, floodID.TenantID, b); err != nil {
			t.Fatal(err)
		}
	}
	b := apitest.SampleBatch(now, 10)
	if a := do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: other.APIKey, Body: apitest.MustJSON(t, b)}); a.Status != 200 {
		t.Fatalf("ingest: %d %s", a.Status, a.Body)
	}

	stop := make(chan struct{})
	var floodOK, floodBusy atomic.Int64
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := do(t, apitest.Request{Method: "GET", Path: "/api/activity?limit=1000&tool=no-such-tool", Token: flood.APIKey})
				switch {
				case a.Status == 200:
					floodOK.Add(1)
				case a.Status == 503 && a.Header.Get("Retry-After") != "":
					floodBusy.Add(1)
				default:
					t.Errorf("flooding tenant got %d %s", a.Status, a.Body)
					return
				}
			}
		})
	}
	var lat []time.Duration
	for range 60 {
		t0 := time.Now()
		a := do(t, apitest.Request{Method: "GET", Path: "/api/activity?limit=50", Token: other.APIKey})
		lat = append(lat, time.Since(t0))
		if a.Status != 200 {
			t.Errorf("other tenant's first page: %d %s", a.Status, a.Body)
			continue
		}
		var page activity.Page
		a.Decode(t, &page)
		if len(page.Events) != 50 {
			t.Errorf("other tenant's first page holds %d events", len(page.Events))
		}
		if h := do(t, apitest.Request{Method: "GET", Path: "/health"}); h.Status != 200 {
			t.Errorf("health while flooded: %d %s", h.Status, h.Body)
		}
	}
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	t.Logf("other tenant's first page while flooded: p50 %s, p99 %s, max %s (%d requests); flood: %d answered, %d told 503",
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], len(lat), floodOK.Load(), floodBusy.Load())
}
