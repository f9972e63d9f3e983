package activity

import (
	"net/url"
	"strconv"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/rpcpair"
)

// ParseSessionQuery reads a session query from URL parameters (server,
// since, until, limit, cursor), with the same forms and limits as
// ParseQuery.
func ParseSessionQuery(v url.Values, now time.Time) (SessionQuery, error) {
	var q SessionQuery
	var err error
	if q.Server, err = ParseText("server", v.Get("server")); err != nil {
		return q, err
	}
	q.Since, q.Until, q.Limit, q.Cursor, err = parsePage(v, now, DefaultLimit)
	return q, err
}

// Values is the inverse of ParseSessionQuery, for clients of the API.
func (q *SessionQuery) Values() url.Values {
	v := url.Values{}
	if q.Server != "" {
		v.Set("server", q.Server)
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

// Match reports whether s passes every filter of q (not the cursor or
// limit).
func (q *SessionQuery) Match(s *event.Session) bool {
	switch {
	case q.Server != "" && s.Server != q.Server,
		!q.Since.IsZero() && s.StartedAt.Before(q.Since),
		!q.Until.IsZero() && !s.StartedAt.Before(q.Until):
		return false
	}
	return true
}

// SessionLess orders sessions as pages list them: newest start first, then
// by id descending.
func SessionLess(a, b *event.Session) bool {
	if !a.StartedAt.Equal(b.StartedAt) {
		return a.StartedAt.After(b.StartedAt)
	}
	return a.ID > b.ID
}

// SessionCursor is the cursor that continues after s.
func SessionCursor(s *event.Session) Cursor { return Cursor{TS: s.StartedAt, ID: s.ID} }

// SessionBefore is Before for sessions: whether s sorts after the cursor
// in newest-first order, that is, belongs on a later page.
func (c *Cursor) SessionBefore(s *event.Session) bool {
	return SessionLess(&event.Session{StartedAt: c.TS, ID: c.ID}, s)
}

// Answers reports whether reply answers req by the rule of package
// rpcpair, the monitor's own: same session, the same JSON-RPC id
// travelling the other way, and the reply later. When an id is reused, a reply answers the latest request
// before it (the monitor forgets a request once it is answered), so
// among candidates pick the request with the highest Seq below the
// reply's, and the reply with the lowest Seq above the request's.
func Answers(req, reply *event.Event) bool {
	return req.Kind == event.KindRequest && reply.IsReply() &&
		req.SessionID == reply.SessionID && req.RPCID != "" && req.Seq < reply.Seq &&
		rpcpair.ReplyKey(reply.Direction, reply.RPCID) == rpcpair.RequestKey(req.Direction, req.RPCID)
}
