package activity

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{TS: now.Add(123456 * time.Nanosecond), ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10"}
	got, err := DecodeCursor(c.Encode())
	if err != nil || !got.TS.Equal(c.TS) || got.ID != c.ID {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "!!", "bm90IGEgY3Vyc29y", Cursor{TS: now, ID: "x"}.Encode()} {
		if _, err := DecodeCursor(bad); err == nil {
			t.Errorf("DecodeCursor(%q) accepted", bad)
		}
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		query string
		check func(Query) bool
		bad   bool
	}{
		{"", func(q Query) bool { return q.Limit == DefaultLimit && q.Since.IsZero() }, false},
		{"since=1h&limit=10&tool=read_file&risk=high", func(q Query) bool {
			return q.Since.Equal(now.Add(-time.Hour)) && q.Limit == 10 && q.Tool == "read_file" && q.MinRisk == event.LevelHigh
		}, false},
		{"since=7d", func(q Query) bool { return q.Since.Equal(now.Add(-7 * 24 * time.Hour)) }, false},
		{"since=2026-11-22T00:00:00Z", func(q Query) bool { return q.Since.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) }, false},
		{"since=yesterday", nil, true},
		{"limit=0", nil, true},
		{"limit=1001", nil, true},
		{"limit=ten", nil, true},
		{"kind=reply", nil, true},
		{"risk=severe", nil, true},
		{"session=abc", nil, true},
		{"cursor=zzz", nil, true},
		{"session=urn:uuid:0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31", nil, true},
		{"session={0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31}", nil, true},
		{"session=0196f1c26e007a558c1d2f4b6a8e0c31", nil, true},
		{"server=a%00b", nil, true},
		{"method=%ff", nil, true},
		{"tool=" + strings.Repeat("x", MaxTextParam+1), nil, true},
		{"since=106752d", nil, true},
		{"since=99999999d", nil, true},
		{"since=1969-12-31T23:59:59Z", nil, true},
		{"until=9999-01-01T00:00:00Z", nil, true},
		{"cursor=" + Cursor{TS: now, ID: "urn:uuid:0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"}.Encode(), nil, true},
		{"cursor=" + Cursor{TS: time.Date(9999, 6, 1, 0, 0, 0, 0, time.UTC), ID: "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"}.Encode(), nil, true},
		{"since=1970-01-01T00:00:00Z&until=9998-12-31T23:59:59Z", func(q Query) bool { return q.Since.Equal(MinTime) }, false},
		{"since=3650d", func(q Query) bool { return q.Since.Equal(now.AddDate(0, 0, -3650)) }, false},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		q, err := ParseQuery(v, now)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: accepted", tt.query)
			}
			continue
		}
		if err != nil || !tt.check(q) {
			t.Errorf("%q: %+v, %v", tt.query, q, err)
		}
		// Values must survive a round trip through the URL.
		q2, err := ParseQuery(q.Values(), now)
		if err != nil || q2.Tool != q.Tool || !q2.Since.Equal(q.Since) || q2.Limit != q.Limit {
			t.Errorf("%q: round trip gave %+v, %v", tt.query, q2, err)
		}
	}
}

func TestMatchAndOrder(t *testing.T) {
	a := event.Event{ID: "0196f1c2-0000-7000-8000-000000000001", TS: now, Server: "fs", Kind: event.KindRequest, Tool: "read_file",
		Risk: &event.Risk{Score: 50, Level: event.LevelMedium}}
	b := a
	b.ID = "0196f1c2-0000-7000-8000-000000000002"
	if !Less(&b, &a) || Less(&a, &b) {
		t.Error("ties must break on id descending")
	}
	c := Cursor{TS: b.TS, ID: b.ID}
	tests := []struct {
		q    Query
		want bool
	}{
		{Query{}, true},
		{Query{Server: "fs", Tool: "read_file", Kind: event.KindRequest}, true},
		{Query{Server: "github"}, false},
		{Query{MinRisk: event.LevelMedium}, true},
		{Query{MinRisk: event.LevelHigh}, false},
		{Query{Since: now}, true},
		{Query{Until: now}, false},
		{Query{Cursor: &c}, true}, // a sorts after b, so it is on the next page
	}
	for i, tt := range tests {
		if got := tt.q.Match(&a); got != tt.want {
			t.Errorf("case %d: Match = %v", i, got)
		}
	}
	if (&Query{Cursor: &c}).Match(&b) {
		t.Error("the cursor's own event must not repeat on the next page")
	}
}
