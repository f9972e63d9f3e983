package postgres_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
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
	"github.com/kilometers-ai/kilometers/shared/stats"
)

func partitions(t *testing.T, db *postgres.DB, parent string) []string {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(), `SELECT partition FROM km_partition_bounds($1) ORDER BY lo NULLS FIRST`, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func dayPartition(ts time.Time) string { return "events_p" + ts.UTC().Format("20060102") }

func setRetention(t *testing.T, db *postgres.DB, tenant string, events, rollups int) {
	t.Helper()
	if _, err := db.UpdateTenant(context.Background(), alice, tenant,
		backend.TenantUpdate{EventRetentionDays: &events, RollupRetentionDays: &rollups}); err != nil {
		t.Fatal(err)
	}
}

// A fresh database has day partitions from the default retention back to
// a week ahead, and maintenance moves that window with the clock: it makes
// the days ahead and drops the days past every tenant's retention, whole,
// with their rows; a second run changes nothing.
func TestMaintainMovesThePartitions(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	got := partitions(t, db, "events")
	if len(got) != 38 || got[0] != dayPartition(now.AddDate(0, 0, -30)) || got[len(got)-1] != dayPartition(now.AddDate(0, 0, 7)) {
		t.Fatalf("fresh database: %d day partitions %v..., want 38 from 30 days back to 7 ahead", len(got), got[:1])
	}
	tenant := mustTenant(t, db, "lifecycle")
	r := rand.New(rand.NewPCG(5, 6))
	old := genEvents(t, r, 50, now.AddDate(0, 0, -25), time.Hour, newSessions(t, 1), []string{"fs"})
	recent := genEvents(t, r, 50, now.Add(-2*time.Hour), time.Hour, newSessions(t, 1), []string{"fs"})
	ingest(t, db, tenant, event.Batch{Events: append(slices.Clone(old), recent...)})

	clk := &clock{now: now.AddDate(0, 0, 10)}
	db.SetClock(clk.Now)
	res, err := db.Maintain(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	// Thirty days before the clock is 20 days back from today: every day
	// before it goes, the 25-day-old events with theirs.
	if !slices.Contains(res.Dropped, dayPartition(now.AddDate(0, 0, -25))) || slices.Contains(res.Dropped, dayPartition(now.AddDate(0, 0, -19))) {
		t.Errorf("dropped %v", res.Dropped)
	}
	if !slices.Contains(res.Created, dayPartition(now.AddDate(0, 0, 17))) {
		t.Errorf("created %v, want the days up to a week past the clock", res.Created)
	}
	if n := countRows(t, db, tenant, "events"); n != len(recent) {
		t.Errorf("%d events left, want the %d recent ones", n, len(recent))
	}
	again, err := db.Maintain(ctx, alice)
	if err != nil || len(again.Created)+len(again.Dropped) != 0 {
		t.Errorf("second run: %+v, %v; want nothing to do", again, err)
	}
	var audited int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM admin_audit WHERE action = 'maintenance.run' AND admin = $1`, alice.Admin).Scan(&audited); err != nil || audited != 2 {
		t.Errorf("%d maintenance runs audited (%v), want 2", audited, err)
	}
}

// Shared partitions go only when every tenant's retention has passed them;
// until then a tenant with a shorter retention no longer sees its older
// events or stats.
func TestRetentionPerTenant(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	short, long := mustTenant(t, db, "short"), mustTenant(t, db, "long")
	r := rand.New(rand.NewPCG(7, 8))
	from := now.Add(-3*24*time.Hour - 2*time.Hour)
	stored := map[string][]event.Event{}
	for _, tenant := range []string{short, long} {
		sid := newSessions(t, 1)
		stored[tenant] = genEvents(t, r, 40, from, time.Hour, sid, []string{"fs"})
		ingest(t, db, tenant, event.Batch{Sessions: []event.Session{{ID: sid[0], Server: "fs", StartedAt: from}}, Events: stored[tenant]})
	}
	setRetention(t, db, short, 2, 2)
	// Hidden means hidden from every read: one call, and the counts of the
	// sessions list, too.
	for tenant, visible := range map[string]bool{short: false, long: true} {
		_, err := db.Call(ctx, tenant, stored[tenant][0].ID)
		if found := err == nil; found != visible || (!found && backend.ErrorCode(err) != backend.ENOTFOUND) {
			t.Errorf("call of an event %s: %v", map[bool]string{true: "kept", false: "past retention"}[visible], err)
		}
		page, err := db.Sessions(ctx, tenant, activity.SessionQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var calls, failed int64
		for _, s := range page.Sessions {
			calls, failed = calls+s.Calls, failed+s.Failed
		}
		if len(page.Sessions) != 1 || (calls+failed > 0) != visible {
			t.Errorf("sessions of the tenant whose events are %v: %d calls, %d failed", visible, calls, failed)
		}
	}
	sq := stats.Query{Since: now.AddDate(0, 0, -7), Until: now.Add(time.Hour)}
	for tenant, want := range map[string]int{short: 0, long: 40} {
		page, err := db.Activity(ctx, tenant, activity.Query{Limit: 1000})
		if err != nil || len(page.Events) != want {
			t.Errorf("activity: %d events (%v), want %d", len(page.Events), err, want)
		}
		st, err := db.Stats(ctx, tenant, sq)
		if err != nil || st.Totals.Events != int64(want) {
			t.Errorf("stats: %d events (%v), want %d", st.Totals.Events, err, want)
		}
	}
	day := dayPartition(from)
	if res, err := db.Maintain(ctx, alice); err != nil || slices.Contains(res.Dropped, day) {
		t.Fatalf("with one tenant keeping 30 days: %+v, %v; %s must stay", res, err, day)
	}
	setRetention(t, db, long, 2, 400)
	res, err := db.Maintain(ctx, alice)
	if err != nil || !slices.Contains(res.Dropped, day) {
		t.Fatalf("once every tenant's retention passed it: %+v, %v; want %s dropped", res, err, day)
	}
	if n := countRows(t, db, long, "events"); n != 0 {
		t.Errorf("%d events of the long tenant left in the dropped day", n)
	}
	// An event older than every partition is refused, naming the field;
	// the batch stores nothing.
	ok := genEvents(t, r, 1, now.Add(-time.Hour), time.Minute, newSessions(t, 1), []string{"fs"})
	tooOld := genEvents(t, r, 1, now.AddDate(0, 0, -40), time.Minute, newSessions(t, 1), []string{"fs"})
	_, err = db.Ingest(ctx, long, event.Batch{Events: append(ok, tooOld...)})
	if backend.ErrorCode(err) != backend.EINVALID || !strings.Contains(err.Error(), "events[1].ts") {
		t.Errorf("event 40 days old: %v, want invalid naming events[1].ts", err)
	}
	// Past the newest partition (maintenance stopped a week ago) the event
	// is not at fault: 503, so the CLI keeps it and retries.
	newest := partitions(t, db, "events")
	if _, err := db.Pool().Exec(ctx, `DROP TABLE `+newest[len(newest)-1]+`, `+newest[len(newest)-2]+`, `+newest[len(newest)-3]+`, `+newest[len(newest)-4]+`, `+newest[len(newest)-5]+`, `+newest[len(newest)-6]+`, `+newest[len(newest)-7]); err != nil {
		t.Fatal(err)
	}
	// What is left ends with today; the store itself does not check how
	// far ahead an event is (the API's validation does).
	tomorrow := now.Truncate(24*time.Hour).AddDate(0, 0, 1)
	ahead := genEvents(t, r, 1, tomorrow.Add(time.Minute), time.Minute, newSessions(t, 1), []string{"fs"})
	_, err = db.Ingest(ctx, long, event.Batch{Events: append(ok, ahead...)})
	if backend.ErrorCode(err) != backend.EUNAVAILABLE || !strings.Contains(err.Error(), "events[1].ts") {
		t.Errorf("event past the newest partition: %v, want unavailable naming events[1].ts", err)
	}
	if n := countRows(t, db, long, "events"); n != 0 {
		t.Errorf("the refused batch stored %d events", n)
	}
}

// A retention raised to ten years gets one partition for the days before
// the oldest, not thousands, and an event of last year is then stored.
func TestLongRetentionFillsBackInOnePartition(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	tenant := mustTenant(t, db, "archivist")
	setRetention(t, db, tenant, backend.MaxRetentionDays, backend.MaxRetentionDays)
	before := len(partitions(t, db, "events"))
	res, err := db.Maintain(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(partitions(t, db, "events")); got != before+1 {
		t.Errorf("%d event partitions after raising the retention, want %d (one for the gap): created %v", got, before+1, res.Created)
	}
	old := genEvents(t, rand.New(rand.NewPCG(3, 3)), 5, now.AddDate(-1, 0, 0), time.Hour, newSessions(t, 1), []string{"fs"})
	if res := ingest(t, db, tenant, event.Batch{Events: old}); res.Accepted != 5 {
		t.Errorf("events of last year: %+v", res)
	}
	if again, err := db.Maintain(ctx, alice); err != nil || len(again.Created)+len(again.Dropped) != 0 {
		t.Errorf("second run: %+v, %v", again, err)
	}
}

// A run that cannot get a table lock in time (a long query holds it) gives
// up with EUNAVAILABLE, changing nothing; the next run does the work.
func TestMaintainGivesUpOnALockedTable(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	db.SetClock(func() time.Time { return time.Now().AddDate(0, 0, 2) })
	before := partitions(t, db, "events")
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `LOCK TABLE events IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	_, err = db.Maintain(ctx, alice)
	if backend.ErrorCode(err) != backend.EUNAVAILABLE || !strings.Contains(err.Error(), "table lock") {
		t.Fatalf("run behind a lock: %v, want unavailable", err)
	}
	if got := partitions(t, db, "events"); !slices.Equal(got, before) {
		t.Errorf("the run that gave up changed the partitions: %v", got)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := db.Maintain(ctx, alice)
	days := 0
	for _, p := range res.Created {
		if strings.HasPrefix(p, "events_p") {
			days++
		}
	}
	if err != nil || days != 2 {
		t.Errorf("next run: %+v, %v; want the two days ahead", res, err)
	}
}

// Two runs at once (two schedules, or a schedule and an operator) both
// succeed, and make each partition once.
func TestMaintainTwiceAtOnce(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	clk := &clock{now: time.Now().UTC().AddDate(0, 3, 0)}
	db.SetClock(clk.Now)
	var mu sync.Mutex
	var created []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := db.Maintain(context.Background(), alice)
			if err != nil {
				t.Errorf("concurrent run: %v", err)
				return
			}
			mu.Lock()
			created = append(created, res.Created...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(created)
	if len(created) == 0 || len(slices.Compact(slices.Clone(created))) != len(created) {
		t.Errorf("created %d partitions, some twice: %v", len(created), created)
	}
}

// migrationRows is how many events TestMigrationToPartitions loads before
// migrating; KM_MIGRATION_ROWS=1000000 measures the migration at a million
// (docs/deploy.md says how long it took).
func migrationRows(t *testing.T) int {
	if s := os.Getenv("KM_MIGRATION_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("KM_MIGRATION_ROWS=%q: want a positive number", s)
		}
		return n
	}
	return 20000
}

// TestMigrationToPartitions migrates a database holding events, rollups
// and sessions in the unpartitioned tables to time partitions: every row
// is kept (the history becomes the archive partition), reads and ingest
// work on it, an event sent again is still a duplicate, and maintenance
// drops the archive whole once every retention has passed it.
func TestMigrationToPartitions(t *testing.T) {
	dsn, sqlDB, p := migratedTo(t, 20)
	ctx := context.Background()
	tenant := newID(t)
	if _, err := sqlDB.ExecContext(ctx, `INSERT INTO tenants (id, name) VALUES ($1, 'old')`, tenant); err != nil {
		t.Fatal(err)
	}
	n := migrationRows(t)
	// Events spread over the 60 days before now, as the old schema held
	// them; some rollup rows beside them.
	t0 := time.Now()
	if _, err := sqlDB.ExecContext(ctx, `
		INSERT INTO events (tenant_id, id, session_id, seq, ts, direction, kind, server, method, tool, failed, size, risk_rank, payload)
		SELECT $1, gen_random_uuid(), '0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31', i,
			now() - (i % 86400) * interval '1 minute', 'client_to_server', 'request', 'fs', 'tools/call', 'read_file',
			false, 100, 0, '{"jsonrpc":"2.0","id":1}'
		FROM generate_series(1, $2::int) AS i`, tenant, n); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlDB.ExecContext(ctx, `
		INSERT INTO rollup_minute (tenant_id, bucket, server, method, tool, events, requests, calls, errors, bytes, cost_usd, tokens, risk_medium, risk_high, max_score, hist)
		SELECT $1, date_trunc('minute', now()) - i * interval '1 minute', 'fs', 'tools/call', 'read_file', 1, 1, 1, 0, 100, 0, 0, 0, 0, 0, '{}'
		FROM generate_series(0, 999) AS i`, tenant); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d events in %s", n, time.Since(t0))
	var oneID string
	var oneTS time.Time
	if err := sqlDB.QueryRowContext(ctx, `SELECT id::text, ts FROM events ORDER BY ts DESC LIMIT 1`).Scan(&oneID, &oneTS); err != nil {
		t.Fatal(err)
	}

	t0 = time.Now()
	if _, err := p.UpTo(ctx, 21); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("migrated %d events to partitions in %s (%.1f s per million)", n, took, took.Seconds()*1e6/float64(n))

	var events, rollups int
	if err := sqlDB.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rollup_minute)`).Scan(&events, &rollups); err != nil {
		t.Fatal(err)
	}
	if events != n || rollups != 1000 {
		t.Fatalf("after the migration: %d events and %d rollup rows, want %d and 1000", events, rollups, n)
	}
	var partitioned bool
	if err := sqlDB.QueryRowContext(ctx, `SELECT relkind = 'p' FROM pg_class WHERE relname = 'events'`).Scan(&partitioned); err != nil || !partitioned {
		t.Fatalf("events partitioned: %v, %v", partitioned, err)
	}

	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// The newest event, sent again, is a duplicate; a new one is stored.
	again := event.Event{ID: oneID, SessionID: newID(t), Seq: 1, TS: oneTS, Direction: event.ClientToServer, Kind: event.KindRequest}
	fresh := genEvents(t, rand.New(rand.NewPCG(1, 1)), 1, time.Now().Add(-time.Minute), time.Second, newSessions(t, 1), []string{"fs"})
	if res := ingest(t, db, tenant, event.Batch{Events: append(fresh, again)}); res.Accepted != 1 || res.Duplicates != 1 {
		t.Errorf("after the migration: %+v, want 1 accepted and 1 duplicate", res)
	}
	page, err := db.Activity(ctx, tenant, activity.Query{Limit: 10})
	if err != nil || len(page.Events) != 10 {
		t.Errorf("activity after the migration: %d events, %v", len(page.Events), err)
	}
	// Thirty days past the newest archived row, the archive goes whole.
	db.SetClock(func() time.Time { return time.Now().AddDate(0, 0, 32) })
	res, err := db.Maintain(ctx, alice)
	if err != nil || !slices.Contains(res.Dropped, "events_archive") {
		t.Errorf("maintenance a month on: %+v, %v; want events_archive dropped", res, err)
	}
}
