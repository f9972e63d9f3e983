package stats

import (
	"fmt"
	"net/url"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
)

// MaxWindow bounds the window of a stats query (before it is widened to
// whole minutes).
const MaxWindow = 366 * 24 * time.Hour

// Query selects the window and server of a stats answer.
type Query struct {
	Since, Until time.Time // aligned by ParseQuery / Align
	Server       string
}

// Align fills defaults and rounds the window (see AlignWindow).
func (q Query) Align(now time.Time) Query {
	q.Since, q.Until = AlignWindow(q.Since, q.Until, now)
	return q
}

// ParseQuery reads since, until and server from URL parameters; times are
// RFC 3339 or durations back from now, as in activity.ParseTime.
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	var q Query
	var err error
	if q.Since, err = activity.ParseTime(v.Get("since"), now); err != nil {
		return q, fmt.Errorf("since: %w", err)
	}
	if q.Until, err = activity.ParseTime(v.Get("until"), now); err != nil {
		return q, fmt.Errorf("until: %w", err)
	}
	if q.Server, err = activity.ParseText("server", v.Get("server")); err != nil {
		return q, err
	}
	// The window's length is judged as asked, before it is widened to
	// whole minutes, so that exactly MaxWindow is accepted.
	since, until := q.Since, q.Until
	if until.IsZero() {
		until = now
	}
	if since.IsZero() {
		since = until.Add(-DefaultWindow)
	}
	if !since.Before(until) {
		return q, fmt.Errorf("since must be before until")
	}
	if until.Sub(since) > MaxWindow {
		return q, fmt.Errorf("window longer than %d days", int(MaxWindow.Hours()/24))
	}
	return q.Align(now), nil
}

// Values is the inverse of ParseQuery, for clients of the API.
func (q Query) Values() url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Server != "" {
		v.Set("server", q.Server)
	}
	return v
}
