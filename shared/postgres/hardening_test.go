package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// A page of large payloads ends at activity.MaxPageBytes with a cursor,
// and the pages together still hold every event once.
func TestActivityPagesAreBoundedInBytes(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	tenant := mustTenant(t, db, "big")
	sid := newID(t)
	big := json.RawMessage(`{"s":"` + strings.Repeat("<x>", 300_000) + `"}`) // 900 KB
	var b event.Batch
	for i := range 12 {
		b.Events = append(b.Events, event.Event{ID: newID(t), SessionID: sid, Seq: int64(i), TS: base.Add(time.Duration(i) * time.Second),
			Direction: event.ClientToServer, Kind: event.KindRequest, Size: int64(len(big)), Payload: big})
	}
	ingest(t, db, tenant, b)
	p, err := db.Activity(context.Background(), tenant, activity.Query{Limit: activity.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if p.NextCursor == "" || len(p.Events) == 0 || len(p.Events) >= 12 {
		t.Fatalf("first page: %d events, cursor %q", len(p.Events), p.NextCursor)
	}
	// Encoded as the API answers: without HTML escapes.
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	if err := e.Encode(p); err != nil {
		t.Fatal(err)
	}
	if enc.Len() > activity.MaxPageBytes {
		t.Errorf("page is %d bytes, over %d", enc.Len(), activity.MaxPageBytes)
	}
	if all := allActivity(t, db, tenant, activity.Query{Limit: activity.MaxLimit}); len(all) != 12 {
		t.Errorf("pages hold %d events, want 12", len(all))
	}
}

// Concurrent batches that carry the same events in different orders
// never fail: ingest writes rows in one order, so they queue instead of
// deadlocking.
func TestConcurrentOverlappingBatches(t *testing.T) {
	_, dsn := pgtest.MustOpenDBDSN(t)
	// A pool wide enough for every writer to run at once.
	db, err := postgres.Open(context.Background(), dsn+"&pool_max_conns=16")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tenant := mustTenant(t, db, "overlap")
	sessions := []string{newID(t), newID(t), newID(t)}
	events := genEvents(t, rand.New(rand.NewPCG(7, 8)), 400, base, time.Hour, sessions, []string{"a", "b"})
	var ss []event.Session
	for _, s := range sessions {
		ss = append(ss, event.Session{ID: s, StartedAt: base.Add(-time.Hour)})
	}
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*6)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 6 {
				evs := append([]event.Event(nil), events...)
				r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
				sess := append([]event.Session(nil), ss...)
				r.Shuffle(len(sess), func(i, j int) { sess[i], sess[j] = sess[j], sess[i] })
				if _, err := db.Ingest(context.Background(), tenant, event.Batch{Sessions: sess, Events: evs}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent ingest failed (%s): %v", backend.ErrorCode(err), err)
	}
	if got := allActivity(t, db, tenant, activity.Query{Limit: activity.MaxLimit}); len(got) != len(events) {
		t.Errorf("stored %d events, want %d", len(got), len(events))
	}
}

// One tenant's slow queries take at most half the pool: past that and a
// short queue it is answered EUNAVAILABLE at once, while another tenant is served and Ping
// tells the busy pool from a dead database.
func TestPerTenantBoundAndBusyPing(t *testing.T) {
	_, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn+"&pool_max_conns=2")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetTenantQueue(0) // one running request per tenant, none waiting
	flood, other, third := mustTenant(t, db, "flood"), mustTenant(t, db, "other"), mustTenant(t, db, "third")

	// A lock the test holds makes the flooding tenant's query wait, as a
	// slow query would.
	locker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	if _, err := locker.Exec(ctx, `SELECT pg_advisory_lock(42)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	for _, tenant := range []string{flood, third} {
		wg.Go(func() {
			err := db.SendTxAsApp(ctx, tenant, func(b *pgx.Batch) {
				started <- struct{}{}
				b.Queue(`SELECT pg_advisory_xact_lock_shared(42)`)
			})
			if err != nil {
				t.Errorf("blocked query: %v", err)
			}
		})
	}
	<-started
	<-started
	// Both pooled connections are now waiting on the lock.
	waitFor(t, func() bool { return db.Pool().Stat().AcquiredConns() == 2 })

	_, err = db.Activity(ctx, flood, activity.Query{})
	if backend.ErrorCode(err) != backend.EUNAVAILABLE {
		t.Errorf("a second query of the flooding tenant: %v, want EUNAVAILABLE", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pctx); err != nil {
		t.Errorf("Ping with a busy pool: %v", err)
	}
	if _, err := locker.Exec(ctx, `SELECT pg_advisory_unlock(42)`); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := db.Activity(ctx, other, activity.Query{}); err != nil {
		t.Errorf("other tenant: %v", err)
	}
	// The statement timeout travels with every transaction.
	var timeout string
	err = db.SendTxAsApp(ctx, other, func(b *pgx.Batch) {
		b.Queue(`SHOW statement_timeout`).QueryRow(func(r pgx.Row) error { return r.Scan(&timeout) })
	})
	if err != nil || timeout != "5s" {
		t.Errorf("statement_timeout = %q, %v; want 5s", timeout, err)
	}
}

// waitFor polls cond (a state of the database, not a timer) for up to ten
// seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		runtime.Gosched()
	}
}

// The application roles hold exactly the privileges some code path uses
// (the rest of this package's tests exercise every one of them), and an
// unused one is refused by the database itself.
func TestLeastPrivilege(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	rows, err := db.Pool().Query(ctx, `
		SELECT grantee || ' ' || table_name || ' ' || string_agg(privilege_type, ',' ORDER BY privilege_type)
		FROM information_schema.role_table_grants
		WHERE grantee IN ('kilometers_app', 'kilometers_admin')
		GROUP BY grantee, table_name ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// DELETE on the tenant tables serves exactly one path: deleting a
	// tenant with its data (DeleteTenant), which works as the app role so
	// that row-level security confines it to that tenant.
	want := []string{
		"kilometers_admin admin_audit INSERT,SELECT",
		"kilometers_admin api_keys DELETE,INSERT,SELECT,UPDATE",
		"kilometers_admin key_read_windows INSERT,SELECT,UPDATE",
		"kilometers_admin tenants DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app alert_outbox DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app alert_rules DELETE,INSERT,SELECT",
		"kilometers_app alert_seen DELETE,INSERT,SELECT",
		"kilometers_app events DELETE,INSERT,SELECT",
		"kilometers_app fired_alerts DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app ingest_windows DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app rollup_hour DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app rollup_minute DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app series_minute DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app session_hour DELETE,INSERT,SELECT",
		"kilometers_app session_minute DELETE,INSERT,SELECT",
		"kilometers_app sessions DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app tool_alert_hour DELETE,INSERT,SELECT,UPDATE",
		"kilometers_app tool_alert_minute DELETE,INSERT,SELECT,UPDATE",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("grants:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The ingest gate and the retention horizons read the tenant's own
	// limits and retentions, nothing else.
	rows, err = db.Pool().Query(ctx, `
		SELECT table_name || ' ' || string_agg(column_name || ':' || privilege_type, ',' ORDER BY column_name)
		FROM information_schema.column_privileges
		WHERE grantee = 'kilometers_app' AND table_name = 'tenants' GROUP BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := "tenants event_retention_days:SELECT,id:SELECT,ingest_events_per_day:SELECT,ingest_events_per_minute:SELECT,rollup_retention_days:SELECT"; strings.Join(cols, "\n") != want {
		t.Errorf("app role's columns of tenants: %q, want %q", cols, want)
	}
	var public bool
	if err := db.Pool().QueryRow(ctx, `SELECT has_function_privilege('public', 'km_hist_merge(bytea, bytea)', 'EXECUTE')`).Scan(&public); err != nil || public {
		t.Errorf("PUBLIC may execute km_hist_merge: %v, %v", public, err)
	}
	tenant := mustTenant(t, db, "grants")
	for _, stmt := range []string{`UPDATE events SET seq = 0`, `SELECT name FROM tenants`, `SELECT count(*) FROM admin_audit`, `TRUNCATE sessions`, `UPDATE session_minute SET server = ''`} {
		err := db.SendTxAsApp(ctx, tenant, func(b *pgx.Batch) { b.Queue(stmt) })
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the app role: %v, want permission denied", stmt, err)
		}
	}
}

// A filter that matches only old events walks at most
// activity.MaxScanRows rows per page: the page ends early with a cursor,
// and following the cursors still finds every match.
func TestFilteredWalkIsBounded(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	tenant := mustTenant(t, db, "walk")
	sid := newID(t)
	n := activity.MaxScanRows + 500
	var events []event.Event
	for i := range n {
		server := "busy"
		if i < 3 { // the three oldest
			server = "rare"
		}
		events = append(events, event.Event{ID: newID(t), SessionID: sid, Seq: int64(i), TS: base.Add(time.Duration(i) * time.Millisecond),
			Direction: event.ClientToServer, Kind: event.KindNotification, Server: server})
	}
	for i := 0; i < n; i += backend.MaxBatchEvents {
		ingest(t, db, tenant, event.Batch{Events: events[i:min(i+backend.MaxBatchEvents, n)]})
	}
	p, err := db.Activity(context.Background(), tenant, activity.Query{Server: "rare", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 0 || p.NextCursor == "" {
		t.Fatalf("first page: %d events, cursor %q; want none and a cursor", len(p.Events), p.NextCursor)
	}
	got := allActivity(t, db, tenant, activity.Query{Server: "rare", Limit: 10})
	if len(got) != 3 {
		t.Fatalf("walk found %d events, want 3", len(got))
	}
	for _, e := range got {
		if e.Server != "rare" {
			t.Errorf("walk returned %+v", e)
		}
	}
}

// Sums saturate instead of overflowing, in the rollups and in stats, and
// stats always encode, even over rows stored before ingest bounded the
// counters.
func TestSumsSaturateAndStatsEncode(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "sums")
	sid := newID(t)
	one := func(i int) event.Batch {
		return event.Batch{Events: []event.Event{{ID: newID(t), SessionID: sid, Seq: int64(i), TS: base,
			Direction: event.ClientToServer, Kind: event.KindRequest, Method: "m" + strconv.Itoa(i%2), Size: event.MaxSize, Tokens: event.MaxTokens, CostUSD: event.MaxCostUSD}}}
	}
	ingest(t, db, tenant, one(0))
	ingest(t, db, tenant, one(1))
	// Rows as an older version could have left them.
	if _, err := db.Pool().Exec(ctx, `UPDATE rollup_minute SET bytes = 9223372036854775000, tokens = 9223372036854775000, cost_usd = 1.7e308;
		UPDATE rollup_hour SET bytes = 9223372036854775000, tokens = 9223372036854775000, cost_usd = 1.7e308`); err != nil {
		t.Fatal(err)
	}
	ingest(t, db, tenant, one(2)) // would overflow bigint without saturation
	var minuteBytes int64
	if err := db.Pool().QueryRow(ctx, `SELECT bytes FROM rollup_minute WHERE method = 'm0'`).Scan(&minuteBytes); err != nil || minuteBytes != math.MaxInt64 {
		t.Errorf("rollup bytes = %d, %v; want saturated at MaxInt64", minuteBytes, err)
	}
	st, err := db.Stats(ctx, tenant, stats.Query{Since: base.Add(-2 * time.Hour), Until: base.Add(2 * time.Hour)}.Align(base))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Errorf("stats do not encode: %v", err)
	}
	if st.Totals.Bytes != math.MaxInt64 || st.Totals.Tokens != math.MaxInt64 {
		t.Errorf("totals bytes %d tokens %d; want saturated", st.Totals.Bytes, st.Totals.Tokens)
	}
}
