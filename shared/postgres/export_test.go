package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool exposes the store's own connection pool to the tests of this
// package, which look at its connections; tests elsewhere open a pool of
// their own (pgtest.MustOpenPool).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// SendTxAsApp exposes sendTx as the tenant role to the tests of this
// package, which live in postgres_test to use pgtest.
func (db *DB) SendTxAsApp(ctx context.Context, tenantID string, queue func(*pgx.Batch)) error {
	return db.sendTx(ctx, "test", roleApp, tenantID, queue)
}

// InTxAs exposes inTx as any role to the tests of this package.
func (db *DB) InTxAs(ctx context.Context, role, tenantID string, f func(pgx.Tx) error) error {
	return db.inTx(ctx, role, tenantID, f)
}

// SetTenantQueue sets how many requests of one tenant may wait for a slot.
func (db *DB) SetTenantQueue(n int) { db.perTenantQueue = n }

// UnpackInt8 exposes the packed layout of rollup histograms to the tests
// of this package.
var UnpackInt8 = unpackInt8

var (
	PackInt8     = packInt8
	PackFloat8   = packFloat8
	UnpackFloat8 = unpackFloat8
)
