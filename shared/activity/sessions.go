package activity

import (
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// SessionRow is one row of `kilometers sessions` and of GET /api/sessions:
// the session record plus what its events add up to.
type SessionRow struct {
	event.Session
	// Calls counts the session's tools/call requests (stats.NewCall: a
	// retry after input_required is the same call).
	Calls int64 `json:"calls"`
	// Failed counts the session's failed replies (event.Event.Failed).
	Failed int64 `json:"failed"`
}

// SessionQuery selects sessions, newest start first. Zero fields do not
// filter; Since and Until bound started_at.
type SessionQuery struct {
	Server string
	Since  time.Time // inclusive
	Until  time.Time // exclusive
	Limit  int
	// Cursor continues after the last session of a previous page.
	Cursor *Cursor
}

// SessionPage is the answer of GET /api/sessions and
// `kilometers sessions --json`.
type SessionPage struct {
	Sessions   []SessionRow `json:"sessions"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// Call is one request paired with its reply, as `kilometers show --json`
// and GET /api/events/{id} answer for the id of either half. A half that
// was not recorded (a request still in flight, a notification) is nil.
type Call struct {
	Request  *event.Event `json:"request"`
	Response *event.Event `json:"response"`
}
