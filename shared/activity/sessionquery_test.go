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
	if c := SessionCursor(&later); c.ID != later.ID || !c.TS.Equal(later.StartedAt) {
		t.Errorf("cursor %+v", c)
	}
	tests := []struct {
		q    SessionQuery
		s    event.Session
		want bool
	}{
		{SessionQuery{}, s, true},
		{SessionQuery{Server: "git"}, s, false},
		{SessionQuery{Since: s.StartedAt}, s, true},
		{SessionQuery{Until: s.StartedAt}, s, false},
	}
	for i, tt := range tests {
		if got := tt.q.Match(&tt.s); got != tt.want {
			t.Errorf("case %d: Match = %v", i, got)
		}
	}
}
