package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// fill100k writes 100,000 events (20 sessions over the day before now, with
// payloads of about 600 bytes) and returns the store.
func fill100k(b *testing.B, now time.Time) *Store {
	b.Helper()
	ctx := context.Background()
	s := mustOpen(b, b.TempDir(), Options{Now: func() time.Time { return now }})
	pad := strings.Repeat("x", 500)
	const sessions, per = 20, 5000
	for si := range sessions {
		sid := testID(fmt.Sprint("bench", si))
		w, err := s.NewWriter(ctx, sid)
		if err != nil {
			b.Fatal(err)
		}
		start := now.Add(-24 * time.Hour).Add(time.Duration(si) * time.Hour)
		if err := w.RecordSession(ctx, event.Session{ID: sid, Server: "files", StartedAt: start}); err != nil {
			b.Fatal(err)
		}
		batch := make([]event.Event, 0, 100)
		for i := range per {
			e := testEvent(sid, fmt.Sprint(si, "-", i), i, start.Add(time.Duration(i)*500*time.Millisecond))
			e.Payload = json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{"text":"` + pad + `"}}`)
			batch = append(batch, e)
			if len(batch) == cap(batch) {
				if err := w.Record(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkStats100k(b *testing.B) {
	now := baseTime.Add(48 * time.Hour)
	s := fill100k(b, now)
	q := stats.Query{Since: now.Add(-48 * time.Hour), Until: now}.Align(now)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		st, err := s.Stats(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if st.Totals.Events != 100_000 {
			b.Fatalf("%d events", st.Totals.Events)
		}
	}
}

func BenchmarkActivity100k(b *testing.B) {
	now := baseTime.Add(48 * time.Hour)
	s := fill100k(b, now)
	ctx := context.Background()
	tests := []struct {
		name string
		q    activity.Query
	}{
		{"latest", activity.Query{Limit: 50}},
		{"filtered", activity.Query{Limit: 50, Tool: "fetch", MinRisk: event.LevelHigh}},
		{"last hour", activity.Query{Limit: 50, Since: now.Add(-time.Hour)}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Activity(ctx, tt.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
