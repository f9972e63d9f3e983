package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kilometers-ai/kilometers/shared/alerts"
	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

var alice = backend.Actor{Admin: backend.Fingerprint("alice-token"), Address: "192.0.2.7"}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestAuditIsAppendOnly works as each application role and checks that
// neither may change or remove audit rows, and that only the admin role
// may add them.
func TestAuditIsAppendOnly(t *testing.T) {
	db, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	mustTenant(t, db, "audited")
	conn := connect(t, dsn)
	for _, tc := range []struct {
		role, stmt string
		allowed    bool
	}{
		{"kilometers_admin", `INSERT INTO admin_audit (admin, action) VALUES ('x', 'test')`, true},
		{"kilometers_admin", `SELECT count(*) FROM admin_audit`, true},
		{"kilometers_admin", `UPDATE admin_audit SET admin = 'forged'`, false},
		{"kilometers_admin", `UPDATE admin_audit SET detail = NULL WHERE id = 1`, false},
		{"kilometers_admin", `DELETE FROM admin_audit`, false},
		{"kilometers_admin", `TRUNCATE admin_audit`, false},
		{"kilometers_app", `UPDATE admin_audit SET admin = 'forged'`, false},
		{"kilometers_app", `DELETE FROM admin_audit`, false},
		{"kilometers_app", `TRUNCATE admin_audit`, false},
		{"kilometers_app", `INSERT INTO admin_audit (admin, action) VALUES ('x', 'test')`, false},
		{"kilometers_app", `SELECT count(*) FROM admin_audit`, false},
	} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+tc.role); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, tc.stmt)
		_ = tx.Rollback(ctx)
		var pgErr *pgconn.PgError
		switch {
		case tc.allowed && err != nil:
			t.Errorf("%s: %s: %v, want allowed", tc.role, tc.stmt, err)
		case !tc.allowed && (!errors.As(err, &pgErr) || pgErr.Code != "42501"):
			t.Errorf("%s: %s: %v, want permission denied (42501)", tc.role, tc.stmt, err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM admin_audit WHERE action = 'tenant.create' AND admin <> 'forged'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("audit rows after the attempts: %d, %v; want the 1 tenant.create untouched", n, err)
	}
}

func TestAdminTenants(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()

	acme, first, raw, err := db.AddTenant(ctx, alice, " acme ", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := backend.Settings{EventRetentionDays: 30, RollupRetentionDays: 400, IngestEventsPerMinute: 100000, IngestEventsPerDay: 10000000, ReadRequestsPerMinute: 600}
	if acme.Name != "acme" || acme.Settings != want {
		t.Errorf("new tenant = %+v, want name acme and the documented defaults %+v", acme, want)
	}
	if first.ID == "" || first.TenantID != acme.ID || !strings.HasPrefix(raw, first.Prefix) || !slices.Equal(first.Scopes, backend.DefaultScopes()) {
		t.Errorf("first key = %+v (raw %q), want an id, the prefix and both scopes", first, raw)
	}
	if _, _, _, err := db.AddTenant(ctx, alice, "x", []backend.Scope{"admin"}); err == nil {
		t.Error("a key with an unknown scope was created")
	}
	ingestOnly, _, _, err := db.AddTenant(ctx, alice, "collector", []backend.Scope{backend.ScopeIngest})
	if err != nil {
		t.Fatal(err)
	}

	// Paging, oldest first.
	var all []backend.Tenant
	cursor := ""
	for range 5 {
		page, err := db.ListTenants(ctx, alice, backend.PageQuery{Limit: 1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Tenants...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(all) != 2 || all[0].ID != acme.ID || all[1].ID != ingestOnly.ID {
		t.Errorf("listed %+v, want acme then collector", all)
	}
	if _, err := db.ListTenants(ctx, alice, backend.PageQuery{Cursor: "zzz"}); backend.ErrorCode(err) != backend.EINVALID {
		t.Errorf("bad cursor: %v, want EINVALID", err)
	}

	// Update: only what is given changes.
	name, days, rpm := "acme corp", 90, 0
	got, err := db.UpdateTenant(ctx, alice, acme.ID, backend.TenantUpdate{Name: &name, EventRetentionDays: &days, ReadRequestsPerMinute: &rpm})
	want.EventRetentionDays, want.ReadRequestsPerMinute = 90, 0
	if err != nil || got.Name != "acme corp" || got.Settings != want {
		t.Errorf("update = %+v, %v; want renamed with %+v", got, err, want)
	}
	if again, err := db.GetTenant(ctx, alice, acme.ID); err != nil || again != got {
		t.Errorf("get after update = %+v, %v; want %+v", again, err, got)
	}
	if k, err := db.Authenticate(ctx, raw); err != nil || k.ReadLimit != 0 {
		t.Errorf("key after read limit 0: %+v, %v; want no limit", k, err)
	}
	zero, huge := 0, int64(backend.MaxIngestEventsPerDay+1)
	for name, u := range map[string]backend.TenantUpdate{
		"retention 0":    {EventRetentionDays: &zero},
		"per day huge":   {IngestEventsPerDay: &huge},
		"empty name":     {Name: new(string)},
		"negative limit": {ReadRequestsPerMinute: func() *int { v := -1; return &v }()},
	} {
		if _, err := db.UpdateTenant(ctx, alice, acme.ID, u); backend.ErrorCode(err) != backend.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	for _, id := range []string{newID(t), "nope"} {
		if _, err := db.GetTenant(ctx, alice, id); backend.ErrorCode(err) != backend.ENOTFOUND {
			t.Errorf("get %s: %v, want ENOTFOUND", id, err)
		}
		if _, err := db.UpdateTenant(ctx, alice, id, backend.TenantUpdate{Name: &name}); backend.ErrorCode(err) != backend.ENOTFOUND {
			t.Errorf("update %s: %v, want ENOTFOUND", id, err)
		}
		if _, err := db.ListKeys(ctx, alice, id); backend.ErrorCode(err) != backend.ENOTFOUND {
			t.Errorf("keys of %s: %v, want ENOTFOUND", id, err)
		}
		if err := db.DeleteTenant(ctx, alice, id); backend.ErrorCode(err) != backend.ENOTFOUND {
			t.Errorf("delete %s: %v, want ENOTFOUND", id, err)
		}
	}

	// Keys: listed with scopes, use and revocation.
	second, _, err := db.CreateKey(ctx, alice, acme.ID, []backend.Scope{backend.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeKey(ctx, alice, second.ID); err != nil {
		t.Fatal(err)
	}
	keys, err := db.ListKeys(ctx, alice, acme.ID)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys = %+v, %v", keys, err)
	}
	if keys[0].ID != first.ID || keys[0].LastUsedAt == nil || keys[0].RevokedAt != nil {
		t.Errorf("first key listed as %+v, want used (Authenticate above) and not revoked", keys[0])
	}
	if keys[1].ID != second.ID || keys[1].RevokedAt == nil || !slices.Equal(keys[1].Scopes, []backend.Scope{backend.ScopeRead}) {
		t.Errorf("second key listed as %+v, want read-only and revoked", keys[1])
	}
}

// TestDeleteTenant deletes a tenant with data beside another, then checks
// every table with a tenant_id column as the superuser.
func TestDeleteTenant(t *testing.T) {
	db, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	doomed, _, raw, err := db.AddTenant(ctx, alice, "doomed", nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := mustTenant(t, db, "kept")
	// Events after the rules below exist (SampleBatch starts an hour
	// before its base), so that the rules fire.
	batch := apitest.SampleBatch(time.Now().Add(2*time.Hour), 3)
	// One names a poisoned tool, for the tool alert rollups.
	batch.Events[0].Risk = &event.Risk{Score: 90, Level: event.LevelHigh, Reasons: []string{analysis.ReasonToolPoisoning + "evil"}}
	for _, id := range []string{doomed.ID, kept} {
		// A rule that fires on the batch fills every alerts table (its
		// alert stays in the outbox: nothing delivers it here).
		if _, err := db.CreateAlertRule(ctx, id, backend.NewAlertRule{On: alerts.NewServer, Webhook: "http://127.0.0.1:9/", Secret: "s"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Ingest(ctx, id, batch); err != nil {
			t.Fatal(err)
		}
	}
	k, err := db.Authenticate(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CountRead(ctx, k, time.Now()); err != nil {
		t.Fatal(err)
	}

	if err := db.DeleteTenant(ctx, alice, doomed.ID); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	// Partitions are counted through their parents.
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.columns
		WHERE column_name = 'tenant_id' AND table_schema = current_schema() AND table_name <> 'admin_audit'
		  AND NOT (SELECT relispartition FROM pg_class WHERE oid = to_regclass(quote_ident(table_name)))`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 8 {
		t.Fatalf("tables with tenant_id: %v, %v", tables, err)
	}
	for _, table := range tables {
		var gone, left int
		err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tenant_id = $1), count(*) FILTER (WHERE tenant_id = $2) FROM `+pgx.Identifier{table}.Sanitize(),
			doomed.ID, kept).Scan(&gone, &left)
		if err != nil {
			t.Fatal(err)
		}
		if gone != 0 {
			t.Errorf("%s: %d rows of the deleted tenant left", table, gone)
		}
		if left == 0 && table != "tenants" && table != "sessions" {
			t.Errorf("%s: the other tenant's rows went too", table)
		}
	}
	var windows int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM key_read_windows WHERE key_id = $1`, k.ID).Scan(&windows); err != nil || windows != 0 {
		t.Errorf("read windows of the deleted keys: %d, %v", windows, err)
	}
	if _, err := db.Authenticate(ctx, raw); backend.ErrorCode(err) != backend.EUNAUTHORIZED {
		t.Errorf("key of a deleted tenant: %v, want EUNAUTHORIZED", err)
	}
	if _, err := db.GetTenant(ctx, alice, kept); err != nil {
		t.Errorf("other tenant: %v", err)
	}
	page, err := db.Audit(ctx, alice, backend.AuditQuery{TenantID: doomed.ID})
	if err != nil || len(page.Entries) == 0 || page.Entries[0].Action != backend.ActionTenantDelete {
		t.Fatalf("audit of the deleted tenant: %+v, %v", page, err)
	}
	var detail struct {
		Name    string           `json:"name"`
		Deleted map[string]int64 `json:"deleted_rows"`
	}
	if err := json.Unmarshal(page.Entries[0].Detail, &detail); err != nil || detail.Name != "doomed" ||
		detail.Deleted["events"] != int64(len(batch.Events)) || detail.Deleted["api_keys"] != 1 {
		t.Errorf("delete detail = %s (%v)", page.Entries[0].Detail, err)
	}
}

func TestAuditTrail(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	bob := backend.Actor{Admin: backend.Fingerprint("bob-token"), Address: "2001:db8::1"}
	tenant, first, _, err := db.AddTenant(ctx, alice, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	name := "acme2"
	if _, err := db.UpdateTenant(ctx, bob, tenant.ID, backend.TenantUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	k, _, err := db.CreateKey(ctx, bob, tenant.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RevokeKey(ctx, alice, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ListKeys(ctx, alice, tenant.ID); err != nil {
		t.Fatal(err)
	}
	other := mustTenant(t, db, "other")

	var got []backend.AuditEntry
	cursor := ""
	for range 10 {
		page, err := db.Audit(ctx, bob, backend.AuditQuery{PageQuery: backend.PageQuery{Limit: 2, Cursor: cursor}, TenantID: tenant.ID})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Entries...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	type row struct{ admin, action, key, addr string }
	want := []row{
		{alice.Admin, backend.ActionKeyList, "", alice.Address},
		{alice.Admin, backend.ActionKeyRevoke, k.ID, alice.Address},
		{bob.Admin, backend.ActionKeyCreate, k.ID, bob.Address},
		{bob.Admin, backend.ActionTenantUpdate, "", bob.Address},
		{alice.Admin, backend.ActionTenantCreate, first.ID, alice.Address},
	}
	if len(got) != len(want) {
		t.Fatalf("audit of the tenant: %d entries %+v, want %d", len(got), got, len(want))
	}
	for i, e := range got {
		if (row{e.Admin, e.Action, e.KeyID, e.Address}) != want[i] || e.TenantID != tenant.ID || e.At.IsZero() {
			t.Errorf("entry %d = %+v, want %+v", i, e, want[i])
		}
		if i > 0 && e.ID >= got[i-1].ID {
			t.Errorf("entries not newest first: %d after %d", e.ID, got[i-1].ID)
		}
	}
	var upd map[string]any
	if err := json.Unmarshal(got[3].Detail, &upd); err != nil || upd["name"] != "acme2" || len(upd) != 1 {
		t.Errorf("update detail = %s", got[3].Detail)
	}
	// Reading the trail is itself recorded, after the page it read.
	page, err := db.Audit(ctx, alice, backend.AuditQuery{PageQuery: backend.PageQuery{Limit: 1}})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Action != backend.ActionAuditList || page.Entries[0].Admin != bob.Admin {
		t.Errorf("newest entry = %+v, %v; want bob's audit.list", page, err)
	}
	// The tenant made without the API is recorded too, with no admin.
	page, err = db.Audit(ctx, alice, backend.AuditQuery{TenantID: other})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Action != backend.ActionTenantCreate || page.Entries[0].Admin != "" {
		t.Errorf("audit of a tenant made by a tool: %+v, %v", page, err)
	}
	for _, q := range []backend.AuditQuery{{PageQuery: backend.PageQuery{Cursor: "x"}}, {PageQuery: backend.PageQuery{Cursor: "-3"}}, {TenantID: "acme"}} {
		if _, err := db.Audit(ctx, alice, q); backend.ErrorCode(err) != backend.EINVALID {
			t.Errorf("Audit(%+v): %v, want EINVALID", q, err)
		}
	}
}

// TestCountRead drives the fixed windows with an explicit clock.
func TestCountRead(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	_, _, raw, err := db.AddTenant(ctx, alice, "reader", nil)
	if err != nil {
		t.Fatal(err)
	}
	limit := 3
	k, err := db.Authenticate(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateTenant(ctx, alice, k.TenantID, backend.TenantUpdate{ReadRequestsPerMinute: &limit}); err != nil {
		t.Fatal(err)
	}
	if k, err = db.Authenticate(ctx, raw); err != nil || k.ReadLimit != 3 {
		t.Fatalf("key = %+v, %v", k, err)
	}
	other, _, err := db.CreateKey(ctx, alice, k.TenantID, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := backend.Key{ID: other.ID, TenantID: k.TenantID, ReadLimit: 3}

	t0 := time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC)
	count := func(k backend.Key, at time.Time) backend.ReadWindow {
		t.Helper()
		w, err := db.CountRead(ctx, k, at)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i := 1; i <= 4; i++ {
		w := count(k, t0.Add(time.Duration(i)*time.Second))
		if w.Used != i || w.Limit != 3 || !w.Reset.Equal(t0.Truncate(time.Minute).Add(time.Minute)) || w.Exceeded() != (i > 3) {
			t.Errorf("read %d: %+v", i, w)
		}
	}
	if w := count(otherKey, t0); w.Used != 1 || w.Exceeded() {
		t.Errorf("another key of the tenant: %+v, want its own window", w)
	}
	// A process whose clock lags a little counts in the current window.
	if w := count(k, t0.Add(-time.Minute)); w.Used != 5 {
		t.Errorf("lagging clock: %+v, want the window kept", w)
	}
	if w := count(k, t0.Add(time.Minute)); w.Used != 1 || w.Exceeded() {
		t.Errorf("next minute: %+v, want a fresh window", w)
	}
}

// TestMigrationGivesOldKeysBothScopes migrates a database to just before
// scopes, makes a key the old way, then applies the rest.
func TestMigrationGivesOldKeysBothScopes(t *testing.T) {
	dsn, sqlDB, _ := migratedTo(t, 9)
	ctx := context.Background()
	tenant, key := newID(t), newID(t)
	if _, err := sqlDB.ExecContext(ctx, `INSERT INTO tenants (id, name) VALUES ($1, 'old')`, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlDB.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, prefix, hash) VALUES ($1, $2, 'km_live_old', '\x00')`, key, tenant); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := db.ListKeys(ctx, alice, tenant)
	if err != nil || len(keys) != 1 || !slices.Equal(keys[0].Scopes, backend.DefaultScopes()) {
		t.Errorf("old key after the migration: %+v, %v; want ingest and read", keys, err)
	}
	got, err := db.GetTenant(ctx, alice, tenant)
	if err != nil || got.Settings.EventRetentionDays != 30 || got.Settings.ReadRequestsPerMinute != 600 {
		t.Errorf("old tenant after the migration: %+v, %v; want the defaults", got, err)
	}
}
