package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

func allSessions(t *testing.T, db *postgres.DB, tenant string, q activity.SessionQuery) []activity.SessionRow {
	t.Helper()
	var out []activity.SessionRow
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		p, err := db.Sessions(context.Background(), tenant, q)
		if err != nil {
			t.Fatalf("Sessions: %v", err)
		}
		out = append(out, p.Sessions...)
		if p.NextCursor == "" {
			return out
		}
		if q.Cursor, err = activity.DecodeCursor(p.NextCursor); err != nil {
			t.Fatalf("cursor: %v", err)
		}
	}
}

// TestSessionsPageAndCount holds GET /api/sessions to the reference: the
// sessions matching the query newest first, each with its counts as
// stats.NewCall and event.Event.Failed add them up over the session's
// events.
func TestSessionsPageAndCount(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	tenant := mustTenant(t, db, "acme")
	other := mustTenant(t, db, "other")
	r := rand.New(rand.NewPCG(11, 12))
	ids := newSessions(t, 9)
	servers := []string{"fs", "git", "web"}
	var sessions []event.Session
	for i, id := range ids {
		s := event.Session{ID: id, Server: servers[i%3], Command: []string{"npx", "server"}, Host: "h",
			StartedAt: base.Add(time.Duration(i/2) * 10 * time.Minute)} // pairs share a start
		if i%2 == 0 {
			end, code := s.StartedAt.Add(time.Minute), i
			s.EndedAt, s.ExitCode, s.Warnings = &end, &code, []string{"capture_mode: bad; recorded with the default"}
		}
		sessions = append(sessions, s)
	}
	events := genEvents(t, r, 300, base, 2*time.Hour, ids, servers)
	ingest(t, db, tenant, event.Batch{Sessions: sessions, Events: events[:150]})
	ingest(t, db, tenant, event.Batch{Events: events[150:]})
	ingest(t, db, other, event.Batch{Sessions: []event.Session{{ID: newID(t), Server: "fs", StartedAt: base}}})

	counts := map[string][2]int64{}
	for i := range events {
		c := counts[events[i].SessionID]
		if stats.NewCall(&events[i]) {
			c[0]++
		}
		if events[i].Failed() {
			c[1]++
		}
		counts[events[i].SessionID] = c
	}
	for _, q := range []activity.SessionQuery{
		{},
		{Limit: 1},
		{Limit: 4},
		{Limit: 2, Server: "git"},
		{Since: base.Add(10 * time.Minute), Until: base.Add(30 * time.Minute)},
	} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			var want []activity.SessionRow
			for i := range sessions {
				if q.Match(&sessions[i]) {
					c := counts[sessions[i].ID]
					want = append(want, activity.SessionRow{Session: sessions[i], Calls: c[0], Failed: c[1]})
				}
			}
			sort.Slice(want, func(i, j int) bool { return activity.SessionLess(&want[i].Session, &want[j].Session) })
			got := allSessions(t, db, tenant, q)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
	var calls int64
	for _, c := range counts {
		calls += c[0]
	}
	if calls == 0 {
		t.Fatal("the generated events hold no tool calls; the counts were not tested")
	}
}

// TestCallPairsBothHalves: the id of either half gives the request and its
// reply, an id reused later in the session pairs with its own reply, a
// notification has no reply, and another tenant's or an unknown id is not
// found.
func TestCallPairsBothHalves(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant, other := mustTenant(t, db, "acme"), mustTenant(t, db, "other")
	sid := newID(t)
	lat := 5.0
	ev := func(seq int, dir event.Direction, kind event.Kind, rpcID string) event.Event {
		e := event.Event{ID: newID(t), SessionID: sid, Seq: int64(seq), TS: base.Add(time.Duration(seq) * time.Millisecond),
			Direction: dir, Kind: kind, RPCID: rpcID, Method: "tools/call", Tool: "t", Size: 10}
		if e.IsReply() {
			e.LatencyMS = &lat
		}
		return e
	}
	c2s, s2c := event.ClientToServer, event.ServerToClient
	evs := []event.Event{
		ev(1, c2s, event.KindRequest, "1"),
		ev(2, s2c, event.KindRequest, "1"), // the server's own request 1: other direction
		ev(3, c2s, event.KindRequest, "2"),
		ev(4, s2c, event.KindResponse, "1"),
		ev(5, c2s, event.KindResponse, "1"), // answers the server's request
		ev(6, s2c, event.KindError, "2"),
		ev(7, c2s, event.KindRequest, "1"), // id 1 reused
		ev(8, s2c, event.KindResponse, "1"),
		ev(9, c2s, event.KindNotification, ""),
		ev(10, c2s, event.KindRequest, "3"), // never answered
	}
	evs[5].ErrorMessage = "boom"
	ingest(t, db, tenant, event.Batch{Events: evs})
	pairs := []struct{ req, reply int }{{0, 3}, {1, 4}, {2, 5}, {6, 7}, {8, -1}, {9, -1}}
	for _, p := range pairs {
		for _, half := range []int{p.req, p.reply} {
			if half < 0 {
				continue
			}
			call, err := db.Call(ctx, tenant, evs[half].ID)
			if err != nil {
				t.Fatalf("Call(event %d): %v", half, err)
			}
			if call.Request == nil || call.Request.ID != evs[p.req].ID {
				t.Errorf("Call(event %d).Request = %+v, want event %d", half, call.Request, p.req)
			}
			switch {
			case p.reply < 0 && call.Response != nil:
				t.Errorf("Call(event %d).Response = %+v, want none", half, call.Response)
			case p.reply >= 0 && (call.Response == nil || call.Response.ID != evs[p.reply].ID):
				t.Errorf("Call(event %d).Response = %+v, want event %d", half, call.Response, p.reply)
			}
		}
	}
	call, err := db.Call(ctx, tenant, evs[2].ID)
	if err != nil || call.Response == nil || call.Response.ErrorMessage != "boom" {
		t.Errorf("the error reply came back as %+v (%v)", call.Response, err)
	}
	for _, id := range []string{newID(t), "not-a-uuid", evs[0].ID} {
		tn := tenant
		if id == evs[0].ID {
			tn = other
		}
		if _, err := db.Call(ctx, tn, id); backend.ErrorCode(err) != backend.ENOTFOUND {
			t.Errorf("Call(%s) by tenant %s: %v, want not found", id, tn, err)
		}
	}
}
