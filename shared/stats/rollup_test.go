package stats

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// TestRollupsFoldLikeEvents: the same events, summed into rollup rows per
// (hour, method, tool) as the backend keeps them (CountOf, PackBucket, the
// samples up to ExactSample), give through Rollups the Stats the
// Aggregator gives adding them one by one.
func TestRollupsFoldLikeEvents(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	evs := randomEvents(base)
	type key struct {
		hour         time.Time
		method, tool string
	}
	for _, span := range []time.Duration{2 * time.Hour, 10 * time.Hour, 30 * time.Hour} {
		since, until := AlignWindow(base, base.Add(span), base)
		want := NewAggregator(since, until, "")
		got := NewRollups(since, until, "")
		rows := map[key]*Row{}
		hists := map[key]Histogram{}
		sessions := map[string]bool{}
		type alertKey struct {
			hour       time.Time
			tool, kind string
		}
		alerts := map[alertKey]*ToolAlertCount{}
		for i := range evs {
			e := &evs[i]
			if !want.Includes(e) {
				continue
			}
			want.Add(e)
			sessions[e.SessionID] = true
			if e.Risk != nil {
				// Rolled up per hour, tool and kind, as the backend's
				// ingest keeps them.
				ToolAlertCounts(e.Risk.Reasons, e.Risk.Score, e.RiskLevel(), func(c ToolAlertCount) {
					k := alertKey{e.TS.Truncate(time.Hour), c.Tool, c.Kind}
					if a := alerts[k]; a != nil {
						a.MaxScore, a.High, a.Medium = max(a.MaxScore, c.MaxScore), a.High+c.High, a.Medium+c.Medium
						return
					}
					alerts[k] = &c
				})
			}
			if !got.SeriesFromRows() {
				c := CountOf(e)
				got.AddSeries(e.TS.Truncate(time.Minute), c.Events, c.Errors)
			}
			k := key{e.TS.Truncate(time.Hour), e.Method, e.Tool}
			row := rows[k]
			if row == nil {
				row = &Row{Bucket: k.hour, Method: k.method, Tool: k.tool, Samples: []float64{}}
				rows[k], hists[k] = row, Histogram{}
			}
			row.Counts.Add(CountOf(e))
			if ms, ok := LatencyOf(e); ok {
				hists[k].Add(ms)
				row.Samples = append(row.Samples, ms)
				if row.MinMS == nil {
					row.MinMS, row.MaxMS = new(float64), new(float64)
					*row.MinMS, *row.MaxMS = ms, ms
				}
				*row.MinMS, *row.MaxMS = math.Min(*row.MinMS, ms), math.Max(*row.MaxMS, ms)
			}
		}
		for k, row := range rows {
			// The histogram split between hist and its tail, as rows
			// hold it between merges.
			n := 0
			for b, c := range hists[k] {
				if n++; n%2 == 0 {
					row.Hist = append(row.Hist, PackBucket(b, c))
				} else {
					row.HistTail = append(row.HistTail, PackBucket(b, c))
				}
			}
			if len(row.Samples) > ExactSample {
				row.Samples = nil
			}
			got.Add(row)
		}
		for _, c := range alerts {
			got.AddToolAlert(*c)
		}
		got.AddSessions(int64(len(sessions)), 0)
		g, _ := json.Marshal(got.Result())
		w, _ := json.Marshal(want.Result())
		if string(g) != string(w) {
			t.Errorf("window %v: rollups differ from events:\n got %s\nwant %s", span, g, w)
		}
	}
}

func TestCountOf(t *testing.T) {
	yes := true
	code := -32603
	for _, c := range []struct {
		name string
		e    event.Event
		want Counts
	}{
		{"request", event.Event{Kind: event.KindRequest, Size: 10, Tokens: 2, CostUSD: 0.5},
			Counts{Events: 1, Requests: 1, Calls: 1, Bytes: 10, Tokens: 2, CostUSD: 0.5}},
		{"retried request", event.Event{Kind: event.KindRequest, Retry: true}, Counts{Events: 1}},
		{"notification", event.Event{Kind: event.KindNotification}, Counts{Events: 1, Calls: 1}},
		{"failed tool result", event.Event{Kind: event.KindResponse, IsError: &yes}, Counts{Events: 1, Errors: 1}},
		{"error", event.Event{Kind: event.KindError, ErrorCode: &code}, Counts{Events: 1, Errors: 1}},
		{"high risk", event.Event{Kind: event.KindResponse, Risk: &event.Risk{Score: 80, Level: event.LevelHigh}},
			Counts{Events: 1, RiskHigh: 1, MaxScore: 80}},
		{"medium risk", event.Event{Kind: event.KindResponse, Risk: &event.Risk{Score: 50, Level: event.LevelMedium}},
			Counts{Events: 1, RiskMedium: 1, MaxScore: 50}},
	} {
		if got := CountOf(&c.e); got != c.want {
			t.Errorf("%s: CountOf = %+v, want %+v", c.name, got, c.want)
		}
	}
}
