package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

const eventColumns = `id::text, session_id::text, seq, ts, direction, kind, server, rpc_id, method, tool,
	latency_ms, error_code, is_error, size, risk_score, risk_level, risk_reasons, cost_usd, tokens,
	payload, payload_truncated, error_message, prompt, resource_uri, retry`

// Activity pages through a tenant's events newest first. It fetches one
// event more than the page holds to know whether a next page exists.
func (db *DB) Activity(ctx context.Context, tenantID string, q activity.Query) (activity.Page, error) {
	if err := tenantUUID(tenantID); err != nil {
		return activity.Page{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)

	// The explicit tenant_id lets the planner use the (tenant_id, ...)
	// indexes; the row-level security policy would reject other tenants'
	// rows anyway.
	where := []string{"tenant_id = $1"}
	args := []any{tenantID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if q.SessionID != "" {
		add("session_id = ?::uuid", q.SessionID)
	}
	if q.Server != "" {
		add("server = ?", q.Server)
	}
	if q.Method != "" {
		add("method = ?", q.Method)
	}
	if q.Tool != "" {
		add("tool = ?", q.Tool)
	}
	if q.Kind != "" {
		add("kind = ?", string(q.Kind))
	}
	if q.Failed {
		// The failed column holds event.Event.Failed, computed at ingest:
		// JSON-RPC errors and tool results with isError set.
		where = append(where, "failed")
	}
	if q.MinRisk != "" {
		add("risk_rank >= ?", int16(activity.LevelRank(q.MinRisk)))
	}
	if !q.Since.IsZero() {
		add("ts >= ?", q.Since)
	}
	if !q.Until.IsZero() {
		add("ts < ?", q.Until)
	}
	if c := q.Cursor; c != nil {
		args = append(args, c.TS, c.ID)
		where = append(where, fmt.Sprintf("(ts, id) < ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	args = append(args, limit+1)
	sql := fmt.Sprintf("SELECT %s FROM events WHERE %s ORDER BY ts DESC, id DESC LIMIT $%d",
		eventColumns, strings.Join(where, " AND "), len(args))

	var page activity.Page
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return dbError("activity", err)
		}
		events, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return dbError("activity", err)
		}
		page = activity.Page{Events: events}
		return nil
	})
	if err != nil {
		return activity.Page{}, err
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.NextCursor = activity.Cursor{TS: last.TS, ID: last.ID}.Encode()
	}
	if page.Events == nil {
		page.Events = []event.Event{}
	}
	return page, nil
}

func scanEvent(row pgx.CollectableRow) (event.Event, error) {
	var (
		e         event.Event
		ts        time.Time
		dir, kind string
		errCode   *int32
		score     *int32
		level     *string
		reasons   []string
		payload   []byte
	)
	err := row.Scan(&e.ID, &e.SessionID, &e.Seq, &ts, &dir, &kind, &e.Server, &e.RPCID, &e.Method, &e.Tool,
		&e.LatencyMS, &errCode, &e.IsError, &e.Size, &score, &level, &reasons, &e.CostUSD, &e.Tokens,
		&payload, &e.PayloadTruncated, &e.ErrorMessage, &e.Prompt, &e.ResourceURI, &e.Retry)
	if err != nil {
		return e, err
	}
	e.TS = ts.UTC()
	e.Direction, e.Kind = event.Direction(dir), event.Kind(kind)
	if errCode != nil {
		c := int(*errCode)
		e.ErrorCode = &c
	}
	if score != nil && level != nil {
		e.Risk = &event.Risk{Score: int(*score), Level: event.Level(*level), Reasons: reasons}
	}
	if len(payload) > 0 {
		e.Payload = payload
	}
	return e, nil
}
