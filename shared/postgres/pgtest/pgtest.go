// Package pgtest gives tests a fresh, migrated PostgreSQL database of their
// own: created with a random name from the server testenv finds, dropped
// when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// MustOpenDB returns a store on a new migrated database; the database is
// dropped at cleanup.
func MustOpenDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	db, _ := MustOpenDBDSN(tb)
	return db
}

// MustOpenDBDSN is MustOpenDB that also returns the new database's DSN, for
// tests that open more connections to it.
func MustOpenDBDSN(tb testing.TB) (*postgres.DB, string) {
	tb.Helper()
	dsn := MustCreateDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		tb.Fatalf("open %s: %v", dsn, err)
	}
	tb.Cleanup(db.Close) // runs before the drop registered earlier
	if err := db.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return db, dsn
}

// MustOpenPool opens a connection pool of the test's own on dsn (a
// database MustOpenDBDSN or MustCreateDatabase made), closed at cleanup,
// for tests that read or change tables the store gives no access to.
func MustOpenPool(tb testing.TB, dsn string) *pgxpool.Pool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		tb.Fatalf("open pool on %s: %v", dsn, err)
	}
	tb.Cleanup(pool.Close) // runs before the database is dropped
	return pool
}

// MustCreateDatabase creates an empty database with a random name and
// returns its DSN; it is dropped (with any connections left) at cleanup.
func MustCreateDatabase(tb testing.TB) string {
	tb.Helper()
	admin := testenv.DatabaseURL(tb)
	name, dsn, err := CreateDatabase(context.Background(), admin)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := DropDatabase(context.Background(), admin, name); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	return dsn
}

// CreateDatabase creates a database named km_test_<random> on the server of
// adminDSN and returns its name and DSN. The benchmark uses it too.
func CreateDatabase(ctx context.Context, adminDSN string) (name, dsn string, err error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("pgtest: random name: %w", err)
	}
	name = "km_test_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return "", "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("pgtest: create database: %w", err)
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		return "", "", fmt.Errorf("pgtest: parse dsn: %w", err)
	}
	u.Path = "/" + name
	return name, u.String(), nil
}

// DropDatabase drops a database made by CreateDatabase, ending any sessions
// still connected to it.
func DropDatabase(ctx context.Context, adminDSN, name string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}
