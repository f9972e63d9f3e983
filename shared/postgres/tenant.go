package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
	maxNameLen = 256
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

// Authenticate maps a raw key to its tenant.
func (db *DB) Authenticate(ctx context.Context, rawKey string) (string, error) {
	unauthorized := backend.Errorf(backend.EUNAUTHORIZED, "invalid or revoked API key")
	if !strings.HasPrefix(rawKey, keyScheme) || len(rawKey) != len(keyScheme)+keyRandLen {
		return "", unauthorized
	}
	var tenantID string
	// One round trip (sendTx): every request pays for this lookup.
	err := db.sendTx(ctx, "authenticate", roleAdmin, "", func(b *pgx.Batch) {
		tenantID = ""
		// last_used_at is refreshed at most once a minute so a busy key
		// does not turn every request into a write.
		b.Queue(`
			WITH k AS (
				SELECT id, tenant_id, last_used_at FROM api_keys
				WHERE hash = $1 AND revoked_at IS NULL
			), touch AS (
				UPDATE api_keys SET last_used_at = now() FROM k
				WHERE api_keys.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
			)
			SELECT tenant_id::text FROM k`, hashKey(rawKey)).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&tenantID)
			if errors.Is(err, pgx.ErrNoRows) {
				return unauthorized
			}
			return err
		})
	})
	return tenantID, err
}

// CreateTenant creates a tenant and its first key.
func (db *DB) CreateTenant(ctx context.Context, name string) (backend.Tenant, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return backend.Tenant{}, "", backend.Errorf(backend.EINVALID, "name must be 1-%d bytes of UTF-8", maxNameLen)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return backend.Tenant{}, "", fmt.Errorf("postgres: tenant id: %w", err)
	}
	t := backend.Tenant{ID: id.String(), Name: name}
	var raw string
	err = db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		// ON CONFLICT makes a retry after a lost commit acknowledgement
		// harmless: the ids are chosen before the transaction.
		err := tx.QueryRow(ctx, `
			INSERT INTO tenants (id, name) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name
			RETURNING created_at`, t.ID, t.Name).Scan(&t.CreatedAt)
		if err != nil {
			return dbError("create tenant", err)
		}
		if raw == "" {
			if raw, err = newKey(); err != nil {
				return err
			}
		}
		_, err = insertKey(ctx, tx, t.ID, raw)
		return err
	})
	if err != nil {
		return backend.Tenant{}, "", err
	}
	return t, raw, nil
}

func insertKey(ctx context.Context, tx pgx.Tx, tenantID, raw string) (backend.APIKey, error) {
	k := backend.APIKey{TenantID: tenantID, Prefix: raw[:prefixLen]}
	id, err := uuid.NewV7()
	if err != nil {
		return k, fmt.Errorf("postgres: key id: %w", err)
	}
	k.ID = id.String()
	err = tx.QueryRow(ctx, `
		INSERT INTO api_keys (id, tenant_id, prefix, hash) VALUES ($1, $2, $3, $4)
		ON CONFLICT (hash) DO UPDATE SET prefix = excluded.prefix
		RETURNING id::text, created_at`, k.ID, tenantID, k.Prefix, hashKey(raw)).Scan(&k.ID, &k.CreatedAt)
	if err != nil {
		return k, dbError("create key", err)
	}
	return k, nil
}

// CreateKey adds a key to a tenant.
func (db *DB) CreateKey(ctx context.Context, tenantID string) (backend.APIKey, string, error) {
	notFound := backend.Errorf(backend.ENOTFOUND, "tenant not found")
	if _, err := uuid.Parse(tenantID); err != nil {
		return backend.APIKey{}, "", notFound
	}
	raw, err := newKey()
	if err != nil {
		return backend.APIKey{}, "", err
	}
	var k backend.APIKey
	err = db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)`, tenantID).Scan(&exists); err != nil {
			return dbError("find tenant", err)
		}
		if !exists {
			return notFound
		}
		k, err = insertKey(ctx, tx, tenantID, raw)
		return err
	})
	if err != nil {
		return backend.APIKey{}, "", err
	}
	return k, raw, nil
}

// RevokeKey revokes a key; revoking twice keeps the first revocation time.
func (db *DB) RevokeKey(ctx context.Context, keyID string) error {
	notFound := backend.Errorf(backend.ENOTFOUND, "key not found")
	if _, err := uuid.Parse(keyID); err != nil {
		return notFound
	}
	return db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, keyID)
		if err != nil {
			return dbError("revoke key", err)
		}
		if tag.RowsAffected() == 0 {
			return notFound
		}
		return nil
	})
}

// tenantUUID checks a tenant id from the caller before it reaches a policy
// cast, where a malformed one would surface as an internal error.
func tenantUUID(tenantID string) error {
	if _, err := uuid.Parse(tenantID); err != nil {
		return backend.Errorf(backend.EUNAUTHORIZED, "unknown tenant")
	}
	return nil
}
