// Package postgres implements backend.Store on PostgreSQL with pgx.
//
// Tenant isolation is the database's job, not only the queries': every
// tenant-scoped transaction switches to role kilometers_app and sets
// app.tenant_id, and row-level security policies on every tenant table
// compare rows against that setting (see migrations/00001_init.sql).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Roles the application works as inside a transaction (see the migration).
const (
	roleApp   = "kilometers_app"
	roleAdmin = "kilometers_admin"
)

// Pool defaults for Lambda behind RDS Proxy: one invocation runs at a time
// per execution environment, so a few connections suffice, and the proxy,
// not the function, holds the long-lived connections to the database. A DSN
// may still override them (pool_max_conns=...).
const (
	defaultMaxConns        = 4
	defaultMaxConnIdleTime = 5 * time.Minute
	defaultMaxConnLifetime = 30 * time.Minute
)

// DB is the PostgreSQL store. It is safe for concurrent use; keep one per
// process (a Lambda keeps it in a package-level variable of main across
// warm invocations).
type DB struct {
	pool *pgxpool.Pool
	// perTenant bounds the transactions one tenant runs at once, so that
	// its slow queries cannot hold every pooled connection.
	perTenant      int
	perTenantQueue int
	mu             sync.Mutex
	inFlight       map[string]*tenantGate // by tenant id
	// alertClient posts team alerts to webhooks (see SetAlertClient).
	alertClient *http.Client
	// kinds caches which kinds of alert rules each tenant has.
	kinds ruleKinds

	// refresh, when set, reads the DSN again after an authentication
	// failure; user and password are then what new connections use.
	refresh        DSNFunc
	credsMu        sync.Mutex
	user, password string

	// clock is when ingest quotas are judged (time.Now unless SetClock).
	clock func() time.Time
}

// SetClock replaces the clock by which ingest quota windows and the
// maintenance job judge time; tests and the benchmark move it instead of
// waiting for a minute or a day to pass. Not safe while requests run.
func (db *DB) SetClock(now func() time.Time) { db.clock = now }

// StatementTimeout bounds every statement of a request; a query that
// takes longer is cancelled and answered 503 (backend.EUNAVAILABLE).
const StatementTimeout = 5 * time.Second

var _ backend.Store = (*DB)(nil)

// Open connects to dsn. It does not fail when the database is down: the pool
// connects lazily, and Ping reports EUNAVAILABLE until it is back.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, nil)
}

// DSNFunc returns the DSN to connect with; fresh asks for it to be read
// again from where it is kept (a secret), not from a cache, because the
// database refused the credentials it had.
type DSNFunc func(ctx context.Context, fresh bool) (string, error)

// OpenRefreshing is Open over a DSN that can change its credentials (RDS
// rotates the password in its secret): when the database refuses a new
// connection's credentials, the DSN is read again, fresh, and the work
// tried once more with what it says, so a rotation costs one slow request
// instead of failures until the next cold start.
func OpenRefreshing(ctx context.Context, dsn DSNFunc) (*DB, error) {
	s, err := dsn(ctx, false)
	if err != nil {
		return nil, err
	}
	return open(ctx, s, dsn)
}

func open(ctx context.Context, dsn string, refresh DSNFunc) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	if !dsnHas(cfg.ConnString(), "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if !dsnHas(cfg.ConnString(), "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = defaultMaxConnIdleTime
	}
	if !dsnHas(cfg.ConnString(), "pool_max_conn_lifetime") {
		cfg.MaxConnLifetime = defaultMaxConnLifetime
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	perTenant := max(1, int(cfg.MaxConns)/2)
	db := &DB{perTenant: perTenant, perTenantQueue: 8 * perTenant, inFlight: map[string]*tenantGate{}, refresh: refresh, clock: time.Now}
	if refresh != nil {
		cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
			db.credsMu.Lock()
			defer db.credsMu.Unlock()
			if db.user != "" {
				cc.User, cc.Password = db.user, db.password
			}
			return nil
		}
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		registerColumnArrays(conn)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	db.pool = pool
	return db, nil
}

// reloadCredentials reads the DSN afresh and makes new connections log in
// with its user and password.
func (db *DB) reloadCredentials(ctx context.Context) error {
	dsn, err := db.refresh(ctx, true)
	if err != nil {
		return fmt.Errorf("postgres: read the credentials again: %w", err)
	}
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("postgres: parse the refreshed dsn: %w", err)
	}
	db.credsMu.Lock()
	db.user, db.password = cc.User, cc.Password
	db.credsMu.Unlock()
	return nil
}

// authFailed reports the database refusing a connection's credentials.
func authFailed(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// enter takes one of tenantID's slots (see DB.perTenant), waiting for one
// while the tenant has fewer than perTenantQueue requests waiting already;
// past that it fails with EUNAVAILABLE at once: a client told to retry
// later does better than one queued behind its own slow queries.
func (db *DB) enter(ctx context.Context, tenantID string) (leave func(), err error) {
	if tenantID == "" {
		return func() {}, nil
	}
	db.mu.Lock()
	g := db.inFlight[tenantID]
	if g == nil {
		g = &tenantGate{slots: make(chan struct{}, db.perTenant)}
		db.inFlight[tenantID] = g
	}
	if g.users >= db.perTenant+db.perTenantQueue {
		db.mu.Unlock()
		return nil, backend.Errorf(backend.EUNAVAILABLE, "too many concurrent requests for this tenant (%d at a time, %d waiting); retry shortly",
			db.perTenant, db.perTenantQueue)
	}
	g.users++
	db.mu.Unlock()
	release := func() {
		db.mu.Lock()
		defer db.mu.Unlock()
		if g.users--; g.users == 0 {
			delete(db.inFlight, tenantID)
		}
	}
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("postgres: wait for a tenant slot: %w", ctx.Err())
	}
	return func() { <-g.slots; release() }, nil
}

// tenantGate is one tenant's share of the pool: slots holds a token per
// running request, users counts running and waiting ones.
type tenantGate struct {
	slots chan struct{}
	users int
}

// dsnHas reports whether the DSN sets param itself, so explicit settings
// win over the Lambda defaults.
func dsnHas(dsn, param string) bool { return strings.Contains(dsn, param+"=") }

// Close releases every connection.
func (db *DB) Close() { db.pool.Close() }

// Migrate applies the embedded migrations. A Postgres advisory lock held for
// the session makes concurrent callers (two Lambdas starting at once) wait
// for each other instead of racing.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return dbError("migrate", err)
	}
	return nil
}

// Ping checks that the database answers. When every pooled connection is
// busy (slow queries, not a dead database), it asks on a connection of its
// own instead of queueing behind them, so a busy pool never reads as an
// unreachable database.
func (db *DB) Ping(ctx context.Context) error {
	if st := db.pool.Stat(); st.AcquiredConns() >= st.MaxConns() {
		cc := db.pool.Config().ConnConfig.Copy()
		db.credsMu.Lock()
		if db.user != "" {
			cc.User, cc.Password = db.user, db.password
		}
		db.credsMu.Unlock()
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return dbError("ping", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return dbError("ping", conn.Ping(ctx))
	}
	return db.retry(ctx, func() error {
		if err := db.pool.Ping(ctx); err != nil {
			return dbError("ping", err)
		}
		return nil
	})
}

// retry runs f again once when it failed because its connection broke (a
// restarted database, a terminated backend) or lost a deadlock. A broken
// connection rarely breaks alone: when the server restarts, every pooled
// connection is dead, and the pool only notices one at a time. So the pool
// is reset first (idle connections closed now, busy ones when released)
// and the second attempt dials afresh. Callers only use retry for work
// that is safe to repeat.
func (db *DB) retry(ctx context.Context, f func() error) error {
	err := f()
	if err != nil && retryable(err) && ctx.Err() == nil {
		if backend.ErrorCode(err) == backend.EUNAVAILABLE {
			db.pool.Reset()
		}
		err = f()
	}
	// Refused credentials (perhaps met only on the fresh connection of the
	// retry above): read them again and try once more.
	if err != nil && authFailed(err) && db.refresh != nil && ctx.Err() == nil {
		if rerr := db.reloadCredentials(ctx); rerr != nil {
			return fmt.Errorf("%w (and %w)", err, rerr)
		}
		db.pool.Reset()
		err = f()
	}
	return err
}

// retryable reports a failure that a second attempt may not meet: a broken
// connection, or a deadlock or serialization failure between concurrent
// batches of one tenant.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
		return true
	}
	if errors.As(err, &pgErr) && pgErr.Code == "57014" {
		return false // a statement timeout: the same query would time out again
	}
	if authFailed(err) {
		return false // the same credentials would be refused again
	}
	return backend.ErrorCode(err) == backend.EUNAVAILABLE
}

// inTx runs f in a transaction working as role with app.tenant_id set to
// tenantID (empty for the admin role), retrying once on a broken
// connection or a deadlock. f must be safe to repeat.
func (db *DB) inTx(ctx context.Context, role, tenantID string, f func(pgx.Tx) error) error {
	leave, err := db.enter(ctx, tenantID)
	if err != nil {
		return err
	}
	defer leave()
	return db.retry(ctx, func() error {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			return dbError("begin", err)
		}
		// set_config(..., true) ends with the transaction, so a pooled (or
		// RDS Proxy multiplexed) connection never carries one tenant's
		// identity into another's request.
		if _, err := tx.Exec(ctx, setIdentity, role, tenantID, statementTimeout); err != nil {
			tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the error that matters is err
			return dbError("set identity", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
		if err := f(tx); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return dbError("commit", err)
		}
		return nil
	})
}

// setIdentity starts every transaction (see inTx and sendTx): the role,
// the tenant and the statement timeout travel as parameters, never spliced
// into the text, and set_config(..., true) ends with the transaction like
// SET LOCAL.
const setIdentity = `SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true),
	set_config('statement_timeout', $3, true)`

// statementTimeout is StatementTimeout as PostgreSQL reads it.
var statementTimeout = pgMillis(StatementTimeout)

// pgMillis writes d as a PostgreSQL duration setting.
func pgMillis(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// sendTx runs the statements queue adds to a batch as role with
// app.tenant_id set to tenantID, in one round trip: the identity, the
// statements and the end of the transaction travel in one pipeline that
// PostgreSQL runs as one implicit transaction, committed at its Sync or
// rolled back whole when any statement fails (pgx.Conn.SendBatch). inTx
// pays four round trips (BEGIN, the identity, the work, COMMIT) for the same; on a busy
// database each one waits for the server to be scheduled, and ingest and
// authentication, which know all their statements up front, do not need
// to. The batch is built afresh for each attempt, so its callbacks may
// reset what they fill. Like inTx, it retries once on a broken connection
// or a deadlock; the work must be safe to repeat.
func (db *DB) sendTx(ctx context.Context, op, role, tenantID string, queue func(*pgx.Batch)) error {
	return db.sendTxFor(ctx, op, role, tenantID, statementTimeout, queue)
}

// sendTxFor is sendTx with timeout (pgMillis) as the statement timeout.
func (db *DB) sendTxFor(ctx context.Context, op, role, tenantID, timeout string, queue func(*pgx.Batch)) error {
	leave, err := db.enter(ctx, tenantID)
	if err != nil {
		return err
	}
	defer leave()
	return db.retry(ctx, func() error {
		var b pgx.Batch
		b.Queue(setIdentity, role, tenantID, timeout)
		queue(&b)
		if err := db.pool.SendBatch(ctx, &b).Close(); err != nil {
			return dbError(op, err)
		}
		return nil
	})
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on in every supported PostgreSQL).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// dbError wraps err with op and, when it means the database cannot be
// reached, with backend.EUNAVAILABLE; context errors pass through so callers
// can tell a cancelled request from a broken database.
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	var be *backend.Error
	if errors.As(err, &be) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled: the statement timeout
		return fmt.Errorf("postgres: %s: %w: %w", op, backend.Errorf(backend.EUNAVAILABLE,
			"the query took longer than %s; narrow it (since, until, session) or retry later", StatementTimeout), err)
	}
	if authFailed(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, backend.Errorf(backend.EUNAVAILABLE, "database unavailable (credentials refused)"), err)
	}
	if unavailable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, backend.Errorf(backend.EUNAVAILABLE, "database unavailable"), err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08", // connection exception
			pgErr.Code == "57P01", // admin_shutdown (pg_terminate_backend)
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connErr) ||
		pgconn.SafeToRetry(err) || errors.Is(err, sql.ErrConnDone) ||
		isClosedConn(err)
}

// isClosedConn catches the ways a connection that the server closed under
// us shows up (EOF mid-read, or pgx's closed-conn error).
func isClosedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed)
}
