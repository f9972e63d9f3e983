package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// API keys look like km_live_<43 base62-ish chars>: 32 random bytes, so a
// plain sha256 is enough to store them (nothing to brute-force) and lookups
// are one index probe. The first prefixLen characters are kept in clear so
// users can tell their keys apart.
const (
	keyScheme  = "km_live_"
	keyRandLen = 43
	prefixLen  = len(keyScheme) + 6
)

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newKey returns a fresh raw key. Rejection sampling keeps every character
// uniform over the alphabet (about 5.95 bits each, 256 bits in all).
func newKey() (string, error) {
	var b strings.Builder
	b.WriteString(keyScheme)
	buf := make([]byte, 64)
	for b.Len() < len(keyScheme)+keyRandLen {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("postgres: random key: %w", err)
		}
		for _, c := range buf {
			if c >= 248 { // 248 = 4*62: keep the distribution uniform
				continue
			}
			b.WriteByte(keyAlphabet[int(c)%len(keyAlphabet)])
			if b.Len() == len(keyScheme)+keyRandLen {
				break
			}
		}
	}
	return b.String(), nil
}

func hashKey(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// Authenticate maps a raw key to its tenant, scopes and read limit.
func (db *DB) Authenticate(ctx context.Context, rawKey string) (backend.Key, error) {
	unauthorized := backend.Errorf(backend.EUNAUTHORIZED, "invalid or revoked API key")
	if !strings.HasPrefix(rawKey, keyScheme) || len(rawKey) != len(keyScheme)+keyRandLen {
		return backend.Key{}, unauthorized
	}
	var k backend.Key
	// One round trip (sendTx): every request pays for this lookup.
	err := db.sendTx(ctx, "authenticate", roleAdmin, "", func(b *pgx.Batch) {
		k = backend.Key{}
		// last_used_at is refreshed at most once a minute so a busy key
		// does not turn every request into a write.
		b.Queue(`
			WITH k AS (
				SELECT api_keys.id, tenant_id, scopes, last_used_at, t.read_requests_per_minute
				FROM api_keys JOIN tenants t ON t.id = api_keys.tenant_id
				WHERE hash = $1 AND revoked_at IS NULL
			), touch AS (
				UPDATE api_keys SET last_used_at = now() FROM k
				WHERE api_keys.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
			)
			SELECT id::text, tenant_id::text, scopes, read_requests_per_minute FROM k`, hashKey(rawKey)).QueryRow(func(row pgx.Row) error {
			var scopes []string
			err := row.Scan(&k.ID, &k.TenantID, &scopes, &k.ReadLimit)
			if errors.Is(err, pgx.ErrNoRows) {
				return unauthorized
			}
			k.Scopes = toScopes(scopes)
			return err
		})
	})
	return k, err
}

// CountRead counts one read of k in the window of now (see
// migrations/00013_key_read_windows.sql). The window comes from the
// caller's clock so that tests can drive it; instances whose clocks differ
// by a little never move a window back (greatest).
func (db *DB) CountRead(ctx context.Context, k backend.Key, now time.Time) (backend.ReadWindow, error) {
	w := backend.ReadWindow{Limit: k.ReadLimit}
	start := now.UTC().Truncate(time.Minute)
	// sendTx may run this twice after a broken connection; counting a
	// request twice only errs towards refusing one request early.
	err := db.sendTx(ctx, "count read", roleAdmin, "", func(b *pgx.Batch) {
		b.Queue(`
			INSERT INTO key_read_windows AS w (key_id, window_start, requests) VALUES ($1, $2, 1)
			ON CONFLICT (key_id) DO UPDATE SET
				requests = CASE WHEN excluded.window_start > w.window_start THEN 1 ELSE w.requests + 1 END,
				window_start = greatest(w.window_start, excluded.window_start)
			RETURNING requests, window_start`, k.ID, start).QueryRow(func(row pgx.Row) error {
			var ws time.Time
			if err := row.Scan(&w.Used, &ws); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "23503" { // key deleted since Authenticate
					return backend.Errorf(backend.EUNAUTHORIZED, "invalid or revoked API key")
				}
				return err
			}
			w.Reset = ws.Add(time.Minute)
			return nil
		})
	})
	return w, err
}

func toScopes(names []string) []backend.Scope {
	out := make([]backend.Scope, len(names))
	for i, n := range names {
		out[i] = backend.Scope(n)
	}
	return out
}

func fromScopes(scopes []backend.Scope) []string {
	if scopes == nil {
		scopes = backend.DefaultScopes()
	}
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

// CreateTenant creates a tenant and its first key with the default scopes,
// for tests and tools that hold the database itself; its audit entry names
// no admin credential. The admin API calls AddTenant.
func (db *DB) CreateTenant(ctx context.Context, name string) (backend.Tenant, string, error) {
	t, _, raw, err := db.AddTenant(ctx, backend.Actor{}, name, nil)
	return t, raw, err
}

// AddTenant creates a tenant and its first key.
func (db *DB) AddTenant(ctx context.Context, a backend.Actor, name string, scopes []backend.Scope) (backend.Tenant, backend.APIKey, string, error) {
	name = strings.TrimSpace(name)
	if err := backend.ValidateTenantName(name); err != nil {
		return backend.Tenant{}, backend.APIKey{}, "", err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return backend.Tenant{}, backend.APIKey{}, "", fmt.Errorf("postgres: tenant id: %w", err)
	}
	raw, err := newKey()
	if err != nil {
		return backend.Tenant{}, backend.APIKey{}, "", err
	}
	var t backend.Tenant
	var k backend.APIKey
	err = db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		// ON CONFLICT makes a retry after a lost commit acknowledgement
		// harmless: the ids are chosen before the transaction.
		t, err = scanTenant(tx.QueryRow(ctx, `
			INSERT INTO tenants (id, name) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name
			RETURNING `+tenantCols, id.String(), name))
		if err != nil {
			return dbError("create tenant", err)
		}
		if k, err = insertKey(ctx, tx, t.ID, raw, scopes); err != nil {
			return err
		}
		return audit(ctx, tx, a, backend.ActionTenantCreate, t.ID, k.ID, map[string]any{"name": name, "scopes": k.Scopes})
	})
	if err != nil {
		return backend.Tenant{}, backend.APIKey{}, "", err
	}
	return t, k, raw, nil
}

const tenantCols = `id::text, name, created_at, event_retention_days, rollup_retention_days,
	ingest_events_per_minute, ingest_events_per_day, read_requests_per_minute`

func scanTenant(row pgx.Row) (backend.Tenant, error) {
	var t backend.Tenant
	s := &t.Settings
	err := row.Scan(&t.ID, &t.Name, &t.CreatedAt, &s.EventRetentionDays, &s.RollupRetentionDays,
		&s.IngestEventsPerMinute, &s.IngestEventsPerDay, &s.ReadRequestsPerMinute)
	return t, err
}

const keyCols = `id::text, tenant_id::text, prefix, scopes, created_at, last_used_at, revoked_at`

func scanKey(row pgx.Row) (backend.APIKey, error) {
	var k backend.APIKey
	var scopes []string
	err := row.Scan(&k.ID, &k.TenantID, &k.Prefix, &scopes, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
	k.Scopes = toScopes(scopes)
	return k, err
}

func insertKey(ctx context.Context, tx pgx.Tx, tenantID, raw string, scopes []backend.Scope) (backend.APIKey, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return backend.APIKey{}, fmt.Errorf("postgres: key id: %w", err)
	}
	k, err := scanKey(tx.QueryRow(ctx, `
		INSERT INTO api_keys (id, tenant_id, prefix, hash, scopes) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (hash) DO UPDATE SET prefix = excluded.prefix
		RETURNING `+keyCols, id.String(), tenantID, raw[:prefixLen], hashKey(raw), fromScopes(scopes)))
	if err != nil {
		return k, dbError("create key", err)
	}
	return k, nil
}

// audit records one admin action inside the action's transaction, which
// must work as the admin role.
func audit(ctx context.Context, tx pgx.Tx, a backend.Actor, action, tenantID, keyID string, detail any) error {
	var d []byte
	if detail != nil {
		var err error
		if d, err = json.Marshal(detail); err != nil {
			return fmt.Errorf("postgres: audit detail: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO admin_audit (admin, action, tenant_id, key_id, address, detail)
		VALUES ($1, $2, NULLIF($3, '')::uuid, NULLIF($4, '')::uuid, $5, $6)`,
		a.Admin, action, tenantID, keyID, a.Address, d)
	return dbError("audit", err)
}

func errTenantNotFound() error { return backend.Errorf(backend.ENOTFOUND, "tenant not found") }
func errKeyNotFound() error    { return backend.Errorf(backend.ENOTFOUND, "key not found") }

func isID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// ListTenants pages through tenants in creation order (ids are UUIDv7).
func (db *DB) ListTenants(ctx context.Context, a backend.Actor, q backend.PageQuery) (backend.TenantPage, error) {
	after := uuid.Nil.String()
	if q.Cursor != "" {
		if !isID(q.Cursor) {
			return backend.TenantPage{}, backend.Errorf(backend.EINVALID, "cursor: not one this API returned")
		}
		after = q.Cursor
	}
	limit := pageLimit(q.Limit)
	var page backend.TenantPage
	err := db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		page = backend.TenantPage{Tenants: []backend.Tenant{}}
		rows, err := tx.Query(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`, after, limit+1)
		if err != nil {
			return dbError("list tenants", err)
		}
		page.Tenants, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (backend.Tenant, error) { return scanTenant(row) })
		if err != nil {
			return dbError("list tenants", err)
		}
		if len(page.Tenants) > limit {
			page.Tenants = page.Tenants[:limit]
			page.NextCursor = page.Tenants[limit-1].ID
		}
		return audit(ctx, tx, a, backend.ActionTenantList, "", "", map[string]any{"cursor": q.Cursor, "count": len(page.Tenants)})
	})
	return page, err
}

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return backend.DefaultPageLimit
	case n > backend.MaxPageLimit:
		return backend.MaxPageLimit
	}
	return n
}

// GetTenant returns one tenant.
func (db *DB) GetTenant(ctx context.Context, a backend.Actor, tenantID string) (backend.Tenant, error) {
	if !isID(tenantID) {
		return backend.Tenant{}, errTenantNotFound()
	}
	var t backend.Tenant
	err := db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = $1`, tenantID))
		if errors.Is(err, pgx.ErrNoRows) {
			return errTenantNotFound()
		}
		if err != nil {
			return dbError("get tenant", err)
		}
		return audit(ctx, tx, a, backend.ActionTenantGet, t.ID, "", nil)
	})
	return t, err
}

// UpdateTenant renames a tenant and changes its settings.
func (db *DB) UpdateTenant(ctx context.Context, a backend.Actor, tenantID string, u backend.TenantUpdate) (backend.Tenant, error) {
	if !isID(tenantID) {
		return backend.Tenant{}, errTenantNotFound()
	}
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		u.Name = &name
	}
	if err := u.Validate(); err != nil {
		return backend.Tenant{}, err
	}
	var t backend.Tenant
	err := db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		// NULL keeps a column: nil fields of u change nothing.
		var err error
		t, err = scanTenant(tx.QueryRow(ctx, `
			UPDATE tenants SET
				name = coalesce($2, name),
				event_retention_days = coalesce($3, event_retention_days),
				rollup_retention_days = coalesce($4, rollup_retention_days),
				ingest_events_per_minute = coalesce($5, ingest_events_per_minute),
				ingest_events_per_day = coalesce($6, ingest_events_per_day),
				read_requests_per_minute = coalesce($7, read_requests_per_minute)
			WHERE id = $1
			RETURNING `+tenantCols, tenantID, u.Name, u.EventRetentionDays, u.RollupRetentionDays,
			u.IngestEventsPerMinute, u.IngestEventsPerDay, u.ReadRequestsPerMinute))
		if errors.Is(err, pgx.ErrNoRows) {
			return errTenantNotFound()
		}
		if err != nil {
			return dbError("update tenant", err)
		}
		return audit(ctx, tx, a, backend.ActionTenantUpdate, t.ID, "", updateDetail(u))
	})
	return t, err
}

// updateDetail is what an update set, by API field name.
func updateDetail(u backend.TenantUpdate) map[string]any {
	d := map[string]any{}
	put := func(k string, set bool, v any) {
		if set {
			d[k] = v
		}
	}
	put("name", u.Name != nil, u.Name)
	put("event_retention_days", u.EventRetentionDays != nil, u.EventRetentionDays)
	put("rollup_retention_days", u.RollupRetentionDays != nil, u.RollupRetentionDays)
	put("ingest_events_per_minute", u.IngestEventsPerMinute != nil, u.IngestEventsPerMinute)
	put("ingest_events_per_day", u.IngestEventsPerDay != nil, u.IngestEventsPerDay)
	put("read_requests_per_minute", u.ReadRequestsPerMinute != nil, u.ReadRequestsPerMinute)
	return d
}

// DeleteTenant deletes the tenant's rows from every table that has a
// tenant_id column, then its keys and itself, in one transaction (see
// migrations/00014_tenant_deletion.sql). Tables that other tables of the
// tenant reference go last.
func (db *DB) DeleteTenant(ctx context.Context, a backend.Actor, tenantID string) error {
	if !isID(tenantID) {
		return errTenantNotFound()
	}
	return db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `SELECT name FROM tenants WHERE id = $1 FOR UPDATE`, tenantID).Scan(&name)
		if errors.Is(err, pgx.ErrNoRows) {
			return errTenantNotFound()
		}
		if err != nil {
			return dbError("delete tenant", err)
		}
		rows, err := tx.Query(ctx, `
			SELECT c.relname FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_attribute att ON att.attrelid = c.oid AND att.attname = 'tenant_id' AND NOT att.attisdropped
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
			  AND c.relname NOT IN ('tenants', 'api_keys', 'admin_audit')
			ORDER BY EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.oid), c.relname`)
		if err != nil {
			return dbError("delete tenant: tables", err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return dbError("delete tenant: tables", err)
		}
		// The data goes as the app role, confined to the tenant by
		// row-level security; its keys and row as the admin role.
		if _, err := tx.Exec(ctx, `SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true)`, roleApp, tenantID); err != nil {
			return dbError("delete tenant", err)
		}
		deleted := map[string]int64{}
		for _, table := range tables {
			tag, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{table}.Sanitize()+` WHERE tenant_id = $1`, tenantID)
			if err != nil {
				return dbError("delete tenant: "+table, err)
			}
			if n := tag.RowsAffected(); n > 0 {
				deleted[table] = n
			}
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('role', $1, true), set_config('app.tenant_id', '', true)`, roleAdmin); err != nil {
			return dbError("delete tenant", err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM api_keys WHERE tenant_id = $1`, tenantID)
		if err != nil {
			return dbError("delete tenant: keys", err)
		}
		deleted["api_keys"] = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, tenantID); err != nil {
			return dbError("delete tenant", err)
		}
		return audit(ctx, tx, a, backend.ActionTenantDelete, tenantID, "", map[string]any{"name": name, "deleted_rows": deleted})
	})
}

// ListKeys lists a tenant's keys.
func (db *DB) ListKeys(ctx context.Context, a backend.Actor, tenantID string) ([]backend.APIKey, error) {
	if !isID(tenantID) {
		return nil, errTenantNotFound()
	}
	var keys []backend.APIKey
	err := db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		if err := tenantExists(ctx, tx, tenantID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+keyCols+` FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`, tenantID)
		if err != nil {
			return dbError("list keys", err)
		}
		keys, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (backend.APIKey, error) { return scanKey(row) })
		if err != nil {
			return dbError("list keys", err)
		}
		return audit(ctx, tx, a, backend.ActionKeyList, tenantID, "", nil)
	})
	if keys == nil && err == nil {
		keys = []backend.APIKey{}
	}
	return keys, err
}

func tenantExists(ctx context.Context, tx pgx.Tx, tenantID string) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)`, tenantID).Scan(&exists); err != nil {
		return dbError("find tenant", err)
	}
	if !exists {
		return errTenantNotFound()
	}
	return nil
}

// CreateKey adds a key to a tenant.
func (db *DB) CreateKey(ctx context.Context, a backend.Actor, tenantID string, scopes []backend.Scope) (backend.APIKey, string, error) {
	if !isID(tenantID) {
		return backend.APIKey{}, "", errTenantNotFound()
	}
	raw, err := newKey()
	if err != nil {
		return backend.APIKey{}, "", err
	}
	var k backend.APIKey
	err = db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		if err := tenantExists(ctx, tx, tenantID); err != nil {
			return err
		}
		if k, err = insertKey(ctx, tx, tenantID, raw, scopes); err != nil {
			return err
		}
		return audit(ctx, tx, a, backend.ActionKeyCreate, tenantID, k.ID, map[string]any{"prefix": k.Prefix, "scopes": k.Scopes})
	})
	if err != nil {
		return backend.APIKey{}, "", err
	}
	return k, raw, nil
}

// RevokeKey revokes a key; revoking twice keeps the first revocation time.
func (db *DB) RevokeKey(ctx context.Context, a backend.Actor, keyID string) (backend.APIKey, error) {
	if !isID(keyID) {
		return backend.APIKey{}, errKeyNotFound()
	}
	var k backend.APIKey
	err := db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING `+keyCols, keyID))
		if errors.Is(err, pgx.ErrNoRows) {
			return errKeyNotFound()
		}
		if err != nil {
			return dbError("revoke key", err)
		}
		return audit(ctx, tx, a, backend.ActionKeyRevoke, k.TenantID, k.ID, map[string]any{"prefix": k.Prefix})
	})
	return k, err
}

// Audit pages through the audit trail, newest first. Reading it is an
// admin action too, recorded after the page is read.
func (db *DB) Audit(ctx context.Context, a backend.Actor, q backend.AuditQuery) (backend.AuditPage, error) {
	var before *int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return backend.AuditPage{}, backend.Errorf(backend.EINVALID, "cursor: not one this API returned")
		}
		before = &n
	}
	var tenant *string
	if q.TenantID != "" {
		if !isID(q.TenantID) {
			return backend.AuditPage{}, backend.Errorf(backend.EINVALID, "tenant: want a tenant id (UUID), got %q", q.TenantID)
		}
		tenant = &q.TenantID
	}
	limit := pageLimit(q.Limit)
	var page backend.AuditPage
	err := db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, at, admin, action, coalesce(tenant_id::text, ''), coalesce(key_id::text, ''), address, detail
			FROM admin_audit
			WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::bigint IS NULL OR id < $2)
			ORDER BY id DESC LIMIT $3`, tenant, before, limit+1)
		if err != nil {
			return dbError("audit", err)
		}
		page = backend.AuditPage{}
		page.Entries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (backend.AuditEntry, error) {
			var e backend.AuditEntry
			var detail []byte
			err := row.Scan(&e.ID, &e.At, &e.Admin, &e.Action, &e.TenantID, &e.KeyID, &e.Address, &detail)
			if len(detail) > 0 {
				e.Detail = detail
			}
			return e, err
		})
		if err != nil {
			return dbError("audit", err)
		}
		if len(page.Entries) > limit {
			page.Entries = page.Entries[:limit]
			page.NextCursor = strconv.FormatInt(page.Entries[limit-1].ID, 10)
		}
		return audit(ctx, tx, a, backend.ActionAuditList, q.TenantID, "", map[string]any{"cursor": q.Cursor, "count": len(page.Entries)})
	})
	if page.Entries == nil {
		page.Entries = []backend.AuditEntry{}
	}
	return page, err
}

// tenantUUID checks a tenant id from the caller before it reaches a policy
// cast, where a malformed one would surface as an internal error.
func tenantUUID(tenantID string) error {
	if _, err := uuid.Parse(tenantID); err != nil {
		return backend.Errorf(backend.EUNAUTHORIZED, "unknown tenant")
	}
	return nil
}
