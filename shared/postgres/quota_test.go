package postgres_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// clock is a settable clock for postgres.DB.SetClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func setLimits(t *testing.T, db *postgres.DB, tenant string, perMinute, perDay int64) {
	t.Helper()
	if _, err := db.UpdateTenant(context.Background(), backend.Actor{Admin: "test"}, tenant,
		backend.TenantUpdate{IngestEventsPerMinute: &perMinute, IngestEventsPerDay: &perDay}); err != nil {
		t.Fatal(err)
	}
}

func quotaBatch(t *testing.T, r *rand.Rand, n int, at time.Time) event.Batch {
	return event.Batch{Events: genEvents(t, r, n, at.Add(-time.Hour), time.Hour, newSessions(t, 2), []string{"fs"})}
}

// wantRefused checks that err is the quota's 429 with the given wait.
func wantRefused(t *testing.T, err error, wait time.Duration, says string) {
	t.Helper()
	var e *backend.Error
	if !errors.As(err, &e) || e.Code != backend.ERATELIMIT || e.RetryAfter != wait || !strings.Contains(e.Message, says) {
		t.Fatalf("got %v (%+v), want rate_limited after %s mentioning %q", err, e, wait, says)
	}
}

func TestIngestQuotaPerMinute(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	clk := &clock{now: time.Date(2026, 11, 23, 10, 5, 15, 0, time.UTC)}
	db.SetClock(clk.Now)
	tenant, other := mustTenant(t, db, "quota"), mustTenant(t, db, "unlimited")
	setLimits(t, db, tenant, 100, 0)
	r := rand.New(rand.NewPCG(1, 2))

	first := quotaBatch(t, r, 60, clk.Now())
	if res := ingest(t, db, tenant, first); res.Accepted != 60 {
		t.Fatalf("first batch: %+v", res)
	}
	// Duplicates do not count: the same events again leave 40 to go.
	if res := ingest(t, db, tenant, first); res.Duplicates != 60 {
		t.Fatalf("repeat: %+v", res)
	}
	// Below the limit a batch is admitted whole, even past it.
	if res := ingest(t, db, tenant, quotaBatch(t, r, 50, clk.Now())); res.Accepted != 50 {
		t.Fatalf("crossing batch: %+v", res)
	}
	// Now the minute is full: refused, naming the 45 s left, storing
	// nothing (its session neither).
	refused := quotaBatch(t, r, 1, clk.Now())
	refused.Sessions = []event.Session{{ID: refused.Events[0].SessionID, Server: "fs", StartedAt: clk.Now()}}
	_, err := db.Ingest(context.Background(), tenant, refused)
	wantRefused(t, err, 45*time.Second, "ingest_events_per_minute")
	if n := countRows(t, db, tenant, "events"); n != 110 {
		t.Errorf("%d events stored, want 110", n)
	}
	if n := countRows(t, db, tenant, "sessions"); n != 0 {
		t.Errorf("the refused batch stored %d sessions", n)
	}
	// Sessions alone are not events: they pass.
	if _, err := db.Ingest(context.Background(), tenant, event.Batch{Sessions: refused.Sessions}); err != nil {
		t.Errorf("sessions only: %v", err)
	}
	// Another tenant is not limited by this one's quota.
	ingest(t, db, other, quotaBatch(t, r, 200, clk.Now()))
	// The next minute admits it again.
	clk.Set(clk.Now().Add(45 * time.Second))
	if res := ingest(t, db, tenant, refused); res.Accepted != 1 {
		t.Fatalf("next minute: %+v", res)
	}
}

func TestIngestQuotaPerDay(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	clk := &clock{now: time.Date(2026, 11, 23, 23, 59, 0, 500_000_000, time.UTC)}
	db.SetClock(clk.Now)
	tenant := mustTenant(t, db, "quota-day")
	setLimits(t, db, tenant, 0, 30)
	r := rand.New(rand.NewPCG(3, 4))
	ingest(t, db, tenant, quotaBatch(t, r, 30, clk.Now()))
	clk.Set(clk.Now().Add(30 * time.Second)) // a new minute, the same day
	_, err := db.Ingest(context.Background(), tenant, quotaBatch(t, r, 1, clk.Now()))
	wantRefused(t, err, 30*time.Second, "2026-11-24T00:00:00Z")
	clk.Set(clk.Now().Add(30 * time.Second))
	ingest(t, db, tenant, quotaBatch(t, r, 1, clk.Now()))
	// A lagging clock (another process) counts into the current window
	// instead of reopening yesterday's.
	clk.Set(clk.Now().Add(-2 * time.Second))
	ingest(t, db, tenant, quotaBatch(t, r, 29, clk.Now()))
	clk.Set(clk.Now().Add(4 * time.Second))
	_, err = db.Ingest(context.Background(), tenant, quotaBatch(t, r, 1, clk.Now()))
	wantRefused(t, err, 24*time.Hour-2*time.Second, "ingest_events_per_day")
}

// Concurrent batches from many writers (Lambda instances share nothing
// but the database) are counted exactly, and once the window is full every
// writer is refused.
func TestIngestQuotaAcrossWriters(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	clk := &clock{now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	db.SetClock(clk.Now)
	tenant := mustTenant(t, db, "quota-writers")
	setLimits(t, db, tenant, 1000, 0)
	const writers, per = 8, 40
	batches := make([]event.Batch, writers*10)
	for i := range batches {
		batches[i] = quotaBatch(t, rand.New(rand.NewPCG(uint64(i), 9)), per, clk.Now())
	}
	var mu sync.Mutex
	accepted, refused := 0, 0
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < len(batches); i += writers {
				res, err := db.Ingest(context.Background(), tenant, batches[i])
				mu.Lock()
				switch {
				case err == nil:
					accepted += res.Accepted
				case backend.ErrorCode(err) == backend.ERATELIMIT:
					refused++
				default:
					t.Errorf("writer %d: %v", w, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := countRows(t, db, tenant, "events"); n != accepted {
		t.Errorf("%d events stored, %d accepted", n, accepted)
	}
	// Admission is judged before a batch writes: a window ends at most one
	// batch per concurrent writer past its limit.
	if accepted < 1000 || accepted > 1000+writers*per || refused == 0 {
		t.Errorf("accepted %d, refused %d batches; want 1000 to %d accepted and some refused", accepted, refused, 1000+writers*per)
	}
	var counted int
	if err := db.Pool().QueryRow(context.Background(), `SELECT minute_events FROM ingest_windows WHERE tenant_id = $1`, tenant).Scan(&counted); err != nil || counted != accepted {
		t.Errorf("window counts %d (%v), %d accepted", counted, err, accepted)
	}
}

func countRows(t *testing.T, db *postgres.DB, tenant, table string) int {
	t.Helper()
	var n int
	if err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE tenant_id = $1`, tenant).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
