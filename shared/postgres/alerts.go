package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/alerts"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Delivery of team alerts: each scheduled run posts an alert once; one
// that fails is retried on later runs after AlertBackoff, doubling, until
// AlertAttempts posts have failed.
const (
	AlertAttempts = 6
	AlertBackoff  = 30 * time.Second
	// alertLease is how long a claimed outbox row stays invisible to other
	// runs while its post is in flight.
	alertLease = 2 * alerts.PostTimeout
	// alertBatch bounds the deliveries of one tenant in one run.
	alertBatch = 100
)

var errRuleNotFound = backend.Errorf(backend.ENOTFOUND, "alert rule not found")

// CreateAlertRule stores a validated rule; at most backend.MaxAlertRules.
func (db *DB) CreateAlertRule(ctx context.Context, tenantID string, r backend.NewAlertRule) (backend.AlertRule, error) {
	if err := tenantUUID(tenantID); err != nil {
		return backend.AlertRule{}, err
	}
	w, err := r.Validate()
	if err != nil {
		return backend.AlertRule{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return backend.AlertRule{}, fmt.Errorf("rule id: %w", err)
	}
	out := backend.AlertRule{ID: id.String(), On: r.On, Threshold: alerts.Threshold(r.On, r.Threshold),
		Window: w.String(), Webhook: r.Webhook, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	err = db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		// The count and the insert race only with the tenant's own
		// requests; a lock on its rules keeps the bound exact.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('alert_rules:' || $1))`, tenantID); err != nil {
			return dbError("create alert rule", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM alert_rules`).Scan(&n); err != nil {
			return dbError("create alert rule", err)
		}
		if n >= backend.MaxAlertRules {
			return backend.Errorf(backend.EINVALID, "a tenant has at most %d alert rules; delete one first", backend.MaxAlertRules)
		}
		_, err := tx.Exec(ctx, `INSERT INTO alert_rules (tenant_id, id, kind, threshold, window_s, webhook, secret, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			tenantID, out.ID, string(r.On), out.Threshold, int(w/time.Second), r.Webhook, r.Secret, out.CreatedAt)
		return dbErrorOr("create alert rule", err)
	})
	if err != nil {
		return backend.AlertRule{}, err
	}
	return out, nil
}

func dbErrorOr(op string, err error) error {
	if err == nil {
		return nil
	}
	return dbError(op, err)
}

// AlertRules lists the tenant's rules, oldest first, without secrets.
func (db *DB) AlertRules(ctx context.Context, tenantID string) ([]backend.AlertRule, error) {
	if err := tenantUUID(tenantID); err != nil {
		return nil, err
	}
	out := []backend.AlertRule{}
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text, kind, threshold, window_s, webhook, created_at FROM alert_rules ORDER BY created_at, id`)
		if err != nil {
			return dbError("alert rules", err)
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (backend.AlertRule, error) {
			var r backend.AlertRule
			var w int
			err := row.Scan(&r.ID, &r.On, &r.Threshold, &w, &r.Webhook, &r.CreatedAt)
			r.Window = (time.Duration(w) * time.Second).String()
			return r, err
		})
		return dbErrorOr("alert rules", err)
	})
	db.forgetRuleKinds(tenantID)
	return out, err
}

// DeleteAlertRule removes a rule with what it fired.
func (db *DB) DeleteAlertRule(ctx context.Context, tenantID, id string) error {
	if err := tenantUUID(tenantID); err != nil {
		return err
	}
	if !isID(id) {
		return errRuleNotFound
	}
	defer db.forgetRuleKinds(tenantID)
	return db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE id = $1`, id)
		if err != nil {
			return dbError("delete alert rule", err)
		}
		if tag.RowsAffected() == 0 {
			return errRuleNotFound
		}
		return nil
	})
}

// DeleteAlertRules removes every rule of the tenant.
func (db *DB) DeleteAlertRules(ctx context.Context, tenantID string) (int, error) {
	if err := tenantUUID(tenantID); err != nil {
		return 0, err
	}
	var n int
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM alert_rules`)
		n = int(tag.RowsAffected())
		return dbErrorOr("delete alert rules", err)
	})
	db.forgetRuleKinds(tenantID)
	return n, err
}

// FiredAlerts pages through the tenant's fired alerts, newest first.
func (db *DB) FiredAlerts(ctx context.Context, tenantID string, q backend.AlertQuery) (backend.AlertPage, error) {
	if err := tenantUUID(tenantID); err != nil {
		return backend.AlertPage{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = backend.DefaultAlertsPg
	}
	limit = min(limit, backend.MaxAlertsPage)
	before := int64(1<<63 - 1)
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return backend.AlertPage{}, backend.Errorf(backend.EINVALID, "cursor: not one this API returned")
		}
		before = n
	}
	page := backend.AlertPage{Alerts: []backend.FiredAlert{}}
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT f.id, f.body, f.fired_at, f.delivered_at, f.last_error, f.rule_id::text, f.kind, f.condition, f.window_start, r.threshold, r.window_s
			FROM fired_alerts f JOIN alert_rules r ON r.id = f.rule_id
			WHERE f.id < $1 ORDER BY f.id DESC LIMIT $2`, before, limit+1)
		if err != nil {
			return dbError("alerts", err)
		}
		var ids []int64
		page.Alerts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (backend.FiredAlert, error) {
			var fa backend.FiredAlert
			var id int64
			var body []byte
			var ws time.Time
			var window int
			err := row.Scan(&id, &body, &fa.FiredAt, &fa.DeliveredAt, &fa.LastError, &fa.RuleID, &fa.On, &fa.Condition, &ws, &fa.Threshold, &window)
			if err != nil {
				return fa, err
			}
			fa.Alert, err = alertBody(body, fa.RuleID, fa.On, fa.Condition, ws, fa.Threshold, window)
			ids = append(ids, id)
			return fa, err
		})
		if err != nil {
			return dbError("alerts", err)
		}
		if len(page.Alerts) > limit {
			page.Alerts = page.Alerts[:limit]
			page.NextCursor = strconv.FormatInt(ids[limit-1], 10)
		}
		return nil
	})
	return page, err
}

// alertBody completes the stored part of an alert (what the events said)
// with what its rule and window say.
func alertBody(body []byte, ruleID string, kind alerts.Kind, condition string, windowStart time.Time, threshold float64, windowS int) (alerts.Alert, error) {
	var a alerts.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("stored alert: %w", err)
	}
	a.ID = alerts.AlertID(ruleID, condition, windowStart.UTC().Format(time.RFC3339Nano))
	a.RuleID, a.On, a.Condition = ruleID, kind, condition
	a.Window = (time.Duration(windowS) * time.Second).String()
	if kind == alerts.HighRisk || kind.Windowed() {
		a.Threshold = threshold
	}
	a.Text = alerts.Title(kind, a.Text)
	return a, nil
}

// fireEventAlerts is the one statement Ingest adds to its transaction for
// the per-event rules: the batch's conditions ($1..$5, one row each,
// computed in Go by alerts.EventConditions) are matched with the tenant's
// rules. Servers and tools are remembered in alert_seen whether or not a
// rule exists, and fire new_server and new_tool only when this statement
// is the one that inserted them. Every alert goes in with ON CONFLICT DO
// NOTHING on (tenant, rule, condition, window start), so concurrent
// ingests of the same events (or a batch sent again) fire it once; only
// the inserted alerts go to the outbox. The window start of a first-seen
// rule is the epoch (it fires once ever); that of the others is the event's
// time aligned down to the rule's window.
const fireEventAlerts = `
WITH c AS (
    -- Bodies stay text until an alert fires: most conditions match no rule,
    -- and reading 500 of them as jsonb per batch cost ingest a fifth.
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[]) AS c(kind, cond, ts, score, body)
), seen AS (
    INSERT INTO alert_seen (tenant_id, kind, condition, first_at)
    SELECT DISTINCT ON (kind, cond) $6::uuid, kind, cond, ts FROM c
    WHERE kind IN ('new_server', 'new_tool') ORDER BY kind, cond, ts
    ON CONFLICT DO NOTHING
    RETURNING kind, condition
), hit AS (
    SELECT r.id AS rule_id, c.kind, c.cond, c.ts, c.body,
        CASE WHEN c.kind IN ('new_server', 'new_tool') THEN 'epoch'::timestamptz
             ELSE to_timestamp(floor(extract(epoch FROM c.ts) / r.window_s) * r.window_s) END AS window_start
    FROM c JOIN alert_rules r ON r.kind = c.kind AND c.ts >= r.created_at
    WHERE (c.kind NOT IN ('new_server', 'new_tool') OR EXISTS (SELECT 1 FROM seen s WHERE s.kind = c.kind AND s.condition = c.cond))
      AND (c.kind <> 'high_risk' OR c.score >= r.threshold)
), fired AS (
    INSERT INTO fired_alerts (tenant_id, rule_id, kind, condition, window_start, at, body)
    SELECT DISTINCT ON (rule_id, cond, window_start) $6::uuid, rule_id, kind, cond, window_start, ts, body::jsonb
    FROM hit ORDER BY rule_id, cond, window_start, ts
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO alert_outbox (tenant_id, alert_id, next_at) SELECT $6::uuid, id, '-infinity' FROM fired`

// eventConditions are the arguments of fireEventAlerts for a batch, nil
// when it has none. Only kinds in watched count, but for the sightings of
// new servers and tools, which are kept before any rule asks for them.
func eventConditions(tenantID string, b event.Batch, watched map[string]bool) ([]any, error) {
	servers := map[string]string{}
	for _, s := range b.Sessions {
		servers[s.ID] = s.Server
	}
	var kinds, conds []string
	var ts []time.Time
	var scores []float64
	var bodies []string
	once := map[string]bool{}
	// Most batches meet no rule but the sightings, which only the first
	// event showing a server or tool can make: an event that shows
	// nothing unseen is skipped before its conditions (and their texts)
	// are written.
	onlySightings := !watched[string(alerts.Poisoning)] && !watched[string(alerts.DefinitionChanged)] && !watched[string(alerts.HighRisk)]
	for i := range b.Events {
		e := &b.Events[i]
		server := e.Server
		if server == "" {
			server = servers[e.SessionID]
		}
		if onlySightings && !showsUnseen(once, e, server) {
			continue
		}
		for _, c := range alerts.EventConditions(e, server) {
			sighting := c.Kind == alerts.NewServer || c.Kind == alerts.NewTool
			if !sighting && !watched[string(c.Kind)] {
				continue
			}
			if c.Kind == alerts.HighRisk && c.Score <= 0 {
				continue // no threshold is under a score of 0 (zero means the default)
			}
			if c.Kind == alerts.NewServer || c.Kind == alerts.NewTool {
				// Only the first sighting in the batch can be new.
				k := string(c.Kind) + "\x00" + c.Condition
				if once[k] {
					continue
				}
				once[k] = true
			}
			a := alerts.Alert{Text: c.Text, Server: server, Tool: c.Tool, SessionID: e.SessionID,
				EventIDs: []string{e.ID}, Reasons: c.Reasons, At: e.TS.UTC()}
			if c.Kind == alerts.HighRisk {
				a.Value = c.Score
			}
			body, err := json.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("encode alert: %w", err)
			}
			kinds, conds, ts, scores, bodies = append(kinds, string(c.Kind)), append(conds, c.Condition),
				append(ts, e.TS), append(scores, c.Score), append(bodies, string(body))
		}
	}
	if len(kinds) == 0 {
		return nil, nil
	}
	return []any{textArray(kinds), textArray(conds), timestamptzArray(ts), float8Array(scores), textArray(bodies), tenantID}, nil
}

// showsUnseen reports whether e shows a server or tool that once (the
// sightings eventConditions has kept) does not hold yet.
func showsUnseen(once map[string]bool, e *event.Event, server string) bool {
	if server != "" && !once[string(alerts.NewServer)+"\x00"+server] {
		return true
	}
	for _, tool := range alerts.ToolsOf(e) {
		if !once[string(alerts.NewTool)+"\x00"+server+"/"+tool] {
			return true
		}
	}
	return false
}

// RunAlerts evaluates window rules and drains the outbox of every tenant
// that has either; one tenant's failure does not stop the others.
func (db *DB) RunAlerts(ctx context.Context, now time.Time) (backend.AlertRun, error) {
	var run backend.AlertRun
	var tenants []string
	err := db.inTx(ctx, roleAdmin, "", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT tenant_id::text FROM alert_rules WHERE kind IN ('failure_rate', 'latency_p95')
			UNION SELECT tenant_id::text FROM alert_outbox WHERE next_at <= $1`, now)
		if err != nil {
			return dbError("alert tenants", err)
		}
		tenants, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return dbErrorOr("alert tenants", err)
	})
	if err != nil {
		return run, err
	}
	var errs []error
	for _, t := range tenants {
		run.Tenants++
		n, err := db.evaluateWindows(ctx, t, now)
		run.Fired += n
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
		}
		if err := db.deliver(ctx, t, now, &run); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
		}
	}
	return run, errors.Join(errs...)
}

type windowRule struct {
	id        string
	kind      alerts.Kind
	threshold float64
	window    time.Duration
	created   time.Time
}

// evaluateWindows judges each window rule over its last two complete
// aligned windows before now; a run repeated in that window, or by another
// process, finds its alerts already fired.
func (db *DB) evaluateWindows(ctx context.Context, tenantID string, now time.Time) (int, error) {
	fired := 0
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		fired = 0
		rows, err := tx.Query(ctx, `SELECT id::text, kind, threshold, window_s, created_at FROM alert_rules WHERE kind IN ('failure_rate', 'latency_p95')`)
		if err != nil {
			return dbError("window rules", err)
		}
		rules, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (windowRule, error) {
			var r windowRule
			var w int
			err := row.Scan(&r.id, &r.kind, &r.threshold, &w, &r.created)
			r.window = time.Duration(w) * time.Second
			return r, err
		})
		if err != nil {
			return dbError("window rules", err)
		}
		type judged struct {
			r          windowRule
			start, end time.Time
		}
		var windows []judged
		for _, r := range rules {
			// The last two complete windows: a run missed (a deploy, a
			// scheduler hiccup) still judges the window it skipped, and
			// one judged already finds its alerts fired.
			for back := 2; back >= 1; back-- {
				start := now.Truncate(r.window).Add(-time.Duration(back) * r.window)
				if start.Before(r.created) {
					continue // a window before the rule existed fires nothing
				}
				windows = append(windows, judged{r, start, start.Add(r.window)})
			}
		}
		for _, w := range windows {
			r, start, end := w.r, w.start, w.end
			rows, err := tx.Query(ctx, `SELECT server, tool, count(*)::int, (count(*) FILTER (WHERE failed))::int, array_agg(latency_ms)
				FROM events WHERE ts >= $1 AND ts < $2 AND kind IN ('response', 'error') AND method = 'tools/call' AND latency_ms IS NOT NULL
				GROUP BY server, tool ORDER BY server, tool`, start, end)
			if err != nil {
				return dbError("window rule", err)
			}
			type group struct {
				server, tool  string
				calls, failed int
				ms            []float64
			}
			groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (group, error) {
				var g group
				err := row.Scan(&g.server, &g.tool, &g.calls, &g.failed, &g.ms)
				return g, err
			})
			if err != nil {
				return dbError("window rule", err)
			}
			for _, g := range groups {
				if g.calls < alerts.MinWindowCalls {
					continue
				}
				a := alerts.Alert{Server: g.server, Tool: g.tool, Calls: g.calls, At: end.UTC()}
				switch r.kind {
				case alerts.FailureRate:
					rate := float64(g.failed) / float64(g.calls)
					if rate < r.threshold {
						continue
					}
					a.Value, a.Text = rate, alerts.FailureText(g.server, g.tool, g.failed, g.calls, r.window, rate, r.threshold)
				case alerts.LatencyP95:
					// The percentile rule of stats, exact over the window's calls.
					s := stats.NewSample()
					for _, ms := range g.ms {
						s.Add(ms)
					}
					p95 := s.Percentiles().P95
					if p95 < r.threshold {
						continue
					}
					a.Value, a.Text = p95, alerts.LatencyText(g.server, g.tool, p95, g.calls, r.window, r.threshold)
				}
				body, err := json.Marshal(a)
				if err != nil {
					return fmt.Errorf("encode alert: %w", err)
				}
				var id int64
				err = tx.QueryRow(ctx, `WITH f AS (
					INSERT INTO fired_alerts (tenant_id, rule_id, kind, condition, window_start, at, body)
					VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id)
					INSERT INTO alert_outbox (tenant_id, alert_id, next_at) SELECT $1, id, '-infinity' FROM f RETURNING alert_id`,
					tenantID, r.id, string(r.kind), g.server+"/"+g.tool, start, end, body).Scan(&id)
				if errors.Is(err, pgx.ErrNoRows) {
					continue
				}
				if err != nil {
					return dbError("fire window alert", err)
				}
				fired++
			}
		}
		return nil
	})
	return fired, err
}

type delivery struct {
	alertID  int64
	attempts int
	alert    alerts.Alert
	webhook  string
	secret   string
}

// deliver posts the tenant's due alerts. Each is claimed first (its next
// attempt moved past the lease, its attempts counted) in a transaction of
// its own, so a concurrent run skips it and a crash mid-post only delays
// it; then posted once; then settled.
func (db *DB) deliver(ctx context.Context, tenantID string, now time.Time, run *backend.AlertRun) error {
	var due []delivery
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		due = nil
		rows, err := tx.Query(ctx, `WITH d AS (
				SELECT alert_id FROM alert_outbox WHERE next_at <= $1 ORDER BY alert_id LIMIT $2 FOR UPDATE SKIP LOCKED
			), claimed AS (
				UPDATE alert_outbox o SET attempts = o.attempts + 1, next_at = $3 FROM d WHERE o.alert_id = d.alert_id
				RETURNING o.alert_id, o.attempts
			)
			SELECT c.alert_id, c.attempts, f.body, f.rule_id::text, f.kind, f.condition, f.window_start, r.threshold, r.window_s, r.webhook, r.secret
			FROM claimed c JOIN fired_alerts f ON f.id = c.alert_id JOIN alert_rules r ON r.id = f.rule_id ORDER BY c.alert_id`,
			now, alertBatch, now.Add(alertLease))
		if err != nil {
			return dbError("claim alerts", err)
		}
		due, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (delivery, error) {
			var d delivery
			var body []byte
			var ruleID, cond string
			var kind alerts.Kind
			var ws time.Time
			var th float64
			var w int
			if err := row.Scan(&d.alertID, &d.attempts, &body, &ruleID, &kind, &cond, &ws, &th, &w, &d.webhook, &d.secret); err != nil {
				return d, err
			}
			var err error
			d.alert, err = alertBody(body, ruleID, kind, cond, ws, th, w)
			return d, err
		})
		return dbErrorOr("claim alerts", err)
	})
	if err != nil {
		return err
	}
	client := db.alertClient
	if client == nil {
		client = alerts.NewClient()
	}
	for _, d := range due {
		body, err := json.Marshal(d.alert)
		if err != nil {
			return fmt.Errorf("encode alert: %w", err)
		}
		perr := alerts.Post(ctx, client, "kilometers-backend", d.webhook, d.secret, body)
		var settle string
		var args []any
		switch {
		case perr == nil:
			run.Delivered++
			settle = `WITH o AS (DELETE FROM alert_outbox WHERE alert_id = $1 RETURNING alert_id)
				UPDATE fired_alerts SET delivered_at = $2, last_error = '' WHERE id IN (SELECT alert_id FROM o)`
			args = []any{d.alertID, now}
		case errors.Is(perr, alerts.ErrRefused) || d.attempts >= AlertAttempts:
			run.GivenUp++
			settle = `WITH o AS (DELETE FROM alert_outbox WHERE alert_id = $1 RETURNING alert_id)
				UPDATE fired_alerts SET last_error = $2 WHERE id IN (SELECT alert_id FROM o)`
			args = []any{d.alertID, truncateError(perr)}
		default:
			run.Failed++
			settle = `WITH o AS (UPDATE alert_outbox SET next_at = $3 WHERE alert_id = $1 RETURNING alert_id)
				UPDATE fired_alerts SET last_error = $2 WHERE id IN (SELECT alert_id FROM o)`
			args = []any{d.alertID, truncateError(perr), now.Add(alerts.Backoff(AlertBackoff, d.attempts))}
		}
		if err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, settle, args...)
			return dbErrorOr("settle alert", err)
		}); err != nil {
			return err
		}
	}
	return nil
}

func truncateError(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// SetAlertClient sets the HTTP client webhooks are posted with (nil:
// alerts.NewClient). Call it before serving.
func (db *DB) SetAlertClient(c *http.Client) { db.alertClient = c }
