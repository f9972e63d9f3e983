package stats

import (
	"math"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// One fold owns the counting rules, whichever source feeds it: the local
// Aggregator adds events one at a time (CountOf), the backend adds its
// rollup rows (Rollups), which hold sums of the same Counts per (minute or
// hour, server, method, tool). Both go through fold.addTotals and
// fold.addDim, so a rule changes in one place.

// Counts is what events add to the counters of their (method, tool): one
// event's (CountOf), or the sum a rollup row keeps.
type Counts struct {
	Events int64
	// Requests counts new requests (NewRequest); Calls new requests and
	// notifications, what a method counts.
	Requests, Calls, Errors int64
	Bytes, Tokens           int64
	CostUSD                 float64
	// RiskMedium and RiskHigh count events at those levels; the rest are
	// low.
	RiskMedium, RiskHigh int64
	// MaxScore is the highest risk score, 0 for none.
	MaxScore int
}

// CountOf is what one event adds to the counters. The backend's rollup
// deltas (shared/postgres, rollupdelta.go) are sums of it; the SQL that
// counts a batch holding duplicates (ingest.go) is its copy in SQL, which
// the tests of that package hold to the same answers.
func CountOf(e *event.Event) Counts {
	c := Counts{Events: 1, Bytes: e.Size, Tokens: e.Tokens, CostUSD: e.CostUSD}
	if NewRequest(e) {
		c.Requests, c.Calls = 1, 1
	} else if e.Kind == event.KindNotification {
		c.Calls = 1
	}
	if e.Failed() {
		c.Errors = 1
	}
	switch e.RiskLevel() {
	case event.LevelHigh:
		c.RiskHigh = 1
	case event.LevelMedium:
		c.RiskMedium = 1
	}
	if e.Risk != nil {
		c.MaxScore = e.Risk.Score
	}
	return c
}

// LatencyOf is the latency an event counts with: a reply's, none for
// other events.
func LatencyOf(e *event.Event) (ms float64, ok bool) {
	if e.LatencyMS != nil && e.IsReply() {
		return *e.LatencyMS, true
	}
	return 0, false
}

// Add adds o to c. Bytes and tokens stop at the largest int64 instead of
// wrapping negative (rollup rows written before ingest bounded them may be
// that large).
func (c *Counts) Add(o Counts) {
	c.Events += o.Events
	c.Requests += o.Requests
	c.Calls += o.Calls
	c.Errors += o.Errors
	c.Bytes = addSat(c.Bytes, o.Bytes)
	c.Tokens = addSat(c.Tokens, o.Tokens)
	c.CostUSD += o.CostUSD
	c.RiskMedium += o.RiskMedium
	c.RiskHigh += o.RiskHigh
	c.MaxScore = max(c.MaxScore, o.MaxScore)
}

// addSat adds two non-negative counters, stopping at the largest int64.
func addSat(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// finite keeps a float sum encodable in JSON.
func finite(f float64) float64 {
	if math.IsInf(f, 1) || math.IsNaN(f) {
		return math.MaxFloat64
	}
	return f
}

// latency is what an event or a rollup dimension adds to the samples it
// counts in: one value, or a sample of many.
type latency struct {
	ms   float64
	one  bool
	many *Sample
}

func (l latency) into(s *Sample) {
	switch {
	case l.many != nil:
		s.Merge(l.many)
	case l.one:
		s.Add(l.ms)
	}
}

// fold is the state both sources accumulate.
type fold struct {
	totals  Totals
	levels  RiskLevels
	latency *Sample
	tools   map[string]*toolAcc
	methods map[string]*methodAcc
	// alerts are tools named by reasons about their definitions.
	alerts ToolAlerts
}

type toolAcc struct {
	Tool
	hist     *Sample
	maxScore int
	high     int64
	medium   int64
}

type methodAcc struct {
	Method
	hist *Sample
}

func newFold() fold {
	return fold{latency: NewSample(), tools: map[string]*toolAcc{}, methods: map[string]*methodAcc{}}
}

// method and tool are the accumulators of a method and a tool, made at
// their first use.
func (f *fold) method(name string) *methodAcc {
	m := f.methods[name]
	if m == nil {
		m = &methodAcc{Method: Method{Method: name}, hist: NewSample()}
		f.methods[name] = m
	}
	return m
}

func (f *fold) tool(name string) *toolAcc {
	t := f.tools[name]
	if t == nil {
		t = &toolAcc{Tool: Tool{Tool: name}, hist: NewSample()}
		f.tools[name] = t
	}
	return t
}

// merge adds what o counted to f, by the rules addTotals and addDim
// counted it with: a partial summary's fold into a whole window's.
func (f *fold) merge(o *fold) {
	t, ot := &f.totals, &o.totals
	// A fold's low events are its events less the medium and high ones
	// (addTotals), so the levels travel as counts.
	f.addTotals(Counts{Events: ot.Events, Requests: ot.Requests, Errors: ot.Errors,
		Bytes: ot.Bytes, Tokens: ot.Tokens, CostUSD: ot.CostUSD,
		RiskMedium: o.levels.Medium, RiskHigh: o.levels.High})
	t.DroppedEvents += ot.DroppedEvents
	f.latency.Merge(o.latency)
	for name, ot := range o.tools {
		t := f.tool(name)
		t.Calls += ot.Calls
		t.Errors += ot.Errors
		t.CostUSD += ot.CostUSD
		t.hist.Merge(ot.hist)
		t.maxScore = max(t.maxScore, ot.maxScore)
		t.high += ot.high
		t.medium += ot.medium
	}
	for name, om := range o.methods {
		m := f.method(name)
		m.Count += om.Count
		m.Errors += om.Errors
		m.hist.Merge(om.hist)
	}
	f.alerts.merge(&o.alerts)
}

// addTotals counts c in the totals and risk levels.
func (f *fold) addTotals(c Counts) {
	t := &f.totals
	t.Events += c.Events
	t.Requests += c.Requests
	t.Errors += c.Errors
	t.Bytes = addSat(t.Bytes, c.Bytes)
	t.CostUSD += c.CostUSD
	t.Tokens = addSat(t.Tokens, c.Tokens)
	f.levels.Medium += c.RiskMedium
	f.levels.High += c.RiskHigh
	f.levels.Low += c.Events - c.RiskMedium - c.RiskHigh
}

// addDim counts c and its latencies under method and tool: every event
// with a method counts for the method, only tools/call events naming a
// tool for the tool; every latency counts in the overall sample.
func (f *fold) addDim(method, tool string, c Counts, l latency) {
	l.into(f.latency)
	if method != "" {
		m := f.method(method)
		m.Count += c.Calls
		m.Errors += c.Errors
		l.into(m.hist)
	}
	if tool != "" && method == "tools/call" {
		t := f.tool(tool)
		t.Calls += c.Requests
		t.Errors += c.Errors
		t.CostUSD += c.CostUSD
		t.maxScore = max(t.maxScore, c.MaxScore)
		t.high += c.RiskHigh
		t.medium += c.RiskMedium
		l.into(t.hist)
	}
}

// result finishes the fold's stats for the window with series.
func (f *fold) result(since, until time.Time, server string, sessions, dropped int64, series map[time.Time]Point) Stats {
	s := Stats{
		Since: since, Until: until, Server: server,
		Totals:     f.totals,
		Latency:    Latency{Count: f.latency.Count(), Percentiles: f.latency.Percentiles()},
		RiskLevels: f.levels,
	}
	s.Totals.Sessions, s.Totals.DroppedEvents = sessions, dropped
	s.Totals.CostUSD = finite(s.Totals.CostUSD)
	tools := make([]Tool, 0, len(f.tools))
	risky := make([]RiskyTool, 0, len(f.tools))
	for _, t := range f.tools {
		tool := t.Tool
		tool.CostUSD = finite(tool.CostUSD)
		tool.Percentiles = t.hist.Percentiles()
		tools = append(tools, tool)
		risky = append(risky, RiskyTool{Tool: t.Tool.Tool, MaxScore: t.maxScore, High: t.high, Medium: t.medium})
	}
	methods := make([]Method, 0, len(f.methods))
	for _, m := range f.methods {
		method := m.Method
		method.Percentiles = m.hist.Percentiles()
		methods = append(methods, method)
	}
	return Finish(s, tools, methods, f.alerts.Merge(risky), series)
}
