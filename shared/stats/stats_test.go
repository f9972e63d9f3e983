package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestBucketBounds(t *testing.T) {
	for _, ms := range []float64{0.0005, 0.001, 0.0011, 0.5, 1, 12.481, 999.9, 1000, 60000, 3.6e6} {
		b := Bucket(ms)
		hi := BucketValue(b)
		// BucketValue rounds to whole microseconds, hence the 0.0005 slack.
		if ms > bucketBase && (hi < ms-0.0005 || hi > ms*bucketGrowth+0.0005) {
			t.Errorf("Bucket(%v)=%d reports %v: not within 1%% above", ms, b, hi)
		}
		if b > 0 && BucketValue(b-1) >= ms && ms > bucketBase {
			t.Errorf("Bucket(%v)=%d but bucket %d already holds it", ms, b, b-1)
		}
	}
	if Bucket(math.NaN()) != 0 || Bucket(-3) != 0 {
		t.Error("NaN and negatives belong in bucket 0")
	}
}

func TestQuantileNearestRank(t *testing.T) {
	h := Histogram{}
	for i := 1; i <= 100; i++ {
		h.Add(float64(i))
	}
	tests := []struct{ q, want float64 }{{0.5, 50}, {0.95, 95}, {0.99, 99}, {1, 100}}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if math.Abs(got-tt.want)/tt.want > 0.01 {
			t.Errorf("q%.2f = %v, want %v within 1%%", tt.q, got, tt.want)
		}
	}
	if (Histogram{}).Quantile(0.5) != 0 {
		t.Error("empty histogram must answer 0")
	}
	// Rollups add bucket counts; the answer must not depend on how they were split.
	split := Histogram{}
	for b, n := range h {
		split.AddBucket(b, n/2)
		split.AddBucket(b, n-n/2)
	}
	for _, q := range quantiles {
		if split.Quantile(q) != h.Quantile(q) {
			t.Errorf("merged histogram differs at q%.2f: %v vs %v", q, split.Quantile(q), h.Quantile(q))
		}
	}
}

func TestAlignWindow(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 30, 15, 500, time.UTC)
	since, until := AlignWindow(time.Time{}, time.Time{}, now)
	if !until.Equal(time.Date(2026, 11, 23, 10, 31, 0, 0, time.UTC)) || until.Sub(since) != DefaultWindow+time.Minute {
		t.Errorf("default window = %v..%v", since, until)
	}
	exact := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	since, until = AlignWindow(exact.Add(-time.Hour+time.Second), exact, now)
	if !since.Equal(exact.Add(-time.Hour)) || !until.Equal(exact) {
		t.Errorf("aligned = %v..%v", since, until)
	}
}

func TestSeriesStep(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want time.Duration
	}{{time.Hour, time.Minute}, {24 * time.Hour, 15 * time.Minute}, {7 * 24 * time.Hour, 6 * time.Hour}, {60 * 24 * time.Hour, 24 * time.Hour}}
	for _, tt := range tests {
		s := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if got := SeriesStep(s, s.Add(tt.d)); got != tt.want {
			t.Errorf("SeriesStep(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}

func f64(v float64) *float64 { return &v }

func TestAggregatorCountsTheContract(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	yes, no := true, false
	code := -32602
	ev := func(i int, kind event.Kind, dir event.Direction, method, tool string) event.Event {
		return event.Event{ID: "id" + string(rune('a'+i)), SessionID: "s1", Server: "fs", TS: base.Add(time.Duration(i) * time.Second),
			Kind: kind, Direction: dir, Method: method, Tool: tool, Size: 100, CostUSD: 100.0 / 1024 * 0.001}
	}
	evs := []event.Event{
		ev(0, event.KindRequest, event.ClientToServer, "initialize", ""),
		ev(1, event.KindResponse, event.ServerToClient, "initialize", ""),
		ev(2, event.KindNotification, event.ClientToServer, "notifications/initialized", ""),
		ev(3, event.KindRequest, event.ClientToServer, "tools/call", "read_file"),
		ev(4, event.KindResponse, event.ServerToClient, "tools/call", "read_file"),
		ev(5, event.KindRequest, event.ClientToServer, "tools/call", "read_file"),
		ev(6, event.KindResponse, event.ServerToClient, "tools/call", "read_file"),
		ev(7, event.KindRequest, event.ClientToServer, "tools/call", "write_file"),
		ev(8, event.KindError, event.ServerToClient, "tools/call", "write_file"),
		ev(9, event.KindInvalid, event.ServerToClient, "", ""),
	}
	evs[1].LatencyMS = f64(2)
	evs[4].LatencyMS, evs[4].IsError = f64(10), &no
	evs[6].LatencyMS, evs[6].IsError = f64(30), &yes
	evs[8].LatencyMS, evs[8].ErrorCode = f64(5), &code
	evs[6].Risk = &event.Risk{Score: 80, Level: event.LevelHigh, Reasons: []string{"sensitive_path"}}
	other := ev(10, event.KindRequest, event.ClientToServer, "tools/call", "read_file")
	other.Server = "github"
	late := ev(11, event.KindRequest, event.ClientToServer, "ping", "")
	late.TS = base.Add(2 * time.Hour)
	evs = append(evs, other, late)

	since, until := AlignWindow(base, base.Add(time.Hour), base)
	a := NewAggregator(since, until, "fs")
	for i := range evs {
		a.Add(&evs[i])
	}
	a.AddDropped(3)
	s := a.Result()

	want := Totals{Events: 10, Requests: 4, Errors: 2, ErrorRate: 0.5, Bytes: 1000, CostUSD: RoundCost(1000.0 / 1024 * 0.001), Sessions: 1, DroppedEvents: 3}
	if s.Totals != want {
		t.Errorf("totals = %+v\nwant     %+v", s.Totals, want)
	}
	if len(s.Tools) != 2 || s.Tools[0].Tool != "read_file" || s.Tools[0].Calls != 2 || s.Tools[0].Errors != 1 ||
		s.Tools[1].Tool != "write_file" || s.Tools[1].Calls != 1 || s.Tools[1].Errors != 1 {
		t.Errorf("tools = %+v", s.Tools)
	}
	if s.Tools[0].P99 < 30 || s.Tools[0].P99 > 30.3 {
		t.Errorf("read_file p99 = %v, want 30 within 1%%", s.Tools[0].P99)
	}
	if s.Latency.Count != 4 {
		t.Errorf("latency count = %d, want 4 replies", s.Latency.Count)
	}
	if s.RiskLevels != (RiskLevels{Low: 9, High: 1}) {
		t.Errorf("risk levels = %+v", s.RiskLevels)
	}
	if len(s.RiskiestTools) != 1 || s.RiskiestTools[0] != (RiskyTool{Tool: "read_file", MaxScore: 80, High: 1}) {
		t.Errorf("riskiest = %+v", s.RiskiestTools)
	}
	if len(s.Series) != 60 || s.Series[0].Events != 10 || s.Series[0].Errors != 2 || s.SeriesStep != "1m0s" {
		t.Errorf("series: %d points, first %+v, step %s", len(s.Series), s.Series[0], s.SeriesStep)
	}
	b, _ := json.Marshal(s)
	for _, key := range []string{`"totals"`, `"error_rate"`, `"tools":[{"tool":"read_file","calls":2,"errors":1,"p50_ms"`, `"p95_ms"`, `"p99_ms"`, `"risk_levels"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestEmptyStatsHaveEmptyListsNotNull(t *testing.T) {
	since, until := AlignWindow(time.Time{}, time.Time{}, time.Now())
	b, _ := json.Marshal(NewAggregator(since, until, "").Result())
	if strings.Contains(string(b), "null") {
		t.Errorf("empty stats contain null: %s", b)
	}
}

func TestRoundCost(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{0, 0},
		{9.765625e-07, 9.765625e-07}, // one byte at the default price stays visible
		{0.0009765625, 0.0009765625},
		{1.0000000004, 1},
		{123.4567891234, 123.456789},
		{0.1 + 0.2, 0.3},
	}
	for _, tt := range tests {
		if got := RoundCost(tt.in); got != tt.want {
			t.Errorf("RoundCost(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// A client's protocol probe answered "method not found" is no error, and a
// call the server answered input_required and the client repeated with the
// input is one call.
func TestNegotiationAndRetriesCountOnce(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	notFound, internal := event.CodeMethodNotFound, -32603
	ev := func(i int, kind event.Kind, method, tool string) event.Event {
		return event.Event{ID: fmt.Sprint("id", i), SessionID: "s1", Server: "fs", TS: base.Add(time.Duration(i) * time.Second),
			Kind: kind, Method: method, Tool: tool, LatencyMS: f64(1)}
	}
	evs := []event.Event{
		ev(0, event.KindRequest, "server/discover", ""),
		ev(1, event.KindError, "server/discover", ""),
		ev(2, event.KindRequest, "initialize", ""),
		ev(3, event.KindResponse, "initialize", ""),
		ev(4, event.KindRequest, "tools/call", "ask"),
		ev(5, event.KindResponse, "tools/call", "ask"), // input_required
		ev(6, event.KindRequest, "tools/call", "ask"),  // the retry
		ev(7, event.KindResponse, "tools/call", "ask"),
		ev(8, event.KindRequest, "server/discover", ""),
		ev(9, event.KindError, "server/discover", ""), // a real failure of a modern server
	}
	evs[1].ErrorCode, evs[9].ErrorCode = &notFound, &internal
	evs[6].Retry = true
	since, until := AlignWindow(base, base.Add(time.Hour), base)
	a := NewAggregator(since, until, "")
	for i := range evs {
		a.Add(&evs[i])
	}
	s := a.Result()
	if s.Totals.Requests != 4 || s.Totals.Errors != 1 {
		t.Errorf("totals: %d requests, %d errors; want 4 and 1", s.Totals.Requests, s.Totals.Errors)
	}
	if len(s.Tools) != 1 || s.Tools[0].Calls != 1 || s.Tools[0].Errors != 0 {
		t.Errorf("tools = %+v, want ask with 1 call", s.Tools)
	}
	for _, m := range s.Methods {
		if want := map[string]int64{"server/discover": 2, "initialize": 1, "tools/call": 1}[m.Method]; m.Count != want {
			t.Errorf("method %s counted %d times, want %d", m.Method, m.Count, want)
		}
	}
}

// Twelve replies between 1199 and 1219 ms once reported p50 = p95 = p99 =
// 1227 ms, above every one of them: small samples are exact now.
func TestPercentilesOfTwelveReplies(t *testing.T) {
	values := []float64{1211, 1199, 1203.5, 1219, 1207, 1200, 1215, 1209, 1201.25, 1213, 1205, 1217}
	s := NewSample()
	for _, v := range values {
		s.Add(v)
	}
	// Nearest rank over the sorted values: p50 is the 6th, p95 and p99
	// the 12th.
	if got, want := s.Percentiles(), (Percentiles{P50: 1207, P95: 1219, P99: 1219}); got != want {
		t.Errorf("percentiles %+v, want %+v", got, want)
	}
}

func TestSamplePercentiles(t *testing.T) {
	tests := []struct {
		name   string
		values func(i int) float64
		n      int
	}{
		{"one value", func(int) float64 { return 12.481 }, 1},
		{"exact at the limit", func(i int) float64 { return float64(i) + 0.5 }, ExactSample},
		{"histogram beyond", func(i int) float64 { return 1199 + float64(i%21) }, ExactSample + 1},
		{"histogram, narrow range", func(i int) float64 { return 1000.001 + float64(i%3)/1000 }, 5000},
		{"histogram, wide range", func(i int) float64 { return math.Pow(1.003, float64(i)) }, 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSample()
			var values []float64
			for i := range tt.n {
				v := tt.values(i)
				values = append(values, v)
				s.Add(v)
			}
			slices.Sort(values)
			lo, hi := roundMicros(values[0]), roundMicros(values[len(values)-1])
			p := s.Percentiles()
			for i, got := range []float64{p.P50, p.P95, p.P99} {
				if got < lo || got > hi {
					t.Errorf("q%.2f = %v, outside the data [%v, %v]", quantiles[i], got, lo, hi)
				}
				exact := roundMicros(values[nearestRank(quantiles[i], int64(len(values)))-1])
				switch {
				case tt.n <= ExactSample && got != exact:
					t.Errorf("q%.2f = %v, want exactly %v", quantiles[i], got, exact)
				case math.Abs(got-exact) > exact*(bucketGrowth-1)+0.001:
					t.Errorf("q%.2f = %v, want %v within 1%%", quantiles[i], got, exact)
				}
			}
			// Merging halves gives the same answer as adding one by one.
			a, b := NewSample(), NewSample()
			for i, v := range values {
				if i%2 == 0 {
					a.Add(v)
				} else {
					b.Add(v)
				}
			}
			a.Merge(b)
			if a.Percentiles() != p {
				t.Errorf("merged %+v, added %+v", a.Percentiles(), p)
			}
		})
	}
	if (NewSample()).Percentiles() != (Percentiles{}) {
		t.Error("an empty sample must answer zeros")
	}
	// A rollup row that did not keep its values makes the sample partial:
	// the histogram answers, still within a known range.
	h := Histogram{}
	h.Add(10)
	h.Add(20)
	r := RollupSample(h, 10, 20, nil)
	if p := r.Percentiles(); p.P50 < 10 || p.P99 > 20 {
		t.Errorf("partial rollup sample: %+v", p)
	}
	if p := RollupSample(h, 10, 20, []float64{20, 10}).Percentiles(); p != (Percentiles{P50: 10, P95: 20, P99: 20}) {
		t.Errorf("complete rollup sample: %+v", p)
	}
}
