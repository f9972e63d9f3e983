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
		{"since=tuesday", SessionQuery{}, `since: want an RFC 3339 time or a duration like 30m, 24h or 7d, got "tuesday"`},
		{"until=-1h", SessionQuery{}, `until: want an RFC 3339 time or a duration like 30m, 24h or 7d, got "-1h"`},
		{"cursor=nope", SessionQuery{}, "cursor: invalid cursor"},
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
