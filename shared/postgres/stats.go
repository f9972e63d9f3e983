package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Stats answers from the rollups, never from events: whole hours of the
// window come from rollup_hour and the minutes at either edge from
// rollup_minute, so the rows read grow with the window and the number of
// (server, method, tool) combinations, not with the number of events. The
// rows are folded by stats.Rollups, by the rules the local Aggregator
// applies to events.
func (db *DB) Stats(ctx context.Context, tenantID string, q stats.Query) (stats.Stats, error) {
	if err := tenantUUID(tenantID); err != nil {
		return stats.Stats{}, err
	}
	q = q.Align(time.Now()) // a no-op on an aligned query
	since, until := q.Since, q.Until
	// Whole hours [h0, h1); edges [since, h0) and [h1, until) in minutes.
	h0 := since.Truncate(time.Hour)
	if !h0.Equal(since) {
		h0 = h0.Add(time.Hour)
	}
	h1 := until.Truncate(time.Hour)
	if !h0.Before(h1) {
		h0, h1 = until, until // no whole hour: everything from minutes
	}
	var acc *stats.Rollups
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		// Anew for each attempt: a transaction retried after a broken
		// connection reads every row again.
		acc = stats.NewRollups(since, until, q.Server)
		var batch pgx.Batch
		batch.Queue(`
			SELECT bucket, method, tool, events, requests, calls, errors, bytes, cost_usd, tokens,
				risk_medium, risk_high, max_score, hist, hist_tail, min_ms, max_ms, samples
			FROM rollup_hour
			WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND bucket >= $2 AND bucket < $3 AND ($6 = '' OR server = $6)
			UNION ALL
			SELECT bucket, method, tool, events, requests, calls, errors, bytes, cost_usd, tokens,
				risk_medium, risk_high, max_score, hist, hist_tail, min_ms, max_ms, samples
			FROM rollup_minute
			WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND ($6 = '' OR server = $6)
				AND ((bucket >= $4 AND bucket < $2) OR (bucket >= $3 AND bucket < $5))`,
			tenantID, h0, h1, since, until, q.Server).Query(func(rows pgx.Rows) error {
			return addRollups(acc, rows)
		})
		// Without a server filter, the rows under the server '' (the
		// sessions of any server, kept by ingest): one row per session
		// and bucket instead of one per server it used.
		batch.Queue(`
			SELECT count(*), least(coalesce(sum(s.dropped_events), 0), 9223372036854775807)::bigint
			FROM (
				SELECT session_id FROM session_hour
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND bucket >= $2 AND bucket < $3 AND server = $6
				UNION
				SELECT session_id FROM session_minute
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND server = $6
					AND ((bucket >= $4 AND bucket < $2) OR (bucket >= $3 AND bucket < $5))
			) AS x
			LEFT JOIN sessions AS s ON s.tenant_id = $1 AND s.id = x.session_id`,
			tenantID, h0, h1, since, until, q.Server).QueryRow(func(row pgx.Row) error {
			var sessions, dropped int64
			if err := row.Scan(&sessions, &dropped); err != nil {
				return err
			}
			acc.AddSessions(sessions, dropped)
			return nil
		})
		// The tools risk reasons named as poisoned or changed, from the
		// tool alert rollups (migration 00024) as the counts come from the
		// rollups above: whole hours and the minutes at either edge.
		batch.Queue(`
			SELECT tool, kind, max(max_score), sum(high)::bigint, sum(medium)::bigint FROM (
				SELECT tool, kind, max_score, high, medium FROM tool_alert_hour
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND bucket >= $2 AND bucket < $3 AND ($6 = '' OR server = $6)
				UNION ALL
				SELECT tool, kind, max_score, high, medium FROM tool_alert_minute
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND ($6 = '' OR server = $6)
					AND ((bucket >= $4 AND bucket < $2) OR (bucket >= $3 AND bucket < $5))
			) AS a GROUP BY tool, kind`,
			tenantID, h0, h1, since, until, q.Server).Query(func(rows pgx.Rows) error {
			return addToolAlerts(acc, rows)
		})
		if !acc.SeriesFromRows() {
			batch.Queue(`
				SELECT bucket, sum(events)::bigint, sum(errors)::bigint FROM series_minute
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND bucket >= $2 AND bucket < $3 AND ($4 = '' OR server = $4)
				GROUP BY bucket`, tenantID, since, until, q.Server).Query(func(rows pgx.Rows) error {
				return addSeries(acc, rows)
			})
		}
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return dbError("stats", err)
		}
		return nil
	})
	if err != nil {
		return stats.Stats{}, err
	}
	return acc.Result(), nil
}

// addToolAlerts feeds the tool alert rollups' sums per tool and kind.
func addToolAlerts(acc *stats.Rollups, rows pgx.Rows) error {
	var c stats.ToolAlertCount
	_, err := pgx.ForEachRow(rows, []any{&c.Tool, &c.Kind, &c.MaxScore, &c.High, &c.Medium}, func() error {
		acc.AddToolAlert(c)
		return nil
	})
	return err
}

// addRollups feeds rollup rows, in the columns of the query above. The
// packed columns are read in place (pgtype.DriverBytes, valid until the
// next row) and unpacked into buffers the rows share.
func addRollups(acc *stats.Rollups, rows pgx.Rows) error {
	var (
		r                   stats.Row
		hist, tail, samples pgtype.DriverBytes
		histBuf, tailBuf    []int64
		samplesBuf          []float64
	)
	_, err := pgx.ForEachRow(rows, []any{&r.Bucket, &r.Method, &r.Tool, &r.Events, &r.Requests, &r.Calls, &r.Errors,
		&r.Bytes, &r.CostUSD, &r.Tokens, &r.RiskMedium, &r.RiskHigh, &r.MaxScore, &hist, &tail, &r.MinMS, &r.MaxMS, &samples}, func() error {
		var err error
		if histBuf, err = unpackInt8(histBuf[:0], hist); err != nil {
			return err
		}
		if tailBuf, err = unpackInt8(tailBuf[:0], tail); err != nil {
			return err
		}
		r.Hist, r.HistTail, r.Samples = histBuf, tailBuf, nil
		if samples != nil { // NULL: more than stats.ExactSample latencies
			if samplesBuf, err = unpackFloat8(samplesBuf[:0], samples); err != nil {
				return err
			}
			r.Samples = samplesBuf
		}
		acc.Add(&r)
		return nil
	})
	return err
}

// addSeries feeds series_minute's per-minute sums.
func addSeries(acc *stats.Rollups, rows pgx.Rows) error {
	var (
		bucket         time.Time
		events, errors int64
	)
	_, err := pgx.ForEachRow(rows, []any{&bucket, &events, &errors}, func() error {
		acc.AddSeries(bucket, events, errors)
		return nil
	})
	return err
}
