package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/event/eventtest"
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

// The backend reads percentiles by the Aggregator's rule: twelve replies
// between 1199 and 1219 ms, sent in two batches, give their exact nearest
// ranks, and a tool with more replies than rollup rows keep stays within
// its observed range.
func TestPercentilesExactForSmallSamples(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	sid := newID(t)
	var events []event.Event
	reply := func(i int, tool string, ms float64) event.Event {
		return event.Event{ID: newID(t), SessionID: sid, Seq: int64(i), TS: base.Add(time.Duration(i) * time.Second),
			Direction: event.ServerToClient, Kind: event.KindResponse, Server: "fs", Method: "tools/call", Tool: tool,
			LatencyMS: &ms, Size: 10}
	}
	for i, ms := range []float64{1211, 1199, 1203.5, 1219, 1207, 1200, 1215, 1209, 1201.25, 1213, 1205, 1217} {
		events = append(events, reply(i, "slow", ms))
	}
	for i := range stats.ExactSample + 50 {
		events = append(events, reply(100+i, "busy", 1199+float64(i%21)))
	}
	ingest(t, db, tenant, event.Batch{Events: events[:5]})
	ingest(t, db, tenant, event.Batch{Events: events[5:]})
	q := stats.Query{Since: base.Add(-time.Hour), Until: base.Add(time.Hour)}.Align(base)
	got, err := db.Stats(ctx, tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := aggregate(events, q); !reflect.DeepEqual(got, want) {
		t.Errorf("stats differ from the Aggregator:\n got %+v\nwant %+v", got.Tools, want.Tools)
	}
	for _, tool := range got.Tools {
		switch tool.Tool {
		case "slow":
			if tool.Percentiles != (stats.Percentiles{P50: 1207, P95: 1219, P99: 1219}) {
				t.Errorf("slow: %+v, want the exact nearest ranks 1207, 1219, 1219", tool.Percentiles)
			}
		case "busy":
			for _, p := range []float64{tool.P50, tool.P95, tool.P99} {
				if p < 1199 || p > 1219 {
					t.Errorf("busy: %+v, outside the data [1199, 1219]", tool.Percentiles)
				}
			}
		}
	}
}

// TestEveryEventFieldIsStored fails when a field added to event.Event does
// not survive ingest and the read routes: every field gets a non-zero
// value (valid where the contract requires it) and must come back.
func TestEveryEventFieldIsStored(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	var e event.Event
	eventtest.FillNonZero(t, &e, base)
	e.ID, e.SessionID = newID(t), newID(t)
	e.Direction, e.Kind = event.ServerToClient, event.KindResponse
	e.Risk.Score, e.Risk.Level = 75, event.LevelHigh
	if err := e.Validate(base); err != nil {
		t.Fatalf("the filled event is invalid: %v", err)
	}
	ingest(t, db, tenant, event.Batch{Events: []event.Event{e}})
	call, err := db.Call(ctx, tenant, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := call.Response
	if got == nil {
		t.Fatalf("call = %+v", call)
	}
	if !jsonEqual(t, got.Payload, e.Payload) {
		t.Errorf("payload %s, want %s", got.Payload, e.Payload)
	}
	got.Payload, e.Payload = nil, nil
	if !reflect.DeepEqual(*got, e) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(e)
		t.Errorf("stored and read back:\n got %s\nwant %s", g, w)
	}
}

// TestEverySessionFieldIsStored is the same for event.Session through
// GET /api/sessions.
func TestEverySessionFieldIsStored(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	tenant := mustTenant(t, db, "acme")
	var s event.Session
	eventtest.FillNonZero(t, &s, base)
	s.ID = newID(t)
	end := base.Add(time.Minute)
	s.EndedAt = &end
	if err := s.Validate(base); err != nil {
		t.Fatalf("the filled session is invalid: %v", err)
	}
	ingest(t, db, tenant, event.Batch{Sessions: []event.Session{s}})
	got := allSessions(t, db, tenant, activity.SessionQuery{})
	if len(got) != 1 || !reflect.DeepEqual(got[0].Session, s) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(s)
		t.Errorf("stored and read back:\n got %s\nwant %s", g, w)
	}
}
