package stats

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"time"

	segjson "github.com/segmentio/encoding/json"
)

// A partial Aggregator counts a part of the events (one sealed local
// segment, say) over all time at minute resolution, to be merged into the
// Aggregator of a window later: an answer over many parts then costs a
// merge per part, not an Add per event. Merge is exact: the same events
// added one by one give the same Stats, so the rules stay in Add alone.

// partialUntil is the end of a partial's window: every valid event time
// is before it.
var partialUntil = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

// NewPartial returns an Aggregator for every event of a part, whatever its
// time or server; callers that need a server filter keep a partial per
// server.
func NewPartial() *Aggregator {
	a := NewAggregator(time.Time{}, partialUntil, "")
	a.step = time.Minute
	return a
}

// Merge adds the events p counted to a. The caller makes sure every one of
// them falls in a's window and server filter (for a window aligned to
// minutes, a part whose events all do); the series is bucketed anew at
// a's step, which is a whole number of minutes.
func (a *Aggregator) Merge(p *Aggregator) {
	a.fold.merge(&p.fold)
	for id := range p.sessions {
		a.sessions[id] = struct{}{}
	}
	for ts, pp := range p.series {
		a.addPoint(ts, pp.Events, pp.Errors)
	}
}

// partialJSON is a partial's state on disk.
type partialJSON struct {
	Totals   Totals               `json:"totals"`
	Sessions []string             `json:"sessions,omitempty"`
	Latency  sampleJSON           `json:"latency"`
	Tools    []toolJSON           `json:"tools,omitempty"`
	Methods  []methodJSON         `json:"methods,omitempty"`
	Levels   RiskLevels           `json:"levels"`
	Series   []Point              `json:"series,omitempty"`
	Alerts   map[string]alertJSON `json:"alerts,omitempty"`
}

type toolJSON struct {
	Tool     string     `json:"tool"`
	Calls    int64      `json:"calls,omitempty"`
	Errors   int64      `json:"errors,omitempty"`
	CostUSD  float64    `json:"cost_usd,omitempty"`
	Hist     sampleJSON `json:"hist"`
	MaxScore int        `json:"max_score,omitempty"`
	High     int64      `json:"high,omitempty"`
	Medium   int64      `json:"medium,omitempty"`
}

type methodJSON struct {
	Method string     `json:"method"`
	Count  int64      `json:"count,omitempty"`
	Errors int64      `json:"errors,omitempty"`
	Hist   sampleJSON `json:"hist"`
}

type alertJSON struct {
	MaxScore int      `json:"max_score,omitempty"`
	High     int64    `json:"high,omitempty"`
	Medium   int64    `json:"medium,omitempty"`
	Reasons  []string `json:"reasons"`
}

// sampleJSON is a Sample; an empty sample's infinite range is left out,
// and the histogram is a flat list of (bucket, count) pairs in bucket
// order, each bucket as its distance from the one before: the histograms
// are most of a partial, and this is a third of the bytes of a map with
// string keys, and decodes several times faster.
type sampleJSON struct {
	Hist    []int64   `json:"h,omitempty"`
	Min     *float64  `json:"min,omitempty"`
	Max     *float64  `json:"max,omitempty"`
	Exact   []float64 `json:"exact,omitempty"`
	Partial bool      `json:"partial,omitempty"`
}

func (s *Sample) toJSON() sampleJSON {
	j := sampleJSON{Exact: s.exact, Partial: s.partial}
	prev := 0
	for _, b := range slices.Sorted(maps.Keys(s.hist)) {
		j.Hist = append(j.Hist, int64(b-prev), s.hist[b])
		prev = b
	}
	if !math.IsInf(s.min, 0) {
		j.Min = &s.min
	}
	if !math.IsInf(s.max, 0) {
		j.Max = &s.max
	}
	return j
}

func (j sampleJSON) sample() *Sample {
	s := NewSample()
	s.hist = make(Histogram, len(j.Hist)/2)
	b := 0
	for i := 0; i+1 < len(j.Hist); i += 2 {
		b += int(j.Hist[i])
		s.hist.AddBucket(b, j.Hist[i+1])
	}
	if j.Min != nil {
		s.min = *j.Min
	}
	if j.Max != nil {
		s.max = *j.Max
	}
	s.exact, s.partial = j.Exact, j.Partial
	return s
}

// MarshalJSON encodes a partial's state (NewPartial); it fails on a
// latency that is not a number, which JSON cannot hold.
func (a *Aggregator) MarshalJSON() ([]byte, error) {
	p := partialJSON{Totals: a.totals, Latency: a.latency.toJSON(), Levels: a.levels}
	for id := range a.sessions {
		p.Sessions = append(p.Sessions, id)
	}
	for _, t := range a.tools {
		p.Tools = append(p.Tools, toolJSON{Tool: t.Tool.Tool, Calls: t.Calls, Errors: t.Errors, CostUSD: t.CostUSD,
			Hist: t.hist.toJSON(), MaxScore: t.maxScore, High: t.high, Medium: t.medium})
	}
	for _, m := range a.methods {
		p.Methods = append(p.Methods, methodJSON{Method: m.Method.Method, Count: m.Count, Errors: m.Errors, Hist: m.hist.toJSON()})
	}
	for _, pt := range a.series {
		p.Series = append(p.Series, *pt)
	}
	for name, al := range a.alerts.m {
		if p.Alerts == nil {
			p.Alerts = map[string]alertJSON{}
		}
		j := alertJSON{MaxScore: al.maxScore, High: al.high, Medium: al.medium, Reasons: []string{}}
		for r := range al.reasons {
			j.Reasons = append(j.Reasons, r)
		}
		p.Alerts[name] = j
	}
	return json.Marshal(&p)
}

// UnmarshalJSON decodes what MarshalJSON encoded into a partial. A stats
// answer over many partials decodes them all, so this is segmentio's
// decoder: about half the time of encoding/json's here.
func (a *Aggregator) UnmarshalJSON(b []byte) error {
	var p partialJSON
	if err := segjson.Unmarshal(b, &p); err != nil {
		return err
	}
	*a = *NewPartial()
	a.totals, a.levels, a.latency = p.Totals, p.Levels, p.Latency.sample()
	for _, id := range p.Sessions {
		a.sessions[id] = struct{}{}
	}
	for _, t := range p.Tools {
		a.tools[t.Tool] = &toolAcc{Tool: Tool{Tool: t.Tool, Calls: t.Calls, Errors: t.Errors, CostUSD: t.CostUSD},
			hist: t.Hist.sample(), maxScore: t.MaxScore, high: t.High, medium: t.Medium}
	}
	for _, m := range p.Methods {
		a.methods[m.Method] = &methodAcc{Method: Method{Method: m.Method, Count: m.Count, Errors: m.Errors}, hist: m.Hist.sample()}
	}
	for _, pt := range p.Series {
		a.series[pt.TS] = &Point{TS: pt.TS, Events: pt.Events, Errors: pt.Errors}
	}
	for name, j := range p.Alerts {
		if a.alerts.m == nil {
			a.alerts.m = map[string]*alertAcc{}
		}
		al := &alertAcc{maxScore: j.MaxScore, high: j.High, medium: j.Medium, reasons: map[string]bool{}}
		for _, r := range j.Reasons {
			al.reasons[r] = true
		}
		a.alerts.m[name] = al
	}
	return nil
}
