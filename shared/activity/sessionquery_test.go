package activity

import (
	"net/url"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestSessionQuery(t *testing.T) {
	sid := "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10"
	cur := SessionCursor(&event.Session{ID: sid, StartedAt: now.Add(-time.Hour)})
	v, _ := url.ParseQuery("server=fs&since=2d&until=2026-11-23T00:00:00Z&limit=7&cursor=" + cur.Encode())
	q, err := ParseSessionQuery(v, now)
	if err != nil {
		t.Fatal(err)
	}
	if q.Server != "fs" || !q.Since.Equal(now.Add(-48*time.Hour)) || q.Limit != 7 || q.Cursor == nil || q.Cursor.ID != sid {
		t.Fatalf("parsed %+v", q)
	}
	q2, err := ParseSessionQuery(q.Values(), now)
	if err != nil || q2.Server != q.Server || !q2.Since.Equal(q.Since) || !q2.Until.Equal(q.Until) || q2.Limit != 7 || *q2.Cursor != *q.Cursor {
		t.Errorf("round trip: %+v, %v", q2, err)
	}
	for _, bad := range []string{"since=soon", "until=x", "limit=0", "limit=1001", "cursor=zz"} {
		v, _ := url.ParseQuery(bad)
		if _, err := ParseSessionQuery(v, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}

	s := event.Session{ID: sid, Server: "fs", StartedAt: now.Add(-2 * time.Hour)}
	later := event.Session{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f11", Server: "fs", StartedAt: now.Add(-time.Hour)}
	if !SessionLess(&later, &s) || SessionLess(&s, &later) {
		t.Error("newest start must come first")
	}
	c := SessionCursor(&later)
	tests := []struct {
		q    SessionQuery
		s    event.Session
		want bool
	}{
		{SessionQuery{}, s, true},
		{SessionQuery{Server: "git"}, s, false},
		{SessionQuery{Since: s.StartedAt}, s, true},
		{SessionQuery{Until: s.StartedAt}, s, false},
		{SessionQuery{Cursor: &c}, s, true},
		{SessionQuery{Cursor: &c}, later, false}, // the cursor's own session does not repeat
	}
	for i, tt := range tests {
		if got := tt.q.Match(&tt.s); got != tt.want {
			t.Errorf("case %d: Match = %v", i, got)
		}
	}
}

func TestPairer(t *testing.T) {
	sid := "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10"
	ev := func(seq int64, dir event.Direction, kind event.Kind, id string) event.Event {
		return event.Event{ID: string(rune('a' + seq)), SessionID: sid, Seq: seq, Direction: dir, Kind: kind, RPCID: id}
	}
	c2s, s2c := event.ClientToServer, event.ServerToClient
	req := ev(1, c2s, event.KindRequest, "1")
	other := []event.Event{
		ev(5, s2c, event.KindResponse, "1"), // a later reply to a reused id
		ev(2, s2c, event.KindResponse, "1"), // the reply
		ev(3, c2s, event.KindResponse, "1"), // wrong direction
		ev(0, s2c, event.KindResponse, "1"), // before the request
	}
	wrongSession := ev(2, s2c, event.KindResponse, "1")
	wrongSession.SessionID, wrongSession.ID = "other", "z"
	p := NewPairer(req)
	p.Offer(wrongSession)
	for _, e := range other {
		p.Offer(e)
	}
	if c := p.Call(); c.Request == nil || c.Request.Seq != 1 || c.Response == nil || c.Response.Seq != 2 {
		t.Errorf("request's call = %+v", c)
	}
	// From the reply at seq 5, the request is the latest before it.
	p = NewPairer(other[0])
	for _, e := range []event.Event{req, ev(4, c2s, event.KindRequest, "1"), ev(6, c2s, event.KindRequest, "1")} {
		p.Offer(e)
	}
	if c := p.Call(); c.Request == nil || c.Request.Seq != 4 || c.Response.Seq != 5 {
		t.Errorf("reply's call = %+v", c)
	}
	n := ev(1, c2s, event.KindNotification, "")
	p = NewPairer(n)
	p.Offer(ev(2, s2c, event.KindResponse, ""))
	if c := p.Call(); c.Request == nil || c.Response != nil {
		t.Errorf("notification's call = %+v", c)
	}
}
