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

// Activity pages through a tenant's events newest first. It reads one
// event more than the page holds to know whether a next page exists, and
// ends a page early at its byte bound (activity.Query.PageBytes).
func (db *DB) Activity(ctx context.Context, tenantID string, q activity.Query) (activity.Page, error) {
	if err := tenantUUID(tenantID); err != nil {
		return activity.Page{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)

	// where holds the bounds an index walks (tenant, session, time,
	// cursor), filters the conditions tested on each row walked. The
	// explicit tenant_id lets the planner use the (tenant_id, ...)
	// indexes; the row-level security policy would reject other tenants'
	// rows anyway.
	// km_event_horizon hides what is older than the tenant's retention
	// until maintenance drops its partition.
	where := []string{"tenant_id = $1", "ts >= km_event_horizon($1)"}
	var filters []string
	args := []any{tenantID}
	param := func(cond string, v any) string {
		args = append(args, v)
		return strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args)))
	}
	bound := func(cond string, v any) { where = append(where, param(cond, v)) }
	add := func(cond string, v any) { filters = append(filters, param(cond, v)) }
	if q.SessionID != "" {
		bound("session_id = ?::uuid", q.SessionID)
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
		bound("ts >= ?", q.Since)
	}
	if !q.Until.IsZero() {
		bound("ts < ?", q.Until)
	}
	if c := q.Cursor; c != nil {
		args = append(args, c.TS, c.ID)
		where = append(where, fmt.Sprintf("(ts, id) < ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	args = append(args, limit+1)
	sql := fmt.Sprintf("SELECT %s, true FROM events WHERE %s ORDER BY ts DESC, id DESC LIMIT $%d",
		eventColumns, strings.Join(where, " AND "), len(args))
	if len(filters) > 0 {
		// A filter that matches little would walk the tenant's whole
		// history: the walk stops after activity.MaxScanRows rows, and
		// the last row walked, matched or not, comes out flagged so the
		// page can end there with a cursor.
		sql = fmt.Sprintf(`SELECT %[1]s, matched FROM (
				SELECT *, coalesce(%[2]s, false) AS matched, row_number() OVER (ORDER BY ts DESC, id DESC) AS walked
				FROM (SELECT * FROM events WHERE %[3]s ORDER BY ts DESC, id DESC LIMIT %[4]d) AS w
			) AS m
			WHERE matched OR walked = %[4]d ORDER BY ts DESC, id DESC LIMIT $%[5]d`,
			eventColumns, strings.Join(filters, " AND "), strings.Join(where, " AND "), activity.MaxScanRows, len(args))
	}

	var page activity.Page
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		var err error
		page, err = fetchPage(ctx, tx, sql, args, limit, q.PageBytes())
		return err
	})
	if err != nil {
		return activity.Page{}, err
	}
	if page.Events == nil {
		page.Events = []event.Event{}
	}
	return page, nil
}

// fetchFirst is how many rows the first fetch of a page asks for: a
// default page in one round trip.
const fetchFirst = activity.DefaultLimit + 1

// fetchPage reads the page from a cursor over query, in fetches sized to
// what the byte budget (maxBytes) has left, so that a page of
// large payloads ends early without the database sending, or this process
// holding, the rows past the budget.
func fetchPage(ctx context.Context, tx pgx.Tx, query string, args []any, limit, maxBytes int) (activity.Page, error) {
	if _, err := tx.Exec(ctx, "DECLARE km_page NO SCROLL CURSOR FOR "+query, args...); err != nil {
		return activity.Page{}, dbError("activity", err)
	}
	var page activity.Page
	used, done := 0, false
	more := func() { // the page ends after its last event, with a cursor
		last := page.Events[len(page.Events)-1]
		page.NextCursor = activity.Cursor{TS: last.TS, ID: last.ID}.Encode()
		done = true
	}
	for !done {
		n := fetchFirst
		if len(page.Events) > 0 {
			// As many rows as the budget left holds at the mean size so
			// far, at least one.
			n = max(1, (maxBytes-used)/(used/len(page.Events)+1))
		}
		n = min(n, limit+1-len(page.Events))
		rows, err := tx.Query(ctx, fmt.Sprintf("FETCH %d FROM km_page", n))
		if err != nil {
			return activity.Page{}, dbError("activity", err)
		}
		got := 0
		for rows.Next() && !done {
			got++
			var matched bool
			e, err := scanEventAnd(rows, &matched)
			if err != nil {
				rows.Close()
				return activity.Page{}, dbError("activity", err)
			}
			size := activity.EventBytes(&e)
			switch {
			case !matched:
				// The end of the walk: the next page starts past it.
				page.NextCursor = activity.Cursor{TS: e.TS, ID: e.ID}.Encode()
				done = true
			case len(page.Events) == limit:
				more() // the one row past the limit: there is a next page
			case len(page.Events) > 0 && used+size > maxBytes:
				more()
			default:
				page.Events = append(page.Events, e)
				used += size
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return activity.Page{}, dbError("activity", err)
		}
		if got < n {
			done = true // the query has no more rows
		}
	}
	return page, nil
}

func scanEvent(row pgx.CollectableRow) (event.Event, error) { return scanEventAnd(row) }

// scanEventAnd is scanEvent for rows with more columns after the event's,
// scanned into extra.
func scanEventAnd(row pgx.CollectableRow, extra ...any) (event.Event, error) {
	var (
		e         event.Event
		ts        time.Time
		dir, kind string
		errCode   *int64
		score     *int32
		level     *string
		reasons   []string
		payload   []byte
	)
	err := row.Scan(append([]any{&e.ID, &e.SessionID, &e.Seq, &ts, &dir, &kind, &e.Server, &e.RPCID, &e.Method, &e.Tool,
		&e.LatencyMS, &errCode, &e.IsError, &e.Size, &score, &level, &reasons, &e.CostUSD, &e.Tokens,
		&payload, &e.PayloadTruncated, &e.ErrorMessage, &e.Prompt, &e.ResourceURI, &e.Retry}, extra...)...)
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
