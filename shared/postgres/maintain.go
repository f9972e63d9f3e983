package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// MaintenanceTimeout bounds one maintenance run. Dropping or creating a
// partition is quick whatever it holds; the bound is for a run stuck
// behind locks, which km_maintain's lock_timeout already cuts short.
const MaintenanceTimeout = 2 * time.Minute

// Maintain runs km_maintain (migrations/00021_time_partitions.sql) at the
// DB's clock, in one transaction with its audit entry: the largest
// retentions are read as the admin role, the partitions made and dropped
// as the connection's own user, which owns them.
func (db *DB) Maintain(ctx context.Context, a backend.Actor) (backend.MaintenanceResult, error) {
	start := time.Now()
	res := backend.MaintenanceResult{Created: []string{}, Dropped: []string{}}
	err := db.retry(ctx, func() error {
		res.Created, res.Dropped = res.Created[:0], res.Dropped[:0]
		tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; SELECT set_config('statement_timeout', " +
			quoteLiteral(fmt.Sprintf("%dms", MaintenanceTimeout.Milliseconds())) + ", true), set_config('role', " + quoteLiteral(roleAdmin) + ", true)"})
		if err != nil {
			return dbError("maintenance: begin", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
		var eventDays, rollupDays *int32
		if err := tx.QueryRow(ctx, `SELECT max(event_retention_days), max(rollup_retention_days) FROM tenants`).Scan(&eventDays, &rollupDays); err != nil {
			return dbError("maintenance: retention", err)
		}
		if _, err := tx.Exec(ctx, `RESET ROLE`); err != nil {
			return dbError("maintenance", err)
		}
		rows, err := tx.Query(ctx, `SELECT action, partition FROM km_maintain($1, $2, $3)`, db.clock(), eventDays, rollupDays)
		if err != nil {
			return dbError("maintenance", err)
		}
		for rows.Next() {
			var action, partition string
			if err := rows.Scan(&action, &partition); err != nil {
				rows.Close()
				return dbError("maintenance", err)
			}
			if action == "dropped" {
				res.Dropped = append(res.Dropped, partition)
			} else {
				res.Created = append(res.Created, partition)
			}
		}
		if err := rows.Err(); err != nil {
			return dbError("maintenance", err)
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('role', $1, true)`, roleAdmin); err != nil {
			return dbError("maintenance", err)
		}
		if err := audit(ctx, tx, a, backend.ActionMaintenance, "", "", map[string]any{"created": res.Created, "dropped": res.Dropped}); err != nil {
			return err
		}
		return dbError("maintenance: commit", tx.Commit(ctx))
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available: km_maintain's lock_timeout
			return backend.MaintenanceResult{}, fmt.Errorf("%w: %w", backend.Errorf(backend.EUNAVAILABLE,
				"the maintenance job waited too long for a table lock (long queries running); it changed nothing, try again"), err)
		}
		return backend.MaintenanceResult{}, err
	}
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}
