package main

import (
	"context"
	"crypto/hmac"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/alerts"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// The server's alert timer drains the outbox: an alert fired by an ingest
// reaches a real webhook, signed, on the next tick (ticked by hand).
func TestLocalAlertTimer_Postgres(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	const token = "tok"
	m := NewMain(func(k string) string {
		return map[string]string{"DATABASE_URL": dsn, "KILOMETERS_ADMIN_TOKEN": token}[k]
	}, io.Discard)
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	m.Ticks, m.alertRuns = ticks, make(chan struct{})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	var mu sync.Mutex
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if got, want := r.Header.Get(alerts.SignatureHeader), alerts.Sign("hook-secret", b); !hmac.Equal([]byte(got), []byte(want)) {
			t.Errorf("signature %q, want %q", got, want)
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer hook.Close()

	do := apitest.HTTP(m.URL())
	team := apitest.CreateTenant(t, do, token, "timer")
	if a := do(t, apitest.Request{Method: "POST", Path: "/api/alerts/rules", Token: team.APIKey,
		Body: []byte(`{"on":"new_server","webhook":"` + hook.URL + `","secret":"hook-secret"}`)}); a.Status != 201 {
		t.Fatalf("create rule: %d %s", a.Status, a.Body)
	}
	batch := apitest.SampleBatch(time.Now().Add(2*time.Hour), 1)
	if a := do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: team.APIKey, Body: apitest.MustJSON(t, batch)}); a.Status != 200 {
		t.Fatalf("batch: %d %s", a.Status, a.Body)
	}
	ticks <- time.Now()
	<-m.alertRuns
	mu.Lock()
	n := len(bodies)
	mu.Unlock()
	if n != 2 { // servers fs and shell
		t.Errorf("%d alerts delivered on the tick, want 2", n)
	}
	ticks <- time.Now()
	<-m.alertRuns
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != n {
		t.Errorf("the next tick delivered %d more", len(bodies)-n)
	}
}
