package postgres_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// TestRecoveryAfterOutage_Postgres cuts the network between a store in use
// and PostgreSQL: while it is down every call fails with EUNAVAILABLE and
// a batch sent then stores nothing; when it is back the same store (no
// reopen, no restart) answers again, and the batch resent goes in once.
func TestRecoveryAfterOutage_Postgres(t *testing.T) {
	direct, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	tenant := mustTenant(t, direct, "acme")

	relay := testenv.NewTCPRelay(t, testenv.DatabaseAddr(t, dsn), true)
	db, err := postgres.Open(ctx, testenv.DSNVia(t, dsn, relay.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	r := rand.New(rand.NewPCG(5, 6))
	sessions := newSessions(t, 3)
	first := genEvents(t, r, 200, base, time.Hour, sessions, []string{"fs", "git"})
	during := genEvents(t, r, 150, base, time.Hour, sessions, []string{"fs", "git"})
	if res := ingest(t, db, tenant, event.Batch{Events: first}); res.Accepted != len(first) {
		t.Fatalf("ingest before the outage = %+v", res)
	}
	// Several pooled connections are open when the link drops.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db.Ping(ctx) //nolint:errcheck // only warms the pool
		}()
	}
	wg.Wait()

	relay.SetUp(false)
	if err := db.Ping(ctx); backend.ErrorCode(err) != backend.EUNAVAILABLE {
		t.Errorf("Ping during the outage: got %v, want EUNAVAILABLE", err)
	}
	b := event.Batch{Events: during, Sessions: []event.Session{{ID: sessions[0], Server: "fs", StartedAt: base}}}
	if _, err := db.Ingest(ctx, tenant, b); backend.ErrorCode(err) != backend.EUNAVAILABLE {
		t.Errorf("Ingest during the outage: got %v, want EUNAVAILABLE", err)
	}
	q := stats.Query{Since: base.Add(-time.Hour), Until: base.Add(2 * time.Hour)}
	if _, err := db.Stats(ctx, tenant, q); backend.ErrorCode(err) != backend.EUNAVAILABLE {
		t.Errorf("Stats during the outage: got %v, want EUNAVAILABLE", err)
	}

	relay.SetUp(true)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after the outage: %v", err)
	}
	if res := ingest(t, db, tenant, b); res != (backend.IngestResult{Accepted: len(during)}) {
		t.Errorf("batch resent after the outage = %+v, want all %d accepted (none stored during it)", res, len(during))
	}
	all := append(append([]event.Event{}, first...), during...)
	got, err := db.Stats(ctx, tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := aggregate(all, q); !reflect.DeepEqual(got, want) {
		t.Errorf("stats after the outage differ from the reference:\n got %+v\nwant %+v", got.Totals, want.Totals)
	}
	if n := len(allActivity(t, direct, tenant, activity.Query{Limit: 500})); n != len(all) {
		t.Errorf("activity holds %d events, want %d", n, len(all))
	}
}

// TestIngestKilledMidStatement_Postgres ends the server process of an
// ingest in the middle of its statement: the events are inserted and the
// statement waits to update an hourly rollup row that the test holds
// locked. The store retries once on a fresh connection; killed twice, it
// gives up with EUNAVAILABLE. Either way nothing of a killed attempt
// remains: the batch is stored once or not at all, and the rollups agree
// with the events.
func TestIngestKilledMidStatement_Postgres(t *testing.T) {
	for _, kills := range []int{1, 2} {
		t.Run(map[int]string{1: "retried", 2: "given up"}[kills], func(t *testing.T) {
			db, dsn := pgtest.MustOpenDBDSN(t)
			ctx := context.Background()
			tenant := mustTenant(t, db, "acme")
			events := genEvents(t, rand.New(rand.NewPCG(7, uint64(kills))), 300, base, 10*time.Minute, newSessions(t, 2), []string{"fs"})
			// The seed creates the rollup rows the test then locks.
			seed, rest := events[:50], events[50:]
			ingest(t, db, tenant, event.Batch{Events: seed})

			admin, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close(ctx)
			lock, err := admin.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Rollback(ctx) //nolint:errcheck // released below
			var locked int
			if err := lock.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM rollup_hour FOR UPDATE) AS l").Scan(&locked); err != nil || locked == 0 {
				t.Fatalf("lock rollup rows: %d, %v", locked, err)
			}

			type result struct {
				res backend.IngestResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := db.Ingest(ctx, tenant, event.Batch{Events: rest})
				done <- result{res, err}
			}()
			monitor, err := pgx.Connect(ctx, testenv.DatabaseURL(t))
			if err != nil {
				t.Fatal(err)
			}
			defer monitor.Close(ctx)
			killed := []int32{}
			for k := range kills {
				pid := waitForLockedIngest(t, monitor, admin.PgConn().PID(), killed)
				killed = append(killed, pid)
				var ok bool
				if err := monitor.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
					t.Fatalf("attempt %d: terminate the ingest's backend %d: %v %v", k+1, pid, ok, err)
				}
			}
			want := events
			if kills == 2 {
				r := <-done
				if backend.ErrorCode(r.err) != backend.EUNAVAILABLE {
					t.Fatalf("Ingest killed twice: got %+v, %v; want EUNAVAILABLE", r.res, r.err)
				}
				want = seed
			}
			if err := lock.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if kills == 1 {
				r := <-done
				if r.err != nil || r.res != (backend.IngestResult{Accepted: len(rest)}) {
					t.Fatalf("Ingest retried after a kill = %+v, %v; want all %d accepted", r.res, r.err, len(rest))
				}
			}
			// The admin connection is a superuser, which row-level
			// security does not filter.
			var stored int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if stored != len(want) {
				t.Errorf("%d events stored, want %d", stored, len(want))
			}
			q := stats.Query{Since: base.Add(-time.Hour), Until: base.Add(2 * time.Hour)}
			got, err := db.Stats(ctx, tenant, q)
			if err != nil {
				t.Fatal(err)
			}
			if w := aggregate(want, q); !reflect.DeepEqual(got, w) {
				t.Errorf("rollups disagree with the stored events:\n got %+v\nwant %+v", got.Totals, w.Totals)
			}
		})
	}
}

// waitForLockedIngest returns the pid of a backend, other than those
// already killed, that waits for a row lock holder holds: a statement
// that is past its start, in the middle of its work.
func waitForLockedIngest(t *testing.T, monitor *pgx.Conn, holder uint32, killed []int32) int32 {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var pid int32
		err := monitor.QueryRow(ctx, `
			SELECT w.pid FROM pg_stat_activity w
			WHERE w.wait_event_type = 'Lock' AND w.wait_event IN ('transactionid', 'tuple')
				AND $1 = ANY (pg_blocking_pids(w.pid)) AND w.pid <> ALL ($2)
			LIMIT 1`, int32(holder), killed).Scan(&pid)
		if err == nil {
			return pid
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the ingest never waited for the rollup lock")
	return 0
}
