package stats

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// TestPartialsMergeToAdd: events counted in partials, encoded, decoded and
// merged give the Stats of the same events added one by one, for windows
// at several series steps and for samples past ExactSample.
func TestPartialsMergeToAdd(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	evs := randomEvents(base)
	for _, span := range []time.Duration{2 * time.Hour, 10 * time.Hour, 72 * time.Hour} {
		since, until := AlignWindow(base, base.Add(span), base)
		want := NewAggregator(since, until, "")
		parts := make([]*Aggregator, 7)
		for i := range parts {
			parts[i] = NewPartial()
		}
		for i := range evs {
			if !want.Includes(&evs[i]) {
				continue
			}
			want.Add(&evs[i])
			parts[i%len(parts)].Add(&evs[i])
		}
		got := NewAggregator(since, until, "")
		for _, p := range parts {
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var back Aggregator
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			got.Merge(&back)
		}
		g, _ := json.Marshal(got.Result())
		w, _ := json.Marshal(want.Result())
		if string(g) != string(w) {
			t.Errorf("window %v: merged partials differ:\n got %s\nwant %s", span, g, w)
		}
	}
}

// randomEvents are 3,000 events of every kind over the 48 hours from base,
// with latencies, retries, risk and tool alerts.
func randomEvents(base time.Time) []event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	kinds := []event.Kind{event.KindRequest, event.KindResponse, event.KindError, event.KindNotification}
	methods := []string{"tools/call", "tools/call", "resources/read", "tools/list", "notifications/progress"}
	levels := []event.Level{event.LevelLow, event.LevelMedium, event.LevelHigh}
	var evs []event.Event
	for i := range 3000 {
		e := event.Event{ID: "e" + string(rune('a'+i%26)), SessionID: []string{"s1", "s2", "s3"}[r.IntN(3)],
			TS: base.Add(time.Duration(r.IntN(48*3600)) * time.Second), Kind: kinds[r.IntN(len(kinds))],
			Method: methods[r.IntN(len(methods))], Tool: []string{"", "read", "write"}[r.IntN(3)],
			Size: int64(r.IntN(1000)), CostUSD: float64(r.IntN(4)) * 0.25, Tokens: int64(r.IntN(100)), Retry: r.IntN(10) == 0}
		if e.Kind != event.KindRequest && e.Kind != event.KindNotification {
			lat := float64(r.IntN(100000)) / 100
			e.LatencyMS = &lat
		}
		if e.Kind == event.KindError {
			code := -32000
			e.ErrorCode = &code
		}
		if r.IntN(4) == 0 {
			e.Risk = &event.Risk{Score: r.IntN(100), Level: levels[r.IntN(3)], Reasons: []string{"sensitive_path", "tool_poisoning:read"}[:1+r.IntN(2)]}
		}
		evs = append(evs, e)
	}
	return evs
}
