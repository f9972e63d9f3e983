package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// unnestSource turns the column arrays Ingest sends as parameters $2..$30
// (see batchColumns.args) back into rows with the columns of events.
// One statement with array parameters costs one round trip and no catalog
// work, where a temporary table plus COPY cost three round trips and the
// creation and drop of a table in every batch. The arrays are all of types
// pgx encodes without reflection, so NULLs travel as flags or sentinels:
// has_risk for the risk columns, -1 for a missing bucket or is_error, NaN
// for a missing latency (JSON has no NaN), the int8 minimum for a missing
// error code, the empty string for no payload and for no reasons.
// risk_reasons cannot travel as an array of arrays (unnest would flatten
// it), so each row's reasons travel as one array literal ("{"a","b"}", "{}"
// for none) in its element of $21. (A row taking its slice of one flat
// array of every reason cost time in proportion to the reasons before it:
// a batch of 5000 events with 32 reasons each took seconds; so did a row
// subscripting an array of the literals alone, since PostgreSQL walks a
// text array from its start to find an element.)
// The arrays are unnested in the select list, not in FROM: all have one
// length, so both zip them alike, but unnest(a, b, ...) in FROM is a
// function scan that first copies every array into a tuplestore of its
// own, which EXPLAIN ANALYZE measured at about 4 ms of a 500-event batch,
// where the select list streams them in step in a fraction of a
// millisecond.
const unnestSource = `src AS (
    SELECT id, session_id, seq, ts, direction, kind, server, rpc_id, method, tool,
        nullif(latency_ms, 'NaN') AS latency_ms, nullif(latency_bucket, -1) AS latency_bucket,
        nullif(error_code, -9223372036854775808) AS error_code,
        CASE is_error WHEN 1 THEN true WHEN 0 THEN false END AS is_error, failed, size,
        CASE WHEN has_risk THEN risk_score END AS risk_score, CASE WHEN has_risk THEN risk_level END AS risk_level,
        risk_rank,
        nullif(reasons, '')::text[] AS risk_reasons,
        cost_usd, tokens, nullif(payload, '')::jsonb AS payload, payload_truncated,
        error_message, prompt, resource_uri, retry
    FROM (SELECT unnest($2::uuid[]) AS id, unnest($3::uuid[]) AS session_id, unnest($4::int8[]) AS seq,
        unnest($5::timestamptz[]) AS ts, unnest($6::text[]) AS direction, unnest($7::text[]) AS kind,
        unnest($8::text[]) AS server, unnest($9::text[]) AS rpc_id, unnest($10::text[]) AS method,
        unnest($11::text[]) AS tool, unnest($12::float8[]) AS latency_ms, unnest($13::int4[]) AS latency_bucket,
        unnest($14::int8[]) AS error_code, unnest($15::int2[]) AS is_error, unnest($16::bool[]) AS failed,
        unnest($17::int8[]) AS size, unnest($18::bool[]) AS has_risk, unnest($19::int8[]) AS risk_score,
        unnest($20::text[]) AS risk_level, unnest($21::text[]) AS reasons,
        unnest($22::float8[]) AS cost_usd, unnest($23::int8[]) AS tokens, unnest($24::text[]) AS payload,
        unnest($25::bool[]) AS payload_truncated, unnest($26::int2[]) AS risk_rank,
        unnest($27::text[]) AS error_message, unnest($28::text[]) AS prompt, unnest($29::text[]) AS resource_uri,
        unnest($30::bool[]) AS retry) AS s
)`

// sourceColumns are the columns of src (unnestSource) that events stores
// as they are; insertColumns adds the tenant.
const (
	sourceColumns = `id, session_id, seq, ts, direction, kind, server, rpc_id, method, tool,
        latency_ms, latency_bucket, error_code, is_error, failed, size,
        risk_score, risk_level, risk_rank, risk_reasons, cost_usd, tokens, payload, payload_truncated,
        error_message, prompt, resource_uri, retry`
	insertColumns = "tenant_id, " + sourceColumns
)

// insertEventsFrom moves the batch's events into events, skipping ids the tenant
// already has, and adds only the rows actually inserted to the rollups, all
// in one statement. A rollup's packed histogram is two byte strings of
// 8-byte entries (migration 00023), hist and hist_tail, and may list a
// bucket more than once (readers sum them). Each
// batch appends its few entries to the short hist_tail; only when the tail
// passes 256 entries is it merged into hist with km_hist_merge (one entry
// per bucket). An hourly hist holds hundreds of buckets and is stored out
// of line, and an UPDATE that leaves it unchanged keeps it where it is, so
// most batches rewrite a small row instead of kilobytes of histogram (the
// benchmark measured the rewrite as the largest cost of ingest after the
// events themselves). Stats reads at most 256 tail entries per row. Each row
// also keeps its latencies' range and, while it has at most
// stats.ExactSample of them, the latencies themselves (samples; NULL beyond),
// so stats.Sample answers as the local Aggregator does. ORDER BY keeps the rollup rows locked in one order so
// concurrent batches of a tenant queue instead of deadlocking.
const insertEventsFrom = `
ins AS (
    INSERT INTO events (` + insertColumns + `)
    SELECT $1, ` + sourceColumns + `
    FROM %[1]s
    ON CONFLICT (tenant_id, id, ts) DO NOTHING
    RETURNING id, ts, session_id, server, method, tool, kind, retry, failed, size, cost_usd, tokens,
        risk_score, risk_rank, latency_bucket, latency_ms
), inserted AS (
    SELECT count(*) AS n FROM ins
), g AS (
    SELECT date_trunc('minute', ts, 'UTC') AS minute, server, method, tool, latency_bucket,
        count(*) AS events,
        count(*) FILTER (WHERE kind = 'request' AND NOT retry) AS requests,
        count(*) FILTER (WHERE (kind = 'request' AND NOT retry) OR kind = 'notification') AS calls,
        count(*) FILTER (WHERE failed) AS errors,
        sum(size) AS bytes, sum(cost_usd) AS cost_usd, sum(tokens) AS tokens,
        count(*) FILTER (WHERE risk_rank = 1) AS risk_medium,
        count(*) FILTER (WHERE risk_rank = 2) AS risk_high,
        max(coalesce(risk_score, 0)) AS max_score,
        min(latency_ms) FILTER (WHERE latency_bucket IS NOT NULL) AS min_ms,
        max(latency_ms) FILTER (WHERE latency_bucket IS NOT NULL) AS max_ms,
        string_agg(float8send(latency_ms), ''::bytea) FILTER (WHERE latency_bucket IS NOT NULL) AS samples
    FROM ins%[7]s GROUP BY 1, 2, 3, 4, 5
), um AS (%[3]s
), uh AS (%[4]s
), ss AS (
    INSERT INTO series_minute AS r (tenant_id, bucket, server, events, errors)
    SELECT $1, minute, server, sum(events), sum(errors) FROM g GROUP BY 2, 3 ORDER BY 2, 3
    ON CONFLICT (tenant_id, bucket, server) DO UPDATE SET
        events = r.events + excluded.events, errors = r.errors + excluded.errors
), sm AS (%[5]s
), sh AS (%[6]s
)%[2]s
SELECT n FROM inserted`

// upsertRollup adds the groups of g to one level of rollup rows
// (rollup_minute and rollup_hour have the same columns): %[1]s is the
// table, %[2]s the query of the rows to add (rollupFromG or
// rollupFromDeltas), %[3]d stats.ExactSample. A new row's histogram
// entries pack a bucket and its count ((bucket << 40) | count); see
// insertEventsFrom.
const upsertRollup = `
    INSERT INTO %[1]s AS r (tenant_id, bucket, server, method, tool, events, requests, calls, errors,
        bytes, cost_usd, tokens, risk_medium, risk_high, max_score, hist, min_ms, max_ms, samples)
    %[2]s
    ON CONFLICT (tenant_id, bucket, server, method, tool) DO UPDATE SET
        events = r.events + excluded.events, requests = r.requests + excluded.requests,
        calls = r.calls + excluded.calls, errors = r.errors + excluded.errors,
        bytes = r.bytes + least(excluded.bytes, 9223372036854775807 - r.bytes), cost_usd = r.cost_usd + excluded.cost_usd,
        tokens = r.tokens + least(excluded.tokens, 9223372036854775807 - r.tokens), risk_medium = r.risk_medium + excluded.risk_medium,
        risk_high = r.risk_high + excluded.risk_high, max_score = greatest(r.max_score, excluded.max_score),
        hist = CASE WHEN length(r.hist_tail) + length(excluded.hist) > 256 * 8
                    THEN km_hist_merge(r.hist, r.hist_tail || excluded.hist) ELSE r.hist END,
        hist_tail = CASE WHEN length(r.hist_tail) + length(excluded.hist) > 256 * 8
                    THEN ''::bytea ELSE r.hist_tail || excluded.hist END,
        samples = CASE WHEN length(r.samples) + length(excluded.samples) <= %[3]d * 8
                    THEN r.samples || excluded.samples END,
        min_ms = CASE WHEN r.min_ms IS NULL AND length(r.hist) + length(r.hist_tail) > 0
                    THEN NULL ELSE least(r.min_ms, excluded.min_ms) END,
        max_ms = CASE WHEN r.max_ms IS NULL AND length(r.hist) + length(r.hist_tail) > 0
                    THEN NULL ELSE greatest(r.max_ms, excluded.max_ms) END`

// upsertSessions records, in table (session_minute or session_hour), which
// sessions of each server the batch's new events fall in, per unit, and
// under the empty server name which sessions of any server (migration
// 00025).
const upsertSessions = `
    INSERT INTO %[1]s (tenant_id, bucket, server, session_id)
    SELECT DISTINCT $1::uuid, date_trunc('%[2]s', ts, 'UTC'), v.server, session_id
    FROM ins CROSS JOIN LATERAL (VALUES (ins.server), ('')) AS v(server)%[3]s
    ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING`

// rollupFromG is the query of upsertRollup that groups g: %[1]s is the
// bucket of a group of g (its minute, or that minute's hour), %[2]d
// stats.ExactSample. A new row's histogram has one entry per bucket of each
// minute.
const rollupFromG = `SELECT $1, %[1]s, server, method, tool, sum(events), sum(requests), sum(calls), sum(errors),
        sum(bytes), sum(cost_usd), sum(tokens), sum(risk_medium), sum(risk_high), max(max_score),
        coalesce(string_agg(int8send((latency_bucket::bigint << 40) | events::bigint), ''::bytea ORDER BY latency_bucket)
            FILTER (WHERE latency_bucket IS NOT NULL), ''::bytea),
        min(min_ms), max(max_ms),
        CASE WHEN length(coalesce(string_agg(samples, ''::bytea), ''::bytea)) <= %[2]d * 8
            THEN coalesce(string_agg(samples, ''::bytea), ''::bytea) END
    FROM g GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5`

// insertFrom is insertEventsFrom reading the events from source, with
// quota the statement that counts them against the ingest quotas ("" for
// none) and gate a condition on the inserted rows ("" for none) under
// which the SQL computes the rollup deltas.
func insertFrom(source, quota, gate string) string {
	return fmt.Sprintf(insertEventsFrom, source, quota,
		fmt.Sprintf(upsertRollup, "rollup_minute", fmt.Sprintf(rollupFromG, "minute", stats.ExactSample), stats.ExactSample),
		fmt.Sprintf(upsertRollup, "rollup_hour", fmt.Sprintf(rollupFromG, "date_trunc('hour', minute, 'UTC')", stats.ExactSample), stats.ExactSample),
		fmt.Sprintf(upsertSessions, "session_minute", "minute", gate),
		fmt.Sprintf(upsertSessions, "session_hour", "hour", gate),
		gate)
}

// countQuota adds count events to the tenant's ingest windows (migration
// 00020), at the time that km_ingest_gate judged the batch by: the
// parameter after the batch's columns (quotaAtParam), so that a column
// added to the batch moves it; from is where count comes from ("" for a
// parameter). A window only moves forward: a process whose clock lags a
// little counts into the current window rather than resetting it.
func countQuota(count, from string) string {
	return fmt.Sprintf(`, qw AS (
    INSERT INTO ingest_windows AS w (tenant_id, minute_start, minute_events, day_start, day_events)
    SELECT $1, date_trunc('minute', $%[1]d::timestamptz, 'UTC'), %[2]s, date_trunc('day', $%[1]d::timestamptz, 'UTC'), %[2]s%[3]s
    ON CONFLICT (tenant_id) DO UPDATE SET
        minute_events = CASE WHEN excluded.minute_start > w.minute_start THEN excluded.minute_events
                             ELSE w.minute_events + excluded.minute_events END,
        minute_start = greatest(w.minute_start, excluded.minute_start),
        day_events = CASE WHEN excluded.day_start > w.day_start THEN excluded.day_events
                          ELSE w.day_events + excluded.day_events END,
        day_start = greatest(w.day_start, excluded.day_start)
)`, quotaAtParam, count, from)
}

// insertArrays stores a batch insertNew refused because the tenant has
// some of its events already, skipping those. It also carries the batch's
// rollup deltas computed in Go (batchDeltas, after the quota time and the
// batch's size): when every
// event of the batch was inserted they are the deltas, and the SQL that
// groups the inserted rows finds its gate closed (a one-time filter: it
// reads nothing); when the tenant already had some, the deltas' gate is
// closed instead and the SQL counts the inserted rows alone.
var insertArrays = "WITH " + unnestSource + ",\n" + insertFrom("src",
	// Duplicates are not in ins, so inserted counts what the quota adds.
	countQuota("n", "\n    FROM inserted WHERE n > 0")+deltaCTEs(quotaAtParam+1, true),
	fmt.Sprintf(" WHERE (SELECT n FROM inserted) < $%d", quotaAtParam+1))

// insertNew is the statement a batch tries first: a plain INSERT, which
// fails with a unique violation (and writes nothing) if the tenant already
// has one of its events, and then insertArrays runs instead. Most batches
// are new (a batch is sent again only when its answer was lost), and a
// plain insert skips the arbiter index probe ON CONFLICT makes before each
// row (in SQL, 100 inserts of 500 events: 4.3-4.6 ms a batch against
// 6.1 ms with ON CONFLICT DO NOTHING), as well as the SQL way of counting
// the inserted rows into the rollups: every event is new, so the deltas
// computed in Go are the rollups' deltas. It takes insertArrays'
// parameters; the batch's size is the count the quota adds.
var insertNew = "WITH " + unnestSource + `,
ins AS (
    INSERT INTO events (` + insertColumns + `)
    SELECT $1, ` + sourceColumns + ` FROM src
)` + countQuota(fmt.Sprintf("$%d", quotaAtParam+1), "") + deltaCTEs(quotaAtParam+1, false) + fmt.Sprintf(`
SELECT $%d::int`, quotaAtParam+1)

// quotaAtParam is the number of the parameter after batchColumns.args,
// which carries the time the quota is judged at; the batch's size follows
// it, then batchDeltas.args.
var quotaAtParam = len((&batchColumns{}).args("")) + 1

// rollupFromDeltas is the query of upsertRollup that reads one
// rollupLevel: %[1]s unnests its columns, %[2]d and %[3]d are the numbers
// of its flat hist and samples, %[4]s the gate.
const rollupFromDeltas = `SELECT $1, bucket, server, method, tool, events, requests, calls, errors,
        bytes, cost_usd, tokens, risk_medium, risk_high, max_score,
        substring($%[2]d::bytea FROM hist_off + 1 FOR hist_len), nullif(min_ms, 'NaN'), nullif(max_ms, 'NaN'),
        CASE WHEN samples_len >= 0 THEN substring($%[3]d::bytea FROM samples_off + 1 FOR samples_len) END
    FROM (SELECT %[1]s) AS d%[4]s
    ORDER BY bucket, server, method, tool`

// deltaCTEs are the upserts of batchDeltas, whose parameters start at
// $size+1; $size is the batch's size, and they add nothing unless the
// statement inserted that many events.
func deltaCTEs(size int, gated bool) string {
	gate := ""
	if gated {
		gate = fmt.Sprintf(" WHERE (SELECT n FROM inserted) = $%d", size)
	}
	p := size + 1
	level := func(table string) string {
		cols := unnestParams(p, "bucket", "timestamptz[]", "server", "text[]", "method", "text[]", "tool", "text[]",
			"events", "int8[]", "requests", "int8[]", "calls", "int8[]", "errors", "int8[]",
			"bytes", "int8[]", "cost_usd", "float8[]", "tokens", "int8[]", "risk_medium", "int8[]",
			"risk_high", "int8[]", "max_score", "int4[]")
		cols += ", " + unnestParams(p+15, "hist_off", "int4[]", "hist_len", "int4[]", "min_ms", "float8[]", "max_ms", "float8[]")
		cols += ", " + unnestParams(p+20, "samples_off", "int4[]", "samples_len", "int4[]")
		q := fmt.Sprintf(upsertRollup, table, fmt.Sprintf(rollupFromDeltas, cols, p+14, p+19, gate), stats.ExactSample)
		p += len((&rollupLevel{}).args())
		return q
	}
	um, uh := level("rollup_minute"), level("rollup_hour")
	ss := fmt.Sprintf(`
    INSERT INTO series_minute AS r (tenant_id, bucket, server, events, errors)
    SELECT $1, bucket, server, events, errors FROM (SELECT %s) AS d%s ORDER BY 2, 3
    ON CONFLICT (tenant_id, bucket, server) DO UPDATE SET
        events = r.events + excluded.events, errors = r.errors + excluded.errors`,
		unnestParams(p, "bucket", "timestamptz[]", "server", "text[]", "events", "int8[]", "errors", "int8[]"), gate)
	p += 4
	sessions := func(table string) string {
		q := fmt.Sprintf(`
    INSERT INTO %s (tenant_id, bucket, server, session_id)
    SELECT $1::uuid, bucket, server, session_id FROM (SELECT %s) AS d%s ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING`, table, unnestParams(p, "bucket", "timestamptz[]", "server", "text[]", "session_id", "uuid[]"), gate)
		p += 3
		return q
	}
	sm, sh := sessions("session_minute"), sessions("session_hour")
	// Tool alerts (toolAlertRows) carry their events' ids: where the
	// tenant may have some of the events already, only the rows of the
	// inserted ones count.
	alertFilter := ""
	if gated {
		alertFilter = " WHERE (id, ts) IN (SELECT id, ts FROM ins)"
	}
	alerts := func(table, unit string) string {
		return fmt.Sprintf(`
    INSERT INTO %s AS r (tenant_id, bucket, server, tool, kind, max_score, high, medium)
    SELECT $1::uuid, date_trunc('%s', ts, 'UTC'), server, tool, kind, max(max_score), sum(high), sum(medium)
    FROM (SELECT %s) AS d%s
    GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5
    ON CONFLICT (tenant_id, bucket, server, tool, kind) DO UPDATE SET
        max_score = greatest(r.max_score, excluded.max_score), high = r.high + excluded.high, medium = r.medium + excluded.medium`,
			table, unit, unnestParams(p, "id", "uuid[]", "ts", "timestamptz[]", "server", "text[]", "tool", "text[]", "kind", "text[]",
				"max_score", "int4[]", "high", "int8[]", "medium", "int8[]"), alertFilter)
	}
	am, ah := alerts("tool_alert_minute", "minute"), alerts("tool_alert_hour", "hour")
	return fmt.Sprintf(", dum AS (%s\n), duh AS (%s\n), dss AS (%s\n), dsm AS (%s\n), dsh AS (%s\n), dam AS (%s\n), dah AS (%s\n)",
		um, uh, ss, sm, sh, am, ah)
}

// ingestGate refuses the batch, before anything is written, when the
// tenant's ingest quota is used up (km_ingest_gate, migration 00020).
const ingestGate = `SELECT km_ingest_gate($1, $2)`

// quotaExceeded is the SQLSTATE km_ingest_gate raises.
const quotaExceeded = "KM429"

// upsertSession records a session; a later report of the same session
// (the monitor sends one at start and one at exit) is folded in by
// event.MergeSession, of which this is the SQL: TestSessionUpsertIsMergeSession
// holds the two to the same answers.
const upsertSession = `
INSERT INTO sessions AS s (tenant_id, id, server, server_name, server_version, client_name, client_version,
    protocol_version, command, host, started_at, ended_at, exit_code, dropped_events, warnings)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (tenant_id, id) DO UPDATE SET
    server = coalesce(nullif(excluded.server, ''), s.server),
    server_name = coalesce(nullif(excluded.server_name, ''), s.server_name),
    server_version = coalesce(nullif(excluded.server_version, ''), s.server_version),
    client_name = coalesce(nullif(excluded.client_name, ''), s.client_name),
    client_version = coalesce(nullif(excluded.client_version, ''), s.client_version),
    protocol_version = coalesce(nullif(excluded.protocol_version, ''), s.protocol_version),
    command = coalesce(nullif(excluded.command, '{}'), s.command),
    host = coalesce(nullif(excluded.host, ''), s.host),
    started_at = least(s.started_at, excluded.started_at),
    ended_at = CASE WHEN excluded.ended_at >= coalesce(s.ended_at, '-infinity') THEN excluded.ended_at ELSE s.ended_at END,
    exit_code = CASE WHEN excluded.ended_at >= coalesce(s.ended_at, '-infinity') THEN excluded.exit_code ELSE s.exit_code END,
    dropped_events = greatest(s.dropped_events, excluded.dropped_events),
    warnings = coalesce(nullif(excluded.warnings, '{}'), s.warnings)`

// ingestTimeout gives a batch IngestStatementTimeout instead of the
// statement timeout of reads: a batch is bounded by the body limit, and a
// full one on a busy database may need longer than a read is allowed,
// while refusing it would only make the CLI send it again.
var ingestTimeout = pgMillis(IngestStatementTimeout)

// IngestStatementTimeout bounds each statement of an ingest.
const IngestStatementTimeout = 30 * time.Second

// Ingest stores a batch that passed event.Batch.Clean and Validate (the
// API decodes nothing else) in one transaction: sessions upserted, then the
// events sent as column arrays and inserted with ON CONFLICT DO NOTHING,
// with the rollups updated for the inserted events only, in one statement,
// then the per-event alert rules in one more (fireEventAlerts).
func (db *DB) Ingest(ctx context.Context, tenantID string, b event.Batch) (backend.IngestResult, error) {
	if err := tenantUUID(tenantID); err != nil {
		return backend.IngestResult{}, err
	}
	if len(b.Events) > backend.MaxBatchEvents {
		return backend.IngestResult{}, backend.Errorf(backend.ETOOLARGE, "more than %d events in one batch", backend.MaxBatchEvents)
	}
	cols, err := newBatchColumns(b.Events)
	if err != nil {
		return backend.IngestResult{}, err
	}
	if len(b.Events) == 0 && len(b.Sessions) == 0 {
		return backend.IngestResult{}, nil
	}
	// Sessions are upserted in id order too, for the same reason as events.
	sessionOrder := make([]int, len(b.Sessions))
	for i := range sessionOrder {
		sessionOrder[i] = i
	}
	slices.SortFunc(sessionOrder, func(x, y int) int {
		return cmp.Compare(strings.ToLower(b.Sessions[x].ID), strings.ToLower(b.Sessions[y].ID))
	})
	watched, err := db.alertRuleKinds(ctx, tenantID)
	if err != nil {
		return backend.IngestResult{}, err
	}
	conds, err := eventConditions(tenantID, b, watched)
	if err != nil {
		return backend.IngestResult{}, err
	}
	var inserted int
	at := db.clock()
	args := append(cols.args(tenantID), at, len(b.Events))
	args = append(args, newBatchDeltas(cols, b.Events).args()...)
	reserveColumnArrays(args)
	// Sessions and events go in one pipeline with the transaction's
	// identity: one round trip. A retry after a broken connection is
	// safe: the batch either committed (its events now count as
	// duplicates) or left no trace.
	send := func(insert string) error {
		return db.sendTxFor(ctx, "insert events", roleApp, tenantID, ingestTimeout, func(batch *pgx.Batch) {
			inserted = 0
			if len(b.Events) > 0 {
				// First, so that a refused batch costs one cheap statement;
				// its error ends the pipeline's transaction, sessions included.
				batch.Queue(ingestGate, tenantID, at)
			}
			for _, i := range sessionOrder {
				s := &b.Sessions[i]
				batch.Queue(upsertSession, tenantID, s.ID, s.Server, s.ServerName, s.ServerVersion,
					s.ClientName, s.ClientVersion, s.ProtocolVersion, s.Command, s.Host,
					s.StartedAt, s.EndedAt, s.ExitCode, s.DroppedEvents, s.Warnings)
			}
			if len(b.Events) > 0 {
				batch.Queue(insert, args...).QueryRow(func(row pgx.Row) error {
					return row.Scan(&inserted)
				})
			}
			// The per-event alert rules, in the same transaction: an alert
			// fires with the events that fire it or not at all.
			if conds != nil {
				batch.Queue(fireEventAlerts, conds...)
			}
		})
	}
	err = send(insertNew)
	if duplicateEvent(err) {
		// The tenant has some of these events (the batch was sent again,
		// or a part of it): nothing was written; store the ones it lacks.
		err = send(insertArrays)
	}
	if err != nil {
		if noPartition(err) {
			return backend.IngestResult{}, db.outsidePartitions(ctx, b.Events, err)
		}
		return backend.IngestResult{}, quotaError(err)
	}
	return backend.IngestResult{Accepted: inserted, Duplicates: len(b.Events) - inserted}, nil
}

// quotaError turns km_ingest_gate's refusal into ERATELIMIT with the
// seconds it named as RetryAfter; other errors pass through.
func quotaError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	if pgErr.Code != quotaExceeded {
		return err
	}
	e := backend.Errorf(backend.ERATELIMIT, "%s", pgErr.Message)
	if secs, perr := strconv.ParseInt(pgErr.Detail, 10, 64); perr == nil {
		e.RetryAfter = time.Duration(max(1, secs)) * time.Second
	}
	return e
}

// noPartition reports PostgreSQL refusing a row no partition of events
// takes.
// duplicateEvent reports insertNew's refusal of an event the tenant has.
// Only the events insert can raise a unique violation in the pipeline
// (every other statement has its ON CONFLICT clause); were it another, the
// second attempt would fail with it again.
func duplicateEvent(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func noPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.HasPrefix(pgErr.Message, "no partition of relation")
}

// outsidePartitions names the first event whose ts no partition of events
// takes. Partitions reach back to the longest retention of any tenant and
// a week ahead (docs/deploy.md, "Data lifecycle"): an event before them
// would be dropped at once; one past them means maintenance has not run.
// It reads the bounds from the catalog only on this error path.
func (db *DB) outsidePartitions(ctx context.Context, events []event.Event, cause error) error {
	var lo, hi *time.Time
	if err := db.pool.QueryRow(ctx, `SELECT CASE WHEN bool_or(lo IS NULL) THEN NULL ELSE min(lo) END, max(hi) FROM km_partition_bounds('events')`).Scan(&lo, &hi); err != nil {
		return fmt.Errorf("%w (and reading the partition bounds: %w)", cause, dbError("partition bounds", err))
	}
	for i := range events {
		ts := events[i].TS
		switch {
		case lo != nil && ts.Before(*lo):
			return backend.Errorf(backend.EINVALID, "events[%d].ts: %s is older than the server keeps events (from %s, the longest retention of any tenant); it cannot be stored",
				i, ts.UTC().Format(time.RFC3339Nano), lo.UTC().Format(time.RFC3339))
		case hi != nil && !ts.Before(*hi):
			return backend.Errorf(backend.EUNAVAILABLE, "events[%d].ts: %s is past the days the server has made ready (until %s); its maintenance job has not run, try again later",
				i, ts.UTC().Format(time.RFC3339Nano), hi.UTC().Format(time.RFC3339))
		}
	}
	return backend.Errorf(backend.EINVALID, "events[].ts: an event of this batch is outside the days the server keeps; it cannot be stored")
}

// batchColumns holds a batch column by column, as insertArrays takes it
// (see unnestSource for how NULLs travel), with what stats derives from
// each event (histogram bucket, failed, risk rank) computed in Go so SQL
// never re-implements those rules.
type batchColumns struct {
	id, sessionID                                       [][16]byte
	seq, size, tokens, errorCode, score                 []int64
	ts                                                  []time.Time
	direction, kind, server, rpcID, method, tool, level []string
	errorMessage, prompt, resourceURI                   []string
	payload, reasons                                    []string
	latencyMS, costUSD                                  []float64
	bucket                                              []int32
	isError, rank                                       []int16
	failed, hasRisk, truncated, retry                   []bool
	// order is the index in the batch of the event each row holds.
	order []int
}

const noErrorCode = math.MinInt64

func newBatchColumns(events []event.Event) (*batchColumns, error) {
	n := len(events)
	c := &batchColumns{
		id: make([][16]byte, n), sessionID: make([][16]byte, n),
		seq: make([]int64, n), size: make([]int64, n), tokens: make([]int64, n),
		errorCode: make([]int64, n), score: make([]int64, n),
		ts:        make([]time.Time, n),
		direction: make([]string, n), kind: make([]string, n), server: make([]string, n),
		rpcID: make([]string, n), method: make([]string, n), tool: make([]string, n), level: make([]string, n),
		errorMessage: make([]string, n), prompt: make([]string, n), resourceURI: make([]string, n),
		payload:   make([]string, n),
		reasons:   make([]string, n),
		latencyMS: make([]float64, n), costUSD: make([]float64, n),
		bucket:  make([]int32, n),
		isError: make([]int16, n), rank: make([]int16, n),
		failed: make([]bool, n), hasRisk: make([]bool, n), truncated: make([]bool, n), retry: make([]bool, n),
	}
	// Rows go in id order: two batches that share event ids then take
	// their index locks in the same order, so they queue rather than
	// deadlock, whatever order their senders listed the events in.
	ids := make([][16]byte, n)
	order := make([]int, n)
	for i := range events {
		id, err := uuid.Parse(events[i].ID)
		if err != nil {
			return nil, backend.Errorf(backend.EINVALID, "events[%d].id: must be a UUID", i)
		}
		ids[i], order[i] = id, i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ids[a][:], ids[b][:]) })
	c.order = order
	for i, k := range order {
		e := &events[k]
		sid, err := uuid.Parse(e.SessionID)
		if err != nil {
			return nil, backend.Errorf(backend.EINVALID, "events[%d].session_id: must be a UUID", k)
		}
		c.id[i], c.sessionID[i] = ids[k], sid
		c.seq[i], c.size[i], c.tokens[i], c.ts[i] = e.Seq, e.Size, e.Tokens, e.TS
		c.direction[i], c.kind[i], c.server[i] = string(e.Direction), string(e.Kind), e.Server
		c.rpcID[i], c.method[i], c.tool[i] = e.RPCID, e.Method, e.Tool
		c.errorMessage[i], c.prompt[i], c.resourceURI[i] = e.ErrorMessage, e.Prompt, e.ResourceURI
		c.costUSD[i] = e.CostUSD
		c.latencyMS[i], c.bucket[i] = math.NaN(), -1
		if e.LatencyMS != nil {
			c.latencyMS[i] = *e.LatencyMS
			if ms, ok := stats.LatencyOf(e); ok {
				c.bucket[i] = int32(stats.Bucket(ms))
			}
		}
		c.errorCode[i] = noErrorCode
		if e.ErrorCode != nil {
			c.errorCode[i] = int64(*e.ErrorCode)
		}
		c.isError[i] = -1
		if e.IsError != nil {
			c.isError[i] = 0
			if *e.IsError {
				c.isError[i] = 1
			}
		}
		c.failed[i], c.truncated[i], c.retry[i] = e.Failed(), e.PayloadTruncated, e.Retry
		c.rank[i] = int16(activity.LevelRank(e.RiskLevel()))
		if e.Risk != nil {
			c.hasRisk[i], c.score[i], c.level[i] = true, int64(e.Risk.Score), string(e.Risk.Level)
			if e.Risk.Reasons != nil {
				c.reasons[i] = arrayLiteral(e.Risk.Reasons)
			}
		}
		if len(e.Payload) > 0 {
			c.payload[i] = string(e.Payload)
		}
	}
	return c, nil
}

// args are the parameters of insertArrays, in the order of its $n, as
// column arrays (arrays.go).
func (c *batchColumns) args(tenantID string) []any {
	return []any{tenantID, uuidArray(c.id), uuidArray(c.sessionID), int8Array(c.seq), timestamptzArray(c.ts),
		textArray(c.direction), textArray(c.kind), textArray(c.server), textArray(c.rpcID), textArray(c.method), textArray(c.tool),
		float8Array(c.latencyMS), int4Array(c.bucket), int8Array(c.errorCode), int2Array(c.isError), boolArray(c.failed), int8Array(c.size),
		boolArray(c.hasRisk), int8Array(c.score), textArray(c.level), textArray(c.reasons), float8Array(c.costUSD), int8Array(c.tokens), textArray(c.payload),
		boolArray(c.truncated), int2Array(c.rank), textArray(c.errorMessage), textArray(c.prompt), textArray(c.resourceURI), boolArray(c.retry)}
}

// arrayLiteral writes list as a PostgreSQL array literal of quoted
// elements, which text[] input reads back exactly (cleaned text holds no
// NUL, the one character a literal cannot carry).
func arrayLiteral(list []string) string {
	n := 2
	for _, s := range list {
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	return string(append(b, '}'))
}
