package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// callEvent makes one message of a conversation.
func callEvent(sid string, seq int64, dir event.Direction, kind event.Kind, rpcID, method string) event.Event {
	e := event.Event{
		ID: testID(fmt.Sprintf("%s-%d", sid, seq)), SessionID: sid, Seq: seq, TS: baseTime.Add(time.Duration(seq) * time.Millisecond),
		Direction: dir, Kind: kind, Server: "files", RPCID: rpcID, Method: method, Size: 10,
		Payload: json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","seq":%d}`, seq)),
	}
	if method == "tools/call" {
		e.Tool = "read_file"
		if kind == event.KindResponse {
			isErr := seq%2 == 0
			e.IsError = &isErr
		}
	}
	return e
}

// conversation records one session whose ids repeat, cross directions and
// interleave; it returns the events by seq.
func conversation(t *testing.T, s *Store, sid string, started time.Time, segBytes bool) map[int64]event.Event {
	t.Helper()
	ctx := context.Background()
	c2s, s2c := event.ClientToServer, event.ServerToClient
	evs := []event.Event{
		callEvent(sid, 1, c2s, event.KindRequest, "1", "initialize"),
		callEvent(sid, 2, s2c, event.KindResponse, "1", "initialize"),
		callEvent(sid, 3, c2s, event.KindNotification, "", "notifications/initialized"),
		callEvent(sid, 4, c2s, event.KindRequest, "2", "tools/call"),
		callEvent(sid, 5, s2c, event.KindRequest, "2", "sampling/createMessage"), // same id, other way
		callEvent(sid, 6, c2s, event.KindResponse, "2", "sampling/createMessage"),
		callEvent(sid, 7, s2c, event.KindResponse, "2", "tools/call"), // isError false (odd seq)
		callEvent(sid, 8, c2s, event.KindRequest, "2", "tools/call"),  // the id again, a new call
		callEvent(sid, 9, s2c, event.KindError, "2", "tools/call"),
		callEvent(sid, 10, c2s, event.KindRequest, "3", "tools/call"), // never answered
	}
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	sess := event.Session{ID: sid, Server: "files", StartedAt: started}
	if err := w.RecordSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := w.Record(ctx, evs[i:i+1]); err != nil {
			t.Fatal(err)
		}
		if segBytes && i == 4 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := map[int64]event.Event{}
	for _, e := range evs {
		out[e.Seq] = e
	}
	return out
}

func TestCall(t *testing.T) {
	ctx := context.Background()
	// Small segments: one session's events span several sealed segments.
	s := mustOpen(t, t.TempDir(), Options{SegmentBytes: 400})
	a, b := testID("session-a"), testID("session-b")
	evA := conversation(t, s, a, baseTime, true)
	evB := conversation(t, s, b, baseTime.Add(time.Minute), false) // same ids, another session
	tests := []struct {
		seq           int64
		request, resp int64 // 0: nil
	}{
		{1, 1, 2}, {2, 1, 2},
		{3, 3, 0}, // a notification stands alone, as the request half
		{4, 4, 7}, {7, 4, 7},
		{5, 5, 6}, {6, 5, 6},
		{8, 8, 9}, {9, 8, 9},
		{10, 10, 0},
	}
	for _, evs := range []map[int64]event.Event{evA, evB} {
		for _, tt := range tests {
			call, err := s.Call(ctx, evs[tt.seq].ID)
			if err != nil {
				t.Fatalf("seq %d: %v", tt.seq, err)
			}
			check := func(half string, got *event.Event, want int64) {
				switch {
				case want == 0 && got != nil:
					t.Errorf("seq %d: %s = seq %d, want none", tt.seq, half, got.Seq)
				case want != 0 && got == nil:
					t.Errorf("seq %d: %s missing, want seq %d", tt.seq, half, want)
				case want != 0 && mustJSON(t, got) != mustJSON(t, evs[want]):
					t.Errorf("seq %d: %s =\n%s\nwant\n%s", tt.seq, half, mustJSON(t, got), mustJSON(t, evs[want]))
				}
			}
			check("request", call.Request, tt.request)
			check("response", call.Response, tt.resp)
		}
	}
	if _, err := s.Call(ctx, testID("nobody")); !errors.Is(err, activity.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{SegmentBytes: 400})
	ids := []string{testID("s0"), testID("s1"), testID("s2")}
	for i, id := range ids {
		conversation(t, s, id, baseTime.Add(time.Duration(i)*time.Hour), i == 0)
	}
	// A session of another server, with no events.
	other := testID("other")
	w, err := s.NewWriter(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, event.Session{ID: other, Server: "git", StartedAt: baseTime.Add(90 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	page, err := s.Sessions(ctx, activity.SessionQuery{Server: "files", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Sessions) != 2 || page.Sessions[0].ID != ids[2] || page.Sessions[1].ID != ids[1] || page.NextCursor == "" {
		t.Fatalf("first page = %+v", page)
	}
	// tools/call requests: seq 4, 8, 10; failed replies: the error at 9.
	for _, r := range page.Sessions {
		if r.Calls != 3 || r.Failed != 1 {
			t.Errorf("session %s: calls %d failed %d, want 3 and 1", r.ID, r.Calls, r.Failed)
		}
	}
	cur, err := activity.DecodeCursor(page.NextCursor)
	if err != nil {
		t.Fatal(err)
	}
	page, err = s.Sessions(ctx, activity.SessionQuery{Server: "files", Limit: 2, Cursor: cur})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Sessions) != 1 || page.Sessions[0].ID != ids[0] || page.NextCursor != "" || page.Sessions[0].Calls != 3 {
		t.Fatalf("second page = %+v", page)
	}

	tests := []struct {
		q    activity.SessionQuery
		want []string
	}{
		{activity.SessionQuery{}, []string{ids[2], other, ids[1], ids[0]}},
		{activity.SessionQuery{Since: baseTime.Add(time.Hour)}, []string{ids[2], other, ids[1]}},
		{activity.SessionQuery{Until: baseTime.Add(time.Hour)}, []string{ids[0]}},
		{activity.SessionQuery{Server: "web"}, nil},
	}
	for i, tt := range tests {
		page, err := s.Sessions(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Sessions {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("case %d: sessions %v, want %v", i, got, tt.want)
		}
		if page.Sessions == nil {
			t.Errorf("case %d: nil sessions encode as null", i)
		}
	}
}
