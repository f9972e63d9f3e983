package event_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// TestMergeSession holds the fold to its documented rule over records that
// arrive out of order and half filled, as shipping retries deliver them.
func TestMergeSession(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	code := func(n int) *int { return &n }
	id := "0b0f4c1e-1b7a-4d1e-9a55-5d9b8e5f0a01"
	recs := []event.Session{
		{ID: id, Server: "fs", Command: []string{"npx", "fs"}, Host: "h1", StartedAt: t0.Add(time.Second), DroppedEvents: 2},
		{ID: id, ServerName: "files", ClientName: "claude", StartedAt: t0, EndedAt: at(time.Hour), ExitCode: code(1), DroppedEvents: 5, Warnings: []string{"w1"}},
		// Older: its end and exit code lose, its lower count too; its
		// text fields are later news all the same.
		{ID: id, Server: "fs2", StartedAt: t0.Add(2 * time.Second), EndedAt: at(time.Minute), ExitCode: code(2), DroppedEvents: 1},
		// An equal end wins, with its exit code (none).
		{ID: id, StartedAt: t0.Add(time.Second), EndedAt: at(time.Hour)},
	}
	fold := event.SessionFold{}
	for _, r := range recs {
		fold.Add(r)
	}
	want := event.Session{ID: id, Server: "fs2", ServerName: "files", ClientName: "claude", Command: []string{"npx", "fs"},
		Host: "h1", StartedAt: t0, EndedAt: at(time.Hour), DroppedEvents: 5, Warnings: []string{"w1"}}
	if got := fold[id]; !reflect.DeepEqual(got, want) {
		t.Errorf("fold:\n got %+v\nwant %+v", got, want)
	}
	if got := event.MergeSession(event.Session{}, recs[0]); !reflect.DeepEqual(got, recs[0]) {
		t.Errorf("first record: got %+v, want it as it is", got)
	}
}
