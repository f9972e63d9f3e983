package postgres

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// The rollup deltas of a batch, computed in Go from the batch itself, so
// that when every event of it is new (the usual case) the database upserts
// a few pre-aggregated rows instead of grouping, sorting and aggregating
// the batch's events five times over (see insertArrays). They are the
// deltas the SQL of insertEventsFrom computes from the inserted rows: a
// batch with an event the tenant already has takes that path instead.

// rollupKey names one rollup row of one level.
type rollupKey struct {
	bucket               int64 // Unix seconds of the minute or hour
	server, method, tool string
}

// rollupAcc is what a batch adds to one rollup row: the sum of its
// events' stats.CountOf and their latencies.
type rollupAcc struct {
	stats.Counts
	hist    map[int32]int64 // latency bucket -> count
	samples []float64
}

// rollupLevel holds one level's deltas column by column, as
// upsertRollupDeltas takes them. hist and samples are flat, packed as the
// rollup tables store them (packInt8, packFloat8), each row taking its
// slice by byte offset and length; a negative samples length stands for
// NULL (past stats.ExactSample latencies), a NaN min or max for none.
type rollupLevel struct {
	bucket                                                               []time.Time
	server, method, tool                                                 []string
	events, requests, calls, errors, bytes, tokens, riskMedium, riskHigh []int64
	maxScore                                                             []int32
	costUSD, minMS, maxMS                                                []float64
	hist                                                                 []byte
	histOff, histLen                                                     []int32
	samples                                                              []byte
	samplesOff, samplesLen                                               []int32
}

// sessionBuckets are the distinct (bucket, server, session) rows of one
// session level.
type sessionBuckets struct {
	bucket    []time.Time
	server    []string
	sessionID [][16]byte
}

type sessionKey struct {
	bucket  int64
	server  string
	session [16]byte
}

// batchDeltas are every rollup delta of a batch.
type batchDeltas struct {
	minute, hour               rollupLevel
	seriesBucket               []time.Time
	seriesServer               []string
	seriesEvents, seriesErrors []int64
	sessionMinute, sessionHour sessionBuckets
	alerts                     toolAlertRows
}

// toolAlertRows are the batch's stats.ToolAlertCounts, one row per event
// and tool it names, with the event's id and time: the SQL rolls them up
// per minute and hour, and when the tenant had some of the batch's events
// already it keeps only the rows of the events it inserted (the rows are
// rare, so they need no Go aggregation to be cheap).
type toolAlertRows struct {
	id                 [][16]byte
	ts                 []time.Time
	server, tool, kind []string
	maxScore           []int32
	high, medium       []int64
}

func (a *toolAlertRows) args() []any {
	return []any{uuidArray(a.id), timestamptzArray(a.ts), textArray(a.server), textArray(a.tool), textArray(a.kind),
		int4Array(a.maxScore), int8Array(a.high), int8Array(a.medium)}
}

// newBatchDeltas aggregates the batch c holds, of events. Each level's rows
// are in key order, though the SQL sorts them again: the order rows are
// locked in must be the database's collation, the one the SQL path sorts by.
func newBatchDeltas(c *batchColumns, events []event.Event) *batchDeltas {
	minute := map[rollupKey]*rollupAcc{}
	hour := map[rollupKey]*rollupAcc{}
	type seriesKey struct {
		bucket int64
		server string
	}
	series := map[seriesKey]*[2]int64{}
	sessMinute := map[sessionKey]struct{}{}
	sessHour := map[sessionKey]struct{}{}
	var alerts toolAlertRows
	for i := range c.id {
		cnt := stats.CountOf(&events[c.order[i]])
		ts := c.ts[i].UTC()
		m, h := ts.Truncate(time.Minute).Unix(), ts.Truncate(time.Hour).Unix()
		for _, lv := range []struct {
			accs   map[rollupKey]*rollupAcc
			bucket int64
		}{{minute, m}, {hour, h}} {
			k := rollupKey{lv.bucket, c.server[i], c.method[i], c.tool[i]}
			a := lv.accs[k]
			if a == nil {
				a = &rollupAcc{hist: map[int32]int64{}}
				lv.accs[k] = a
			}
			a.add(cnt, c.bucket[i], c.latencyMS[i])
		}
		sk := seriesKey{m, c.server[i]}
		s := series[sk]
		if s == nil {
			s = new([2]int64)
			series[sk] = s
		}
		s[0] += cnt.Events
		s[1] += cnt.Errors
		// Under the server '' too: the sessions of any server, which
		// stats counts without a server filter (upsertSessions).
		for _, srv := range []string{c.server[i], ""} {
			sessMinute[sessionKey{m, srv, c.sessionID[i]}] = struct{}{}
			sessHour[sessionKey{h, srv, c.sessionID[i]}] = struct{}{}
		}
		if e := &events[c.order[i]]; e.Risk != nil {
			stats.ToolAlertCounts(e.Risk.Reasons, e.Risk.Score, e.RiskLevel(), func(tc stats.ToolAlertCount) {
				alerts.id, alerts.ts = append(alerts.id, c.id[i]), append(alerts.ts, c.ts[i])
				alerts.server, alerts.tool, alerts.kind = append(alerts.server, c.server[i]), append(alerts.tool, tc.Tool), append(alerts.kind, tc.Kind)
				alerts.maxScore = append(alerts.maxScore, int32(tc.MaxScore))
				alerts.high, alerts.medium = append(alerts.high, tc.High), append(alerts.medium, tc.Medium)
			})
		}
	}
	d := &batchDeltas{minute: flattenRollup(minute), hour: flattenRollup(hour),
		sessionMinute: flattenSessions(sessMinute), sessionHour: flattenSessions(sessHour), alerts: alerts}
	keys := make([]seriesKey, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), strings.Compare(a.server, b.server))
	})
	for _, k := range keys {
		d.seriesBucket = append(d.seriesBucket, time.Unix(k.bucket, 0).UTC())
		d.seriesServer = append(d.seriesServer, k.server)
		d.seriesEvents = append(d.seriesEvents, series[k][0])
		d.seriesErrors = append(d.seriesErrors, series[k][1])
	}
	return d
}

// add counts an event: its counts, and its latency ms when it has a
// histogram bucket (b >= 0, see newBatchColumns).
func (a *rollupAcc) add(cnt stats.Counts, b int32, ms float64) {
	a.Counts.Add(cnt)
	if b >= 0 {
		a.hist[b]++
		a.samples = append(a.samples, ms)
	}
}

func flattenRollup(accs map[rollupKey]*rollupAcc) rollupLevel {
	keys := make([]rollupKey, 0, len(accs))
	for k := range accs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), strings.Compare(a.server, b.server),
			strings.Compare(a.method, b.method), strings.Compare(a.tool, b.tool))
	})
	var l rollupLevel
	l.hist, l.samples = []byte{}, []byte{} // never nil: NULL slices to NULL
	for _, k := range keys {
		a := accs[k]
		l.bucket = append(l.bucket, time.Unix(k.bucket, 0).UTC())
		l.server, l.method, l.tool = append(l.server, k.server), append(l.method, k.method), append(l.tool, k.tool)
		l.events, l.requests, l.calls, l.errors = append(l.events, a.Events), append(l.requests, a.Requests), append(l.calls, a.Calls), append(l.errors, a.Errors)
		l.bytes, l.tokens = append(l.bytes, a.Bytes), append(l.tokens, a.Tokens)
		l.riskMedium, l.riskHigh = append(l.riskMedium, a.RiskMedium), append(l.riskHigh, a.RiskHigh)
		l.maxScore, l.costUSD = append(l.maxScore, int32(a.MaxScore)), append(l.costUSD, a.CostUSD)
		buckets := make([]int32, 0, len(a.hist))
		for b := range a.hist {
			buckets = append(buckets, b)
		}
		slices.Sort(buckets)
		l.histOff, l.histLen = append(l.histOff, int32(len(l.hist))), append(l.histLen, int32(8*len(buckets)))
		for _, b := range buckets {
			l.hist = packInt8(l.hist, stats.PackBucket(int(b), a.hist[b]))
		}
		lo, hi := math.NaN(), math.NaN()
		if len(a.samples) > 0 {
			lo, hi = slices.Min(a.samples), slices.Max(a.samples)
		}
		l.minMS, l.maxMS = append(l.minMS, lo), append(l.maxMS, hi)
		l.samplesOff = append(l.samplesOff, int32(len(l.samples)))
		if len(a.samples) <= stats.ExactSample {
			l.samplesLen = append(l.samplesLen, int32(8*len(a.samples)))
			for _, ms := range a.samples {
				l.samples = packFloat8(l.samples, ms)
			}
		} else {
			l.samplesLen = append(l.samplesLen, -1)
		}
	}
	return l
}

func flattenSessions(set map[sessionKey]struct{}) sessionBuckets {
	keys := make([]sessionKey, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b sessionKey) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), strings.Compare(a.server, b.server),
			slices.Compare(a.session[:], b.session[:]))
	})
	var s sessionBuckets
	for _, k := range keys {
		s.bucket = append(s.bucket, time.Unix(k.bucket, 0).UTC())
		s.server = append(s.server, k.server)
		s.sessionID = append(s.sessionID, k.session)
	}
	return s
}

// args are the parameters of the rollup level's statement, in the order of
// rollupLevelColumns.
func (l *rollupLevel) args() []any {
	return []any{timestamptzArray(l.bucket), textArray(l.server), textArray(l.method), textArray(l.tool),
		int8Array(l.events), int8Array(l.requests), int8Array(l.calls), int8Array(l.errors),
		int8Array(l.bytes), float8Array(l.costUSD), int8Array(l.tokens), int8Array(l.riskMedium), int8Array(l.riskHigh), int4Array(l.maxScore),
		l.hist, int4Array(l.histOff), int4Array(l.histLen), float8Array(l.minMS), float8Array(l.maxMS),
		l.samples, int4Array(l.samplesOff), int4Array(l.samplesLen)}
}

func (s *sessionBuckets) args() []any {
	return []any{timestamptzArray(s.bucket), textArray(s.server), uuidArray(s.sessionID)}
}

// args are every parameter of the deltas, in the order of deltaCTEs.
func (d *batchDeltas) args() []any {
	a := append(d.minute.args(), d.hour.args()...)
	a = append(a, timestamptzArray(d.seriesBucket), textArray(d.seriesServer), int8Array(d.seriesEvents), int8Array(d.seriesErrors))
	a = append(a, d.sessionMinute.args()...)
	a = append(a, d.sessionHour.args()...)
	return append(a, d.alerts.args()...)
}

// unnestParams writes the select list that unnests parameters $p.. with
// the given names and types.
func unnestParams(p int, cols ...string) string {
	var b strings.Builder
	for i := 0; i < len(cols); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "unnest($%d::%s) AS %s", p+i/2, cols[i+1], cols[i])
	}
	return b.String()
}
