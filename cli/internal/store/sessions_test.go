package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// TestSessionRecordsFoldByMergeSession: the store folds a session's
// records by event.MergeSession, as the backend's upsert does, whether
// the records share a segment, span a rotation or come from two writers,
// and whether a reader reads the index or the lines.
func TestSessionRecordsFoldByMergeSession(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{SegmentBytes: 4 << 10})
	sid := testID("fold")
	end, early := baseTime.Add(time.Hour), baseTime.Add(time.Minute)
	code, other := 0, 3
	recs := []event.Session{
		{ID: sid, Server: "files", Command: []string{"npx", "files"}, StartedAt: baseTime.Add(time.Second), DroppedEvents: 4},
		{ID: sid, ServerName: "Files", StartedAt: baseTime, EndedAt: &end, ExitCode: &code, DroppedEvents: 2},
		// Delivered late: an earlier end, which loses.
		{ID: sid, Host: "h", StartedAt: baseTime, EndedAt: &early, ExitCode: &other},
	}
	fold := event.SessionFold{}
	for _, r := range recs {
		fold.Add(r)
	}
	want := fold[sid]

	check := func(stage string) {
		t.Helper()
		got, err := s.SessionRecords(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("%s: SessionRecords = %+v, want [%+v]", stage, got, want)
		}
	}
	w1, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[:2] {
		if err := w1.RecordSession(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Enough events to rotate: the new segment carries the fold so far.
	if err := w1.Record(ctx, eventsAt(sid, "fold-", 40, baseTime)); err != nil {
		t.Fatal(err)
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.RecordSession(ctx, recs[2]); err != nil {
		t.Fatal(err)
	}
	if err := w2.Flush(); err != nil {
		t.Fatal(err)
	}
	check("live segment")
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	check("sealed")

	var shipped event.SessionFold = event.SessionFold{}
	for {
		c, err := s.Claim(ctx, 7, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c == nil {
			break
		}
		for _, r := range c.Sessions() {
			shipped.Add(r)
		}
		if err := c.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := shipped[sid]; !reflect.DeepEqual(got, want) {
		t.Errorf("shipped records fold to %+v, want %+v", got, want)
	}
}
