package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// IngestGenerated stores events that fillSQL writes into the staging table
// km_staging (columns as in stagingColumns), through the same insert and
// rollup statement as Ingest. It exists for the benchmark, which generates
// millions of events in SQL instead of sending them over COPY; callers must
// compute latency_bucket with stats.Bucket as Ingest does.
func (db *DB) IngestGenerated(ctx context.Context, tenantID, fillSQL string, args ...any) (int, error) {
	if err := tenantUUID(tenantID); err != nil {
		return 0, err
	}
	var inserted int
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		// Bulk loads of tens of thousands of rows run longer than a
		// request's StatementTimeout, by design.
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return dbError("lift statement timeout", err)
		}
		if _, err := tx.Exec(ctx, createStaging); err != nil {
			return dbError("create staging", err)
		}
		if _, err := tx.Exec(ctx, fillSQL, args...); err != nil {
			return fmt.Errorf("postgres: fill staging: %w", err)
		}
		return dbError("insert events", tx.QueryRow(ctx, insertStaged, tenantID).Scan(&inserted))
	})
	return inserted, err
}
