package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/rpcpair"
)

// sessionCounts adds each session's tool calls (stats.NewCall) and failed
// replies. It reads events_session_counts alone, whose predicate it
// repeats: within it, an event that did not fail is a tools/call request
// that is no retry (a request never fails, see event.Event.Failed), so the
// counts need no other column.
const sessionCounts = `CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE NOT e.failed) AS calls, count(*) FILTER (WHERE e.failed) AS failed
    FROM events e
    WHERE e.tenant_id = s.tenant_id AND e.session_id = s.id AND e.ts >= km_event_horizon($1::uuid)
        AND (e.failed OR (e.kind = 'request' AND e.method = 'tools/call' AND NOT e.retry))
) AS c`

// Sessions pages through a tenant's sessions newest start first, each with
// its call and failure counts. Like Activity it fetches one row more than
// the page holds to know whether a next page exists.
func (db *DB) Sessions(ctx context.Context, tenantID string, q activity.SessionQuery) (activity.SessionPage, error) {
	if err := tenantUUID(tenantID); err != nil {
		return activity.SessionPage{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)
	where := []string{"s.tenant_id = $1"}
	args := []any{tenantID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if q.Server != "" {
		add("s.server = ?", q.Server)
	}
	if !q.Since.IsZero() {
		add("s.started_at >= ?", q.Since)
	}
	if !q.Until.IsZero() {
		add("s.started_at < ?", q.Until)
	}
	if c := q.Cursor; c != nil {
		args = append(args, c.TS, c.ID)
		where = append(where, fmt.Sprintf("(s.started_at, s.id) < ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	args = append(args, limit+1)
	sql := fmt.Sprintf(`SELECT s.id::text, s.server, s.server_name, s.server_version, s.client_name, s.client_version,
    s.protocol_version, s.command, s.host, s.started_at, s.ended_at, s.exit_code, s.dropped_events, s.warnings,
    c.calls, c.failed
FROM sessions s %s
WHERE %s
ORDER BY s.started_at DESC, s.id DESC LIMIT $%d`, sessionCounts, strings.Join(where, " AND "), len(args))

	var rows []activity.SessionRow
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		r, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return dbError("sessions", err)
		}
		rows, err = pgx.CollectRows(r, scanSessionRow)
		return dbError("sessions", err)
	})
	if err != nil {
		return activity.SessionPage{}, err
	}
	page := activity.SessionPage{Sessions: rows}
	if len(page.Sessions) > limit {
		page.Sessions = page.Sessions[:limit]
		page.NextCursor = activity.SessionCursor(&page.Sessions[limit-1].Session).Encode()
	}
	if page.Sessions == nil {
		page.Sessions = []activity.SessionRow{}
	}
	return page, nil
}

func scanSessionRow(row pgx.CollectableRow) (activity.SessionRow, error) {
	var (
		r       activity.SessionRow
		s       = &r.Session
		started time.Time
		ended   *time.Time
		code    *int32
	)
	err := row.Scan(&s.ID, &s.Server, &s.ServerName, &s.ServerVersion, &s.ClientName, &s.ClientVersion,
		&s.ProtocolVersion, &s.Command, &s.Host, &started, &ended, &code, &s.DroppedEvents, &s.Warnings,
		&r.Calls, &r.Failed)
	if err != nil {
		return r, err
	}
	s.StartedAt = started.UTC()
	if ended != nil {
		t := ended.UTC()
		s.EndedAt = &t
	}
	if code != nil {
		c := int(*code)
		s.ExitCode = &c
	}
	return r, nil
}

// The other half of a call is looked for among the session's events on
// the far side of the pipe with the same JSON-RPC id, nearest in time:
// the first reply after a request, the last request before a reply. Both
// walk events_session_ts from the known half's instant, so they read a
// few rows whatever the session's size; activity.Answers confirms the pair.
const (
	replyOf = `SELECT ` + eventColumns + ` FROM events
WHERE tenant_id = $1 AND session_id = $2::uuid AND direction = $3 AND rpc_id = $4
    AND kind IN ('response', 'error') AND ts >= $5 AND seq > $6 AND ts >= km_event_horizon($1::uuid)
ORDER BY ts, seq LIMIT 1`
	requestOf = `SELECT ` + eventColumns + ` FROM events
WHERE tenant_id = $1 AND session_id = $2::uuid AND direction = $3 AND rpc_id = $4
    AND kind = 'request' AND ts <= $5 AND seq < $6 AND ts >= km_event_horizon($1::uuid)
ORDER BY ts DESC, seq DESC LIMIT 1`
)

// Call returns the event with id eventID paired with its request or reply.
// ENOTFOUND when the tenant has no such event.
func (db *DB) Call(ctx context.Context, tenantID, eventID string) (activity.Call, error) {
	if err := tenantUUID(tenantID); err != nil {
		return activity.Call{}, err
	}
	if _, err := uuid.Parse(eventID); err != nil || len(eventID) != 36 {
		return activity.Call{}, backend.Errorf(backend.ENOTFOUND, "no event %q (event ids are UUIDs)", eventID)
	}
	var call activity.Call
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		call = activity.Call{}
		e, err := queryEvent(ctx, tx, "SELECT "+eventColumns+" FROM events WHERE tenant_id = $1 AND id = $2::uuid AND ts >= km_event_horizon($1::uuid)", tenantID, eventID)
		if err != nil {
			return err
		}
		if e == nil {
			return backend.Errorf(backend.ENOTFOUND, "no event %s", eventID)
		}
		if !e.IsReply() {
			call.Request = e
			if e.Kind != event.KindRequest || e.RPCID == "" {
				return nil
			}
			other, err := queryEvent(ctx, tx, replyOf, tenantID, e.SessionID, string(rpcpair.Other(e.Direction)), e.RPCID, e.TS, e.Seq)
			if err != nil || other == nil || !activity.Answers(e, other) {
				return err
			}
			call.Response = other
			return nil
		}
		call.Response = e
		if e.RPCID == "" {
			return nil
		}
		other, err := queryEvent(ctx, tx, requestOf, tenantID, e.SessionID, string(rpcpair.Other(e.Direction)), e.RPCID, e.TS, e.Seq)
		if err != nil || other == nil || !activity.Answers(other, e) {
			return err
		}
		call.Request = other
		return nil
	})
	if err != nil {
		return activity.Call{}, err
	}
	return call, nil
}

// queryEvent reads at most one event; nil when there is none.
func queryEvent(ctx context.Context, tx pgx.Tx, sql string, args ...any) (*event.Event, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError("call", err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEvent)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, dbError("call", err)
	}
	return &e, nil
}
