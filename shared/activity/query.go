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
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Page size limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
	// MaxPageBytes bounds a page in bytes as EventBytes counts them: a
	// page ends early, with a next_cursor, before it would pass this, so
	// an answer stays well under the 6 MB a Lambda function may return.
	// A page holds at least one event, and one event is at most about
	// event.MaxPayloadBytes plus its bounded fields.
	MaxPageBytes = 4 << 20
	// MaxScanRows bounds how many events (newest first, within session,
	// since, until and cursor) one page walks to find those matching its
	// other filters; a page that walked this far ends there, with a
	// next_cursor, even with fewer events than its limit, or none.
	MaxScanRows = 20000
)

// EventBytes is an upper bound on the size of e in a page's JSON: its
// payload as stored plus every text field escaped at worst, plus the
// fixed fields.
func EventBytes(e *event.Event) int {
	n := 512 + len(e.Payload)
	for _, s := range []string{e.ID, e.SessionID, e.Server, e.RPCID, e.Method, e.Tool, e.Prompt, e.ResourceURI, e.ErrorMessage} {
		n += 6 * len(s)
	}
	if e.Risk != nil {
		for _, r := range e.Risk.Reasons {
			n += 3 + 6*len(r)
		}
	}
	return n
}

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
	// MaxBytes bounds the page in bytes as EventBytes counts them, below
	// MaxPageBytes; 0 means MaxPageBytes. It is the server's choice, not a
	// URL parameter.
	MaxBytes int
}

// PageBytes is the byte bound of q's page: MaxBytes when set (and below
// MaxPageBytes), else MaxPageBytes.
func (q *Query) PageBytes() int {
	if q.MaxBytes > 0 && q.MaxBytes < MaxPageBytes {
		return q.MaxBytes
	}
	return MaxPageBytes
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
	if err != nil || t.Before(MinTime) || !t.Before(MaxTime) {
		return nil, ErrBadCursor
	}
	if !CanonicalUUID(id) {
		return nil, ErrBadCursor
	}
	return &Cursor{TS: t, ID: id}, nil
}

// CanonicalUUID reports whether s is a UUID in the one spelling every part
// of Kilometers (and PostgreSQL) reads: 8-4-4-4-12 hex digits. uuid.Parse
// alone also takes urn:uuid: and braced forms.
func CanonicalUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// MaxTextParam bounds a text filter (server, method, tool), in bytes: no
// stored name is longer (event.MaxNameLen).
const MaxTextParam = event.MaxNameLen

// ParseText checks a text filter: valid UTF-8 without NUL characters, at
// most MaxTextParam bytes. Stored names are cleaned to that form
// (event.Clean), so anything else could match nothing.
func ParseText(name, s string) (string, error) {
	switch {
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%s: must be valid UTF-8", name)
	case strings.IndexByte(s, 0) >= 0:
		return "", fmt.Errorf("%s: must not contain NUL characters", name)
	case len(s) > MaxTextParam:
		return "", fmt.Errorf("%s: longer than %d bytes", name, MaxTextParam)
	}
	return s, nil
}

// Times in queries and cursors fall in [MinTime, MaxTime): every instant
// an event can carry (event.Validate takes years from 2000), with room to
// round a window out to whole minutes and still print it in RFC 3339.
var (
	MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

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
		Kind:      event.Kind(v.Get("kind")),
		MinRisk:   event.Level(v.Get("risk")),
		Limit:     DefaultLimit,
	}
	var err error
	for _, p := range []struct {
		name string
		dst  *string
	}{{"server", &q.Server}, {"method", &q.Method}, {"tool", &q.Tool}} {
		if *p.dst, err = ParseText(p.name, v.Get(p.name)); err != nil {
			return q, err
		}
	}
	switch v.Get("failed") {
	case "", "false", "0":
	case "true", "1":
		q.Failed = true
	default:
		return q, fmt.Errorf("failed: must be true or false")
	}
	if q.SessionID != "" && !CanonicalUUID(q.SessionID) {
		return q, fmt.Errorf("session: must be a UUID written as 8-4-4-4-12 hex digits, got %q", q.SessionID)
	}
	if q.Kind != "" && !q.Kind.Valid() {
		return q, fmt.Errorf("kind: must be request, response, notification, error or invalid")
	}
	if q.MinRisk != "" && !q.MinRisk.Valid() {
		return q, fmt.Errorf("risk: must be low, medium or high")
	}
	q.Since, q.Until, q.Limit, q.Cursor, err = parsePage(v, now, q.Limit)
	return q, err
}

// parsePage reads the parameters every paged read takes alike: since,
// until, limit (def when absent) and cursor.
func parsePage(v url.Values, now time.Time, def int) (since, until time.Time, limit int, cursor *Cursor, err error) {
	limit = def
	if since, err = ParseTime(v.Get("since"), now); err != nil {
		return since, until, limit, nil, fmt.Errorf("since: %w", err)
	}
	if until, err = ParseTime(v.Get("until"), now); err != nil {
		return since, until, limit, nil, fmt.Errorf("until: %w", err)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return since, until, limit, nil, fmt.Errorf("limit: must be a whole number from 1 to %d", MaxLimit)
		}
		limit = n
	}
	if s := v.Get("cursor"); s != "" {
		if cursor, err = DecodeCursor(s); err != nil {
			return since, until, limit, nil, fmt.Errorf("cursor: %w", err)
		}
	}
	return since, until, limit, cursor, nil
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
// or weeks ("2w").
// Empty means zero. Times outside [MinTime, MaxTime) are refused, never
// wrapped.
func ParseTime(s string, now time.Time) (time.Time, error) {
	t, err := parseTime(s, now)
	if err != nil || t.IsZero() {
		return t, err
	}
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return time.Time{}, fmt.Errorf("%q is outside %s to %s", s, MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	return t, nil
}

// maxSpan bounds a span back from now: a century, well inside
// time.Duration, so days and weeks never overflow and wrap.
const maxSpan = 100 * 366 * 24 * time.Hour

// parseTime is ParseTime without the range check.
func parseTime(s string, now time.Time) (time.Time, error) {
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
			if k, err := strconv.Atoi(n); err == nil && k >= 0 && k <= int(maxSpan/unit) {
				return now.Add(-time.Duration(k) * unit).UTC(), nil
			}
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("want a time (2026-12-01T09:30:00Z), a date (2026-12-01) or a span back from now (30m, 24h, 7d, 2w), got %q", s)
}
