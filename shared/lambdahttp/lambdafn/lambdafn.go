// Package lambdafn is the wiring every Kilometers Lambda function shares,
// so that each functions/<name>/main.go is one line: configuration from
// the environment (package dbconfig), a PostgreSQL store opened lazily, and
// either a slice of the HTTP API behind the API Gateway adapter, the
// migrations behind the custom resource handler, or one of the scheduled
// jobs (maintenance, team alerts).
package lambdafn

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kilometers-ai/kilometers/shared/awssecrets"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp/customresource"
	"github.com/kilometers-ai/kilometers/shared/postgres"
)

// Logger is the log every function writes: JSON lines on stderr, which
// Lambda ships to CloudWatch.
func Logger() *slog.Logger { return slog.New(slog.NewJSONHandler(os.Stderr, nil)) }

// API returns the handler of a function serving routes. Nothing touches
// the network here: the store resolves its DSN (maybe from Secrets Manager)
// and opens its pool on first use, and retries on the next request when
// that failed. So a cold start while the database or the secret is
// unreachable answers 503 instead of crashing, and the same execution
// environment recovers once they are back.
func API(getenv func(string) string, routes httpapi.Group) lambdahttp.HandlerFunc {
	cfg := resolver(getenv)
	h := httpapi.New(httpapi.Config{
		Store:  dbconfig.NewLazyStore(dbconfig.Postgres(cfg)),
		Routes: routes,
		// Only the routes in Admin ever ask for the token, so functions
		// without them never read its secret.
		AdminToken: cfg.AdminToken,
		Logger:     Logger(),
	})
	return lambdahttp.Handler(h)
}

// resolver is the functions' configuration, with secrets from AWS Secrets
// Manager.
func resolver(getenv func(string) string) *dbconfig.Resolver {
	return dbconfig.New(getenv, awssecrets.New())
}

// ScheduledActor is who the audit trail names for a scheduled maintenance
// run (functions/maintenance, functions/local's timer).
var ScheduledActor = backend.Actor{Admin: "schedule", Address: "scheduler"}

// Maintenance returns the handler of the maintenance function, which an
// EventBridge schedule invokes (its event is ignored): it runs the
// maintenance job (backend.Admin.Maintain) over a store opened on first
// use and kept for the next invocations, and logs what it did. An error
// fails the invocation, which the function's alarm counts.
func Maintenance(getenv func(string) string) func(ctx context.Context, _ json.RawMessage) (backend.MaintenanceResult, error) {
	store := dbconfig.NewLazyStore(dbconfig.Postgres(resolver(getenv)))
	logger := Logger()
	return func(ctx context.Context, _ json.RawMessage) (backend.MaintenanceResult, error) {
		res, err := store.Maintain(ctx, ScheduledActor)
		if err != nil {
			logger.ErrorContext(ctx, "maintenance failed", "err", err)
			return res, fmt.Errorf("maintenance: %w", err)
		}
		logger.InfoContext(ctx, "maintenance", "created", res.Created, "dropped", res.Dropped, "duration_ms", res.DurationMS)
		return res, nil
	}
}

// AlertsRunMargin is how long before the invocation's deadline a run of
// the team alerts stops starting work, so that it returns its counts
// instead of being killed mid-delivery: a delivery it did not reach stays
// due in the outbox and the next minute's run takes it.
const AlertsRunMargin = 5 * time.Second

// Alerts returns the handler of the alerts function, which an EventBridge
// schedule invokes every minute (its event is ignored): the team alerts'
// window rules, then the webhook deliveries that are due
// (backend.Alerting.RunAlerts), the same run as POST
// /api/admin/alerts/evaluate and functions/local's timer. now is the clock
// (time.Now in main). An error fails the invocation, which the function's
// alarm counts; the tenants whose runs succeeded keep their results.
func Alerts(getenv func(string) string, now func() time.Time) func(ctx context.Context, _ json.RawMessage) (backend.AlertRun, error) {
	store := dbconfig.NewLazyStore(dbconfig.Postgres(resolver(getenv)))
	logger := Logger()
	return func(ctx context.Context, _ json.RawMessage) (backend.AlertRun, error) {
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline.Add(-AlertsRunMargin))
			defer cancel()
		}
		run, err := store.RunAlerts(ctx, now().UTC())
		if err != nil {
			logger.ErrorContext(ctx, "alerts run failed", "err", err, "tenants", run.Tenants)
			return run, fmt.Errorf("alerts: %w", err)
		}
		logger.InfoContext(ctx, "alerts run", "tenants", run.Tenants, "fired", run.Fired,
			"delivered", run.Delivered, "failed", run.Failed, "given_up", run.GivenUp)
		return run, nil
	}
}

// Migrate returns the handler of the migrate function: a CloudFormation
// custom resource (or a direct invoke) that applies the embedded migrations.
func Migrate(getenv func(string) string) func(ctx context.Context, payload json.RawMessage) (customresource.Result, error) {
	return customresource.Handler(MigrateFunc(resolver(getenv)), nil, Logger())
}

// MigrateFunc applies the migrations to the database r resolves, over a
// connection pool that lives only for the call.
func MigrateFunc(r *dbconfig.Resolver) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		dsn, err := r.DSN(ctx)
		if err != nil {
			return fmt.Errorf("resolve database: %w", err)
		}
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return fmt.Errorf("open database: %w", err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	}
}
