// Package stats defines the answer of GET /api/stats and of `kilometers stats
// --json`, and the rules that turn events into it: the Aggregator counts
// events and Rollups the backend's rollup rows, sums of the same per-event
// Counts, through one fold (fold.go), so both give the same answer.
package stats

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// DefaultWindow is the window used when a query names no since.
const DefaultWindow = 24 * time.Hour

// MaxRiskiestTools bounds the riskiest_tools list.
const MaxRiskiestTools = 10

// Stats is the stats answer.
type Stats struct {
	Since         time.Time   `json:"since"`
	Until         time.Time   `json:"until"`
	Server        string      `json:"server,omitempty"`
	Totals        Totals      `json:"totals"`
	Latency       Latency     `json:"latency"`
	Tools         []Tool      `json:"tools"`
	Methods       []Method    `json:"methods"`
	RiskLevels    RiskLevels  `json:"risk_levels"`
	RiskiestTools []RiskyTool `json:"riskiest_tools"`
	SeriesStep    string      `json:"series_step"`
	Series        []Point     `json:"series"`
}

// Totals sums the window.
type Totals struct {
	Events   int64 `json:"events"`
	Requests int64 `json:"requests"`
	// Errors counts failed replies: JSON-RPC errors and tool results with
	// isError set.
	Errors int64 `json:"errors"`
	// ErrorRate is Errors / Requests, 0 when there were no requests.
	ErrorRate     float64 `json:"error_rate"`
	Bytes         int64   `json:"bytes"`
	CostUSD       float64 `json:"cost_usd"`
	Tokens        int64   `json:"tokens"`
	Sessions      int64   `json:"sessions"`
	DroppedEvents int64   `json:"dropped_events"`
}

// Percentiles in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
}

// Latency summarises the latency of every reply in the window.
type Latency struct {
	Count int64 `json:"count"`
	Percentiles
}

// Tool summarises one tool's tools/call traffic.
type Tool struct {
	Tool string `json:"tool"`
	// Calls counts tools/call requests naming the tool.
	Calls int64 `json:"calls"`
	// Errors counts their failed replies.
	Errors int64 `json:"errors"`
	Percentiles
	CostUSD float64 `json:"cost_usd"`
}

// Method summarises one JSON-RPC method.
type Method struct {
	Method string `json:"method"`
	// Count counts requests and notifications with the method.
	Count  int64 `json:"count"`
	Errors int64 `json:"errors"`
	Percentiles
}

// RiskLevels counts events by risk level.
type RiskLevels struct {
	Low    int64 `json:"low"`
	Medium int64 `json:"medium"`
	High   int64 `json:"high"`
}

// RiskyTool is one entry of the riskiest tools: tools with medium or high
// risk events, ordered by the highest risk score any of them reached. A
// tool whose definition was poisoned or changed (analysis.ToolAlert) is
// counted by the tools/list reply that showed it, with that reason.
type RiskyTool struct {
	Tool     string `json:"tool"`
	MaxScore int    `json:"max_score"`
	High     int64  `json:"high"`
	Medium   int64  `json:"medium"`
	// Reasons are the alerts about the tool's definition
	// ("tool_poisoning", "definition_changed"), sorted.
	Reasons []string `json:"reasons,omitempty"`
}

// Point is one step of the time series.
type Point struct {
	TS     time.Time `json:"ts"`
	Events int64     `json:"events"`
	Errors int64     `json:"errors"`
}

// AlignWindow rounds a window out to whole minutes, the resolution of the
// backend's rollups, so that local and remote stats cover the same events.
// A zero since means DefaultWindow before until; a zero until means now.
func AlignWindow(since, until, now time.Time) (time.Time, time.Time) {
	if until.IsZero() {
		until = now
	}
	if since.IsZero() {
		since = until.Add(-DefaultWindow)
	}
	since = since.UTC().Truncate(time.Minute)
	if t := until.UTC().Truncate(time.Minute); !t.Equal(until.UTC()) {
		until = t.Add(time.Minute)
	} else {
		until = t
	}
	return since, until
}

// SeriesStep picks the time series resolution for a window: at most about 150
// points, on boundaries the rollups keep.
func SeriesStep(since, until time.Time) time.Duration {
	d := until.Sub(since)
	for _, step := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if d/step <= 150 {
			return step
		}
	}
	return 7 * 24 * time.Hour
}

// SeriesBucket returns the start of the series step that holds t. Steps are
// aligned to the Unix epoch in UTC.
func SeriesBucket(t time.Time, step time.Duration) time.Time {
	return t.UTC().Truncate(step)
}

// RoundCost rounds money as every cost is rounded (event.RoundUSD).
func RoundCost(v float64) float64 { return event.RoundUSD(v) }

// NewRequest reports whether e is a request stats count: a request the
// client repeats after an input_required answer (event.Event.Retry) is the
// same call again, counted once. The backend's rollups count by the same
// rule, reading the events' retry column (shared/postgres, ingest.go).
func NewRequest(e *event.Event) bool { return e.Kind == event.KindRequest && !e.Retry }

// NewCall reports whether e is a tools/call request counted as a call of its
// tool (and of its session).
func NewCall(e *event.Event) bool { return NewRequest(e) && e.Method == "tools/call" }

// Aggregator computes Stats from events one at a time. It is the reference
// implementation: the local store uses it directly and the backend's rollups
// must produce the same answer; both feed the same fold.
type Aggregator struct {
	since, until time.Time
	server       string
	step         time.Duration

	fold
	sessions map[string]struct{}
	series   map[time.Time]*Point
}

// ToolAlerts gathers the tools that risk reasons name as poisoned or
// changed (analysis.ToolAlert), for riskiest_tools: the local store and
// the backend both feed it the events that carry such reasons, so both
// name the same tools. The zero value is ready to use.
type ToolAlerts struct {
	m map[string]*alertAcc
}

type alertAcc struct {
	maxScore     int
	high, medium int64
	reasons      map[string]bool
}

// Add counts an event with these reasons, risk score and level for each
// tool a reason names.
func (t *ToolAlerts) Add(reasons []string, score int, level event.Level) {
	ToolAlertCounts(reasons, score, level, t.AddCount)
}

// ToolAlertCount is what one event, or a rollup of many, adds to one tool
// a reason of the same kind names.
type ToolAlertCount struct {
	Tool, Kind   string
	MaxScore     int
	High, Medium int64
}

// ToolAlertCounts yields an event's count for each reason that names a
// tool: the backend's ingest rolls them up (per bucket, server, tool and
// kind), and ToolAlerts adds them, so both count by this one rule.
func ToolAlertCounts(reasons []string, score int, level event.Level, yield func(ToolAlertCount)) {
	for _, r := range reasons {
		kind, tool, ok := analysis.ToolAlert(r)
		if !ok {
			continue
		}
		c := ToolAlertCount{Tool: tool, Kind: kind, MaxScore: score}
		switch level {
		case event.LevelHigh:
			c.High = 1
		case event.LevelMedium:
			c.Medium = 1
		}
		yield(c)
	}
}

// AddCount adds one tool's count (of an event, or of rollup rows).
func (t *ToolAlerts) AddCount(c ToolAlertCount) {
	acc := t.acc(c.Tool)
	acc.reasons[c.Kind] = true
	acc.maxScore = max(acc.maxScore, c.MaxScore)
	acc.high += c.High
	acc.medium += c.Medium
}

// acc is tool's accumulator, made at its first use.
func (t *ToolAlerts) acc(tool string) *alertAcc {
	if t.m == nil {
		t.m = map[string]*alertAcc{}
	}
	a := t.m[tool]
	if a == nil {
		a = &alertAcc{reasons: map[string]bool{}}
		t.m[tool] = a
	}
	return a
}

// merge adds what o gathered to t.
func (t *ToolAlerts) merge(o *ToolAlerts) {
	for name, oa := range o.m {
		a := t.acc(name)
		a.maxScore = max(a.maxScore, oa.maxScore)
		a.high += oa.high
		a.medium += oa.medium
		for r := range oa.reasons {
			a.reasons[r] = true
		}
	}
}

// Merge adds the named tools to risky (the per-tool list from calls),
// entry by entry, with their reasons.
func (t *ToolAlerts) Merge(risky []RiskyTool) []RiskyTool {
	byTool := make(map[string]int, len(risky))
	for i, r := range risky {
		byTool[r.Tool] = i
	}
	for name, al := range t.m {
		i, ok := byTool[name]
		if !ok {
			risky = append(risky, RiskyTool{Tool: name})
			i = len(risky) - 1
			byTool[name] = i
		}
		r := &risky[i]
		r.MaxScore = max(r.MaxScore, al.maxScore)
		r.High += al.high
		r.Medium += al.medium
		for kind := range al.reasons {
			r.Reasons = append(r.Reasons, kind)
		}
		sort.Strings(r.Reasons)
	}
	return risky
}

// NewAggregator returns an Aggregator for an aligned window (see AlignWindow)
// and an optional server filter.
func NewAggregator(since, until time.Time, server string) *Aggregator {
	return &Aggregator{
		since: since, until: until, server: server,
		step:     SeriesStep(since, until),
		fold:     newFold(),
		sessions: map[string]struct{}{},
		series:   map[time.Time]*Point{},
	}
}

// Includes reports whether e falls in the aggregator's window and filter.
func (a *Aggregator) Includes(e *event.Event) bool {
	if e.TS.Before(a.since) || !e.TS.Before(a.until) {
		return false
	}
	return a.server == "" || e.Server == a.server
}

// Add counts e if it falls in the window and filter.
func (a *Aggregator) Add(e *event.Event) {
	if !a.Includes(e) {
		return
	}
	c := CountOf(e)
	a.addTotals(c)
	ms, ok := LatencyOf(e)
	a.addDim(e.Method, e.Tool, c, latency{ms: ms, one: ok})
	a.sessions[e.SessionID] = struct{}{}
	if e.Risk != nil {
		a.alerts.Add(e.Risk.Reasons, e.Risk.Score, e.RiskLevel())
	}
	a.addPoint(e.TS, c.Events, c.Errors)
}

// addPoint counts events and errors at t in the series.
func (a *Aggregator) addPoint(t time.Time, events, errors int64) {
	b := SeriesBucket(t, a.step)
	p := a.series[b]
	if p == nil {
		p = &Point{TS: b}
		a.series[b] = p
	}
	p.Events += events
	p.Errors += errors
}

// AddDropped adds events a session reported as dropped.
func (a *Aggregator) AddDropped(n int64) { a.totals.DroppedEvents += n }

// Result returns the stats so far. Lists are sorted deterministically.
func (a *Aggregator) Result() Stats {
	series := make(map[time.Time]Point, len(a.series))
	for k, p := range a.series {
		series[k] = *p
	}
	return a.result(a.since, a.until, a.server, int64(len(a.sessions)), a.totals.DroppedEvents, series)
}

// Finish fills the derived fields of s (error rate, rounding, sorted lists,
// dense series) the same way for every source of stats. Callers pass the
// per-tool, per-method and riskiest lists in any order and the series points
// they have, keyed by SeriesBucket.
func Finish(s Stats, tools []Tool, methods []Method, risky []RiskyTool, series map[time.Time]Point) Stats {
	if s.Totals.Requests > 0 {
		s.Totals.ErrorRate = math.Round(float64(s.Totals.Errors)/float64(s.Totals.Requests)*1e6) / 1e6
	}
	s.Totals.CostUSD = RoundCost(s.Totals.CostUSD)
	for i := range tools {
		tools[i].CostUSD = RoundCost(tools[i].CostUSD)
	}
	sort.Slice(tools, func(i, j int) bool {
		if tools[i].Calls != tools[j].Calls {
			return tools[i].Calls > tools[j].Calls
		}
		return tools[i].Tool < tools[j].Tool
	})
	sort.Slice(methods, func(i, j int) bool {
		if methods[i].Count != methods[j].Count {
			return methods[i].Count > methods[j].Count
		}
		return methods[i].Method < methods[j].Method
	})
	// A tool whose every event was low risk (the base score of any call)
	// is not risky: listing it would bury the ones that are.
	risky = slices.DeleteFunc(risky, func(r RiskyTool) bool { return r.High == 0 && r.Medium == 0 })
	sort.Slice(risky, func(i, j int) bool {
		if risky[i].MaxScore != risky[j].MaxScore {
			return risky[i].MaxScore > risky[j].MaxScore
		}
		if risky[i].High != risky[j].High {
			return risky[i].High > risky[j].High
		}
		return risky[i].Tool < risky[j].Tool
	})
	if len(risky) > MaxRiskiestTools {
		risky = risky[:MaxRiskiestTools]
	}
	if tools == nil {
		tools = []Tool{}
	}
	if methods == nil {
		methods = []Method{}
	}
	if risky == nil {
		risky = []RiskyTool{}
	}
	s.Tools, s.Methods, s.RiskiestTools = tools, methods, risky

	step := SeriesStep(s.Since, s.Until)
	s.SeriesStep = step.String()
	s.Series = []Point{}
	for t := SeriesBucket(s.Since, step); t.Before(s.Until); t = t.Add(step) {
		p := series[t]
		p.TS = t
		s.Series = append(s.Series, p)
	}
	return s
}
