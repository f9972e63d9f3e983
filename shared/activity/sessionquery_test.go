package activity

import (
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestParseSessionQuery(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cur := Cursor{TS: now.Add(-time.Hour), ID: "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"}
	full := SessionQuery{Server: "fs", Since: now.Add(-24 * time.Hour), Until: now.Add(-time.Minute), Limit: 7, Cursor: &cur}
	tests := []struct {
		query string
		want  SessionQuery
		err   string
	}{
		{"", SessionQuery{Limit: DefaultLimit}, ""},
		{full.Values().Encode(), full, ""},
		{"since=1d&limit=1000", SessionQuery{Since: now.Add(-24 * time.Hour), Limit: 1000}, ""},
		{"limit=0", SessionQuery{}, "limit: must be a whole number from 1 to 1000"},
		{"limit=x", SessionQuery{}, "limit: must be a whole number from 1 to 1000"},
		{"since=tuesday", SessionQuery{}, `since: want a time (2026-12-01T09:30:00Z), a date (2026-12-01) or a span back from now (30m, 24h, 7d, 2w), got "tuesday"`},
		{"until=-1h", SessionQuery{}, `until: want a time (2026-12-01T09:30:00Z), a date (2026-12-01) or a span back from now (30m, 24h, 7d, 2w), got "-1h"`},
		{"cursor=nope", SessionQuery{}, "cursor: invalid cursor"},
		{"server=a%00b", SessionQuery{}, "server: must not contain NUL characters"},
		{"server=%ff", SessionQuery{}, "server: must be valid UTF-8"},
	}
	for _, tt := range tests {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSessionQuery(v, now)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.query, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, %v; want %+v", tt.query, got, err, tt.want)
		}
	}
}

func TestSessionMatchAndOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := event.Session{ID: "a", Server: "fs", StartedAt: t0}
	b := event.Session{ID: "b", Server: "fs", StartedAt: t0}
	c := event.Session{ID: "c", Server: "git", StartedAt: t0.Add(time.Minute)}
	if !SessionLess(&c, &a) || !SessionLess(&b, &a) || SessionLess(&a, &b) {
		t.Error("want newest start first, then id descending")
	}
	q := SessionQuery{Server: "fs", Since: t0, Until: t0.Add(time.Minute)}
	if !q.Match(&a) || q.Match(&c) {
		t.Error("server and window filters")
	}
	q = SessionQuery{Until: t0.Add(time.Minute)}
	if q.Match(&c) {
		t.Error("until is exclusive")
	}
	cur := SessionCursor(&b)
	if !cur.SessionBefore(&a) || cur.SessionBefore(&b) || cur.SessionBefore(&c) {
		t.Error("a cursor after b lets a through only")
	}
}

func TestAnswers(t *testing.T) {
	req := event.Event{SessionID: "s", Seq: 1, Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: "1"}
	reply := event.Event{SessionID: "s", Seq: 2, Direction: event.ServerToClient, Kind: event.KindError, RPCID: "1"}
	if !Answers(&req, &reply) {
		t.Fatal("a reply with the same id on the other side answers")
	}
	for name, change := range map[string]func(r *event.Event){
		"other session":   func(r *event.Event) { r.SessionID = "t" },
		"same direction":  func(r *event.Event) { r.Direction = event.ClientToServer },
		"other id":        func(r *event.Event) { r.RPCID = "2" },
		"before":          func(r *event.Event) { r.Seq = 0 },
		"not a reply":     func(r *event.Event) { r.Kind = event.KindNotification },
		"empty id either": func(r *event.Event) { r.RPCID = "" },
	} {
		r := reply
		change(&r)
		if name == "empty id either" {
			q := req
			q.RPCID = ""
			if Answers(&q, &r) {
				t.Errorf("%s: answers", name)
			}
			continue
		}
		if Answers(&req, &r) {
			t.Errorf("%s: answers", name)
		}
	}
}
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
