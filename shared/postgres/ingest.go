package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// stagingColumns are the columns COPY fills; the insert below copies them
// into events with the tenant id added.
var stagingColumns = []string{
	"id", "session_id", "seq", "ts", "direction", "kind", "server", "rpc_id", "method", "tool",
	"latency_ms", "latency_bucket", "error_code", "is_error", "failed", "size",
	"risk_score", "risk_level", "risk_rank", "risk_reasons", "cost_usd", "tokens",
	"payload", "payload_truncated",
}

const createStaging = `
CREATE TEMP TABLE km_staging (
    id uuid, session_id uuid, seq bigint, ts timestamptz, direction text, kind text,
    server text, rpc_id text, method text, tool text,
    latency_ms double precision, latency_bucket integer, error_code integer, is_error boolean,
    failed boolean, size bigint, risk_score integer, risk_level text, risk_rank smallint,
    risk_reasons text[], cost_usd double precision, tokens bigint,
    payload jsonb, payload_truncated boolean
) ON COMMIT DROP`

// insertEvents moves the staged events into events, skipping ids the tenant
// already has, and adds only the rows actually inserted to the rollups, all
// in one statement. A rollup's packed histogram may list a bucket more than
// once (readers sum them): appending is cheap, and the row is compacted
// with km_hist_merge only when it grows past 1024 entries, which bounds
// what Stats reads. ORDER BY keeps the rollup rows locked in one order so
// concurrent batches of a tenant queue instead of deadlocking.
const insertEvents = `
WITH ins AS (
    INSERT INTO events (tenant_id, id, session_id, seq, ts, direction, kind, server, rpc_id, method, tool,
        latency_ms, latency_bucket, error_code, is_error, failed, size,
        risk_score, risk_level, risk_rank, risk_reasons, cost_usd, tokens, payload, payload_truncated)
    SELECT $1, id, session_id, seq, ts, direction, kind, server, rpc_id, method, tool,
        latency_ms, latency_bucket, error_code, is_error, failed, size,
        risk_score, risk_level, risk_rank, risk_reasons, cost_usd, tokens, payload, payload_truncated
    FROM km_staging
    ON CONFLICT (tenant_id, id) DO NOTHING
    RETURNING ts, session_id, server, method, tool, kind, failed, size, cost_usd, tokens,
        risk_score, risk_rank, latency_bucket
), g AS (
    SELECT date_trunc('minute', ts, 'UTC') AS minute, server, method, tool, latency_bucket,
        count(*) AS events,
        count(*) FILTER (WHERE kind = 'request') AS requests,
        count(*) FILTER (WHERE kind IN ('request', 'notification')) AS calls,
        count(*) FILTER (WHERE failed) AS errors,
        sum(size) AS bytes, sum(cost_usd) AS cost_usd, sum(tokens) AS tokens,
        count(*) FILTER (WHERE risk_rank = 1) AS risk_medium,
        count(*) FILTER (WHERE risk_rank = 2) AS risk_high,
        max(coalesce(risk_score, 0)) AS max_score
    FROM ins GROUP BY 1, 2, 3, 4, 5
), gh AS (
    SELECT date_trunc('hour', minute, 'UTC') AS hour, server, method, tool, latency_bucket,
        sum(events) AS events, sum(requests) AS requests, sum(calls) AS calls, sum(errors) AS errors,
        sum(bytes) AS bytes, sum(cost_usd) AS cost_usd, sum(tokens) AS tokens,
        sum(risk_medium) AS risk_medium, sum(risk_high) AS risk_high, max(max_score) AS max_score
    FROM g GROUP BY 1, 2, 3, 4, 5
), um AS (
    INSERT INTO rollup_minute AS r (tenant_id, bucket, server, method, tool, events, requests, calls, errors,
        bytes, cost_usd, tokens, risk_medium, risk_high, max_score, hist)
    SELECT $1, minute, server, method, tool, sum(events), sum(requests), sum(calls), sum(errors),
        sum(bytes), sum(cost_usd), sum(tokens), sum(risk_medium), sum(risk_high), max(max_score),
        coalesce(array_agg((latency_bucket::bigint << 40) | events ORDER BY latency_bucket)
            FILTER (WHERE latency_bucket IS NOT NULL), '{}')
    FROM g GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5
    ON CONFLICT (tenant_id, bucket, server, method, tool) DO UPDATE SET
        events = r.events + excluded.events, requests = r.requests + excluded.requests,
        calls = r.calls + excluded.calls, errors = r.errors + excluded.errors,
        bytes = r.bytes + excluded.bytes, cost_usd = r.cost_usd + excluded.cost_usd,
        tokens = r.tokens + excluded.tokens, risk_medium = r.risk_medium + excluded.risk_medium,
        risk_high = r.risk_high + excluded.risk_high, max_score = greatest(r.max_score, excluded.max_score),
        hist = CASE WHEN cardinality(excluded.hist) = 0 THEN r.hist
                    WHEN cardinality(r.hist) + cardinality(excluded.hist) > 1024 THEN km_hist_merge(r.hist, excluded.hist)
                    ELSE r.hist || excluded.hist END
), uh AS (
    INSERT INTO rollup_hour AS r (tenant_id, bucket, server, method, tool, events, requests, calls, errors,
        bytes, cost_usd, tokens, risk_medium, risk_high, max_score, hist)
    SELECT $1, hour, server, method, tool, sum(events), sum(requests), sum(calls), sum(errors),
        sum(bytes), sum(cost_usd), sum(tokens), sum(risk_medium), sum(risk_high), max(max_score),
        coalesce(array_agg((latency_bucket::bigint << 40) | events::bigint ORDER BY latency_bucket)
            FILTER (WHERE latency_bucket IS NOT NULL), '{}')
    FROM gh GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5
    ON CONFLICT (tenant_id, bucket, server, method, tool) DO UPDATE SET
        events = r.events + excluded.events, requests = r.requests + excluded.requests,
        calls = r.calls + excluded.calls, errors = r.errors + excluded.errors,
        bytes = r.bytes + excluded.bytes, cost_usd = r.cost_usd + excluded.cost_usd,
        tokens = r.tokens + excluded.tokens, risk_medium = r.risk_medium + excluded.risk_medium,
        risk_high = r.risk_high + excluded.risk_high, max_score = greatest(r.max_score, excluded.max_score),
        hist = CASE WHEN cardinality(excluded.hist) = 0 THEN r.hist
                    WHEN cardinality(r.hist) + cardinality(excluded.hist) > 1024 THEN km_hist_merge(r.hist, excluded.hist)
                    ELSE r.hist || excluded.hist END
), ss AS (
    INSERT INTO series_minute AS r (tenant_id, bucket, server, events, errors)
    SELECT $1, minute, server, sum(events), sum(errors) FROM g GROUP BY 2, 3 ORDER BY 2, 3
    ON CONFLICT (tenant_id, bucket, server) DO UPDATE SET
        events = r.events + excluded.events, errors = r.errors + excluded.errors
), sm AS (
    INSERT INTO session_minute (tenant_id, bucket, server, session_id)
    SELECT DISTINCT $1::uuid, date_trunc('minute', ts, 'UTC'), server, session_id FROM ins
    ON CONFLICT DO NOTHING
), sh AS (
    INSERT INTO session_hour (tenant_id, bucket, server, session_id)
    SELECT DISTINCT $1::uuid, date_trunc('hour', ts, 'UTC'), server, session_id FROM ins
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM ins`

// upsertSession records a session; a later report of the same session
// (the monitor sends one at start and one at exit) fills in what it knows:
// the latest end wins, with its exit code, and the dropped count only grows.
const upsertSession = `
INSERT INTO sessions AS s (tenant_id, id, server, server_name, server_version, client_name, client_version,
    protocol_version, command, host, started_at, ended_at, exit_code, dropped_events)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (tenant_id, id) DO UPDATE SET
    server = coalesce(nullif(excluded.server, ''), s.server),
    server_name = coalesce(nullif(excluded.server_name, ''), s.server_name),
    server_version = coalesce(nullif(excluded.server_version, ''), s.server_version),
    client_name = coalesce(nullif(excluded.client_name, ''), s.client_name),
    client_version = coalesce(nullif(excluded.client_version, ''), s.client_version),
    protocol_version = coalesce(nullif(excluded.protocol_version, ''), s.protocol_version),
    command = coalesce(excluded.command, s.command),
    host = coalesce(nullif(excluded.host, ''), s.host),
    started_at = least(s.started_at, excluded.started_at),
    ended_at = CASE WHEN excluded.ended_at >= coalesce(s.ended_at, '-infinity') THEN excluded.ended_at ELSE s.ended_at END,
    exit_code = CASE WHEN excluded.ended_at >= coalesce(s.ended_at, '-infinity') THEN excluded.exit_code ELSE s.exit_code END,
    dropped_events = greatest(s.dropped_events, excluded.dropped_events)`

// Ingest stores a batch in one transaction: sessions upserted, events
// staged with COPY and inserted with ON CONFLICT DO NOTHING, rollups
// updated for the inserted events only.
func (db *DB) Ingest(ctx context.Context, tenantID string, b event.Batch) (backend.IngestResult, error) {
	if err := tenantUUID(tenantID); err != nil {
		return backend.IngestResult{}, err
	}
	if len(b.Events) > backend.MaxBatchEvents {
		return backend.IngestResult{}, backend.Errorf(backend.ETOOLARGE, "more than %d events in one batch", backend.MaxBatchEvents)
	}
	rows, err := stagingRows(b.Events)
	if err != nil {
		return backend.IngestResult{}, err
	}
	var inserted int
	// A retry after a broken connection is safe: the batch either
	// committed (its events now count as duplicates) or left no trace.
	err = db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		if len(b.Sessions) > 0 {
			var batch pgx.Batch
			for i := range b.Sessions {
				s := &b.Sessions[i]
				batch.Queue(upsertSession, tenantID, s.ID, s.Server, s.ServerName, s.ServerVersion,
					s.ClientName, s.ClientVersion, s.ProtocolVersion, s.Command, s.Host,
					s.StartedAt, s.EndedAt, s.ExitCode, s.DroppedEvents)
			}
			if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
				return dbError("upsert sessions", err)
			}
		}
		if len(rows) == 0 {
			inserted = 0
			return nil
		}
		if _, err := tx.Exec(ctx, createStaging); err != nil {
			return dbError("create staging", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"km_staging"}, stagingColumns, pgx.CopyFromRows(rows)); err != nil {
			return dbError("copy events", err)
		}
		if err := tx.QueryRow(ctx, insertEvents, tenantID).Scan(&inserted); err != nil {
			return dbError("insert events", err)
		}
		return nil
	})
	if err != nil {
		return backend.IngestResult{}, err
	}
	return backend.IngestResult{Accepted: inserted, Duplicates: len(b.Events) - inserted}, nil
}

// stagingRows turns events into COPY rows, computing in Go what stats
// derives from each event (histogram bucket, failed, risk rank) so SQL
// never re-implements those rules.
func stagingRows(events []event.Event) ([][]any, error) {
	rows := make([][]any, len(events))
	for i := range events {
		e := &events[i]
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return nil, backend.Errorf(backend.EINVALID, "events[%d].id: must be a UUID", i)
		}
		sid, err := uuid.Parse(e.SessionID)
		if err != nil {
			return nil, backend.Errorf(backend.EINVALID, "events[%d].session_id: must be a UUID", i)
		}
		var bucket *int32
		if e.LatencyMS != nil && e.IsReply() {
			b := int32(stats.Bucket(*e.LatencyMS))
			bucket = &b
		}
		var errCode *int32
		if e.ErrorCode != nil {
			c := int32(*e.ErrorCode)
			errCode = &c
		}
		var score *int32
		var level *string
		var reasons []string
		if e.Risk != nil {
			s := int32(e.Risk.Score)
			l := string(e.Risk.Level)
			score, level, reasons = &s, &l, e.Risk.Reasons
		}
		var payload []byte
		if len(e.Payload) > 0 {
			payload = jsonbSafe(e.Payload)
		}
		rows[i] = []any{
			[16]byte(id), [16]byte(sid), e.Seq, e.TS, string(e.Direction), string(e.Kind),
			e.Server, e.RPCID, e.Method, e.Tool,
			e.LatencyMS, bucket, errCode, e.IsError, e.Failed(), e.Size,
			score, level, int16(activity.LevelRank(e.RiskLevel())), reasons, e.CostUSD, e.Tokens,
			payload, e.PayloadTruncated,
		}
	}
	return rows, nil
}

// jsonbSafe replaces the escape \u0000, which jsonb cannot store, with
// \ufffd: one odd payload must not make a whole batch fail forever.
func jsonbSafe(p []byte) []byte {
	var out []byte
	for i := 0; i < len(p); i++ {
		if p[i] != '\\' || i+1 >= len(p) {
			continue
		}
		if p[i+1] == 'u' && i+6 <= len(p) && string(p[i+2:i+6]) == "0000" {
			if out == nil {
				out = append([]byte(nil), p...)
			}
			copy(out[i+2:i+6], "fffd")
		}
		i++ // skip the escaped character, so \\u0000 stays as written
	}
	if out == nil {
		return p
	}
	return out
}
