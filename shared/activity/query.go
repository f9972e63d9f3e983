// Package activity defines the activity query: filters, newest-first order
// and cursor pagination, shared by GET /api/activity and `kilometers
// activity` so both answer the same question the same way.
package activity

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Page size limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Query selects events. Zero fields do not filter.
type Query struct {
	SessionID string
	Server    string
	Method    string
	Tool      string
	Kind      event.Kind
	// Failed keeps failed replies only (event.Event.Failed): JSON-RPC
	// errors and tool results with isError set.
	Failed bool
	// MinRisk keeps events at this risk level or above.
	MinRisk event.Level
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	Limit   int
	// Cursor continues after the last event of a previous page.
	Cursor *Cursor
}

// Page is the activity answer.
type Page struct {
	Events     []event.Event `json:"events"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// Cursor is the position of the last event of a page: events are ordered by
// (ts, id) descending, and ids are unique, so the pair is a total order.
type Cursor struct {
	TS time.Time
	ID string
}

// Encode makes an opaque cursor string.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.TS.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

// ErrBadCursor is returned for a cursor that was not made by Encode.
var ErrBadCursor = errors.New("invalid cursor")

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return nil, ErrBadCursor
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, ErrBadCursor
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrBadCursor
	}
	return &Cursor{TS: t, ID: id}, nil
}

// Before reports whether e sorts after the cursor in newest-first order,
// that is, whether it belongs on a later page.
func (c *Cursor) Before(e *event.Event) bool {
	if !e.TS.Equal(c.TS) {
		return e.TS.Before(c.TS)
	}
	return e.ID < c.ID
}

// Less orders events newest first, ties broken by id descending.
func Less(a, b *event.Event) bool {
	if !a.TS.Equal(b.TS) {
		return a.TS.After(b.TS)
	}
	return a.ID > b.ID
}

// Match reports whether e passes every filter of q (not the cursor or limit).
func (q *Query) Match(e *event.Event) bool {
	switch {
	case q.SessionID != "" && e.SessionID != q.SessionID,
		q.Server != "" && e.Server != q.Server,
		q.Method != "" && e.Method != q.Method,
		q.Tool != "" && e.Tool != q.Tool,
		q.Kind != "" && e.Kind != q.Kind,
		q.Failed && !e.Failed(),
		!q.Since.IsZero() && e.TS.Before(q.Since),
		!q.Until.IsZero() && !e.TS.Before(q.Until),
		q.MinRisk != "" && LevelRank(e.RiskLevel()) < LevelRank(q.MinRisk),
		q.Cursor != nil && !q.Cursor.Before(e):
		return false
	}
	return true
}

// LevelRank orders risk levels: low 0, medium 1, high 2.
func LevelRank(l event.Level) int {
	switch l {
	case event.LevelHigh:
		return 2
	case event.LevelMedium:
		return 1
	}
	return 0
}

// ParseQuery reads a query from URL parameters (session, server, method,
// tool, kind, failed, risk, since, until, limit, cursor). Times are RFC 3339 or a
// duration back from now ("1h", "30m", "7d").
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	q := Query{
		SessionID: v.Get("session"),
		Server:    v.Get("server"),
		Method:    v.Get("method"),
		Tool:      v.Get("tool"),
		Kind:      event.Kind(v.Get("kind")),
		MinRisk:   event.Level(v.Get("risk")),
		Limit:     DefaultLimit,
	}
	switch v.Get("failed") {
	case "", "false", "0":
	case "true", "1":
		q.Failed = true
	default:
		return q, fmt.Errorf("failed: must be true or false")
	}
	if q.SessionID != "" {
		if _, err := uuid.Parse(q.SessionID); err != nil {
			return q, fmt.Errorf("session: must be a UUID")
		}
	}
	if q.Kind != "" && !q.Kind.Valid() {
		return q, fmt.Errorf("kind: must be request, response, notification, error or invalid")
	}
	if q.MinRisk != "" && !q.MinRisk.Valid() {
		return q, fmt.Errorf("risk: must be low, medium or high")
	}
	var err error
	if q.Since, err = ParseTime(v.Get("since"), now); err != nil {
		return q, fmt.Errorf("since: %w", err)
	}
	if q.Until, err = ParseTime(v.Get("until"), now); err != nil {
		return q, fmt.Errorf("until: %w", err)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fmt.Errorf("limit: must be a whole number from 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("cursor"); s != "" {
		if q.Cursor, err = DecodeCursor(s); err != nil {
			return q, fmt.Errorf("cursor: %w", err)
		}
	}
	return q, nil
}

// Values is the inverse of ParseQuery, for clients of the API.
func (q *Query) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("session", q.SessionID)
	set("server", q.Server)
	set("method", q.Method)
	set("tool", q.Tool)
	set("kind", string(q.Kind))
	set("risk", string(q.MinRisk))
	if q.Failed {
		v.Set("failed", "true")
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != nil {
		v.Set("cursor", q.Cursor.Encode())
	}
	return v
}

// ParseTime reads a time as the CLI's --since and --until and the API's
// since and until take it: RFC 3339 ("2026-12-01T09:30:00Z"), a date
// ("2026-12-01", midnight in now's zone: the user's on the CLI, UTC on the
// API), or a span back from now: a Go duration ("90m", "24h"), days ("7d")
// or weeks ("2w"). Empty means zero.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, now.Location()); err == nil {
		return t.UTC(), nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			if k, err := strconv.Atoi(n); err == nil && k >= 0 && k <= 100*366 {
				return now.Add(-time.Duration(k) * unit).UTC(), nil
			}
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("want a time (2026-12-01T09:30:00Z), a date (2026-12-01) or a span back from now (30m, 24h, 7d, 2w), got %q", s)
}
