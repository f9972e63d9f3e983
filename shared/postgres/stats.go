package postgres

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Stats answers from the rollups, never from events: whole hours of the
// window come from rollup_hour and the minutes at either edge from
// rollup_minute, so the rows read grow with the window and the number of
// (server, method, tool) combinations, not with the number of events. The
// counters and histograms are merged here and finished by stats.Finish, the
// same code the local Aggregator ends with.
func (db *DB) Stats(ctx context.Context, tenantID string, q stats.Query) (stats.Stats, error) {
	if err := tenantUUID(tenantID); err != nil {
		return stats.Stats{}, err
	}
	q = q.Align(time.Now()) // a no-op on an aligned query
	since, until := q.Since, q.Until
	// Whole hours [h0, h1); edges [since, h0) and [h1, until) in minutes.
	h0 := since.Truncate(time.Hour)
	if !h0.Equal(since) {
		h0 = h0.Add(time.Hour)
	}
	h1 := until.Truncate(time.Hour)
	if !h0.Before(h1) {
		h0, h1 = until, until // no whole hour: everything from minutes
	}
	step := stats.SeriesStep(since, until)

	acc := newStatsAcc(step)
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		acc.reset()
		var batch pgx.Batch
		batch.Queue(`
			SELECT bucket, method, tool, events, requests, calls, errors, bytes, cost_usd, tokens,
				risk_medium, risk_high, max_score, hist, hist_tail, min_ms, max_ms, samples
			FROM rollup_hour
			WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND bucket >= $2 AND bucket < $3 AND ($6 = '' OR server = $6)
			UNION ALL
			SELECT bucket, method, tool, events, requests, calls, errors, bytes, cost_usd, tokens,
				risk_medium, risk_high, max_score, hist, hist_tail, min_ms, max_ms, samples
			FROM rollup_minute
			WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND ($6 = '' OR server = $6)
				AND ((bucket >= $4 AND bucket < $2) OR (bucket >= $3 AND bucket < $5))`,
			tenantID, h0, h1, since, until, q.Server).Query(func(rows pgx.Rows) error {
			return acc.addRollups(rows)
		})
		batch.Queue(`
			SELECT count(*), least(coalesce(sum(s.dropped_events), 0), 9223372036854775807)::bigint
			FROM (
				SELECT session_id FROM session_hour
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND bucket >= $2 AND bucket < $3 AND ($6 = '' OR server = $6)
				UNION
				SELECT session_id FROM session_minute
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND ($6 = '' OR server = $6)
					AND ((bucket >= $4 AND bucket < $2) OR (bucket >= $3 AND bucket < $5))
			) AS x
			LEFT JOIN sessions AS s ON s.tenant_id = $1 AND s.id = x.session_id`,
			tenantID, h0, h1, since, until, q.Server).QueryRow(func(row pgx.Row) error {
			return row.Scan(&acc.totals.Sessions, &acc.totals.DroppedEvents)
		})
		// The scored tools/list replies of the window (a partial index
		// holds them: a few per session), for the tools their reasons name.
		batch.Queue(`
			SELECT risk_score, risk_level, risk_reasons FROM events
			WHERE tenant_id = $1 AND method = 'tools/list' AND risk_rank > 0 AND ts >= km_event_horizon($1)
				AND ts >= $2 AND ts < $3 AND ($4 = '' OR server = $4)
			LIMIT $5`, tenantID, since, until, q.Server, maxToolListRows).Query(func(rows pgx.Rows) error {
			return acc.addToolLists(rows)
		})
		if step < time.Hour {
			// Hourly rows cannot be split into smaller steps.
			acc.series = map[time.Time]stats.Point{}
			batch.Queue(`
				SELECT bucket, sum(events)::bigint, sum(errors)::bigint FROM series_minute
				WHERE tenant_id = $1 AND bucket >= km_rollup_horizon($1) AND bucket >= $2 AND bucket < $3 AND ($4 = '' OR server = $4)
				GROUP BY bucket`, tenantID, since, until, q.Server).Query(func(rows pgx.Rows) error {
				return acc.addSeries(rows)
			})
		}
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return dbError("stats", err)
		}
		return nil
	})
	if err != nil {
		return stats.Stats{}, err
	}
	return acc.result(since, until, q.Server), nil
}

// maxToolListRows bounds the scored tools/list replies one stats answer
// reads: far more than real sessions produce in a window, and a bound on
// the cost of a tenant that floods them.
const maxToolListRows = 10000

// addToolLists feeds scored tools/list replies to the tool alerts.
func (a *statsAcc) addToolLists(rows pgx.Rows) error {
	var (
		score   *int32
		level   *string
		reasons []string
	)
	_, err := pgx.ForEachRow(rows, []any{&score, &level, &reasons}, func() error {
		if score != nil && level != nil {
			a.alerts.Add(reasons, int(*score), event.Level(*level))
		}
		return nil
	})
	return err
}

// totalsFinite is the totals with every float encodable.
func (a *statsAcc) totalsFinite() stats.Totals {
	t := a.totals
	t.CostUSD = finite(t.CostUSD)
	return t
}

// dim is one (method, tool) combination across the window.
type dim struct{ method, tool string }

type dimAcc struct {
	calls, requests, errors int64
	costUSD                 float64
	medium, high            int64
	maxScore                int
	hist                    []int64 // dense, indexed by bucket
	// The latencies' range (NaN once a row did not know it) and values
	// (partial once a row did not keep them).
	min, max float64
	values   []float64
	partial  bool
}

// statsAcc merges rollup rows; it mirrors the counters of stats.Aggregator.
type statsAcc struct {
	step    time.Duration
	fromRow bool // series from rollup rows (steps of an hour or more)
	totals  stats.Totals
	levels  stats.RiskLevels
	dims    map[dim]*dimAcc
	series  map[time.Time]stats.Point
	// alerts are the tools that scored tools/list replies name as
	// poisoned or changed (the rollups keep no reasons).
	alerts stats.ToolAlerts
}

func newStatsAcc(step time.Duration) *statsAcc {
	a := &statsAcc{step: step, fromRow: step >= time.Hour}
	a.reset()
	return a
}

// reset empties the accumulator, for a transaction retried after a
// broken connection.
func (a *statsAcc) reset() {
	a.totals, a.levels = stats.Totals{}, stats.RiskLevels{}
	a.dims = map[dim]*dimAcc{}
	a.series = map[time.Time]stats.Point{}
	a.alerts = stats.ToolAlerts{}
}

func (a *statsAcc) addRollups(rows pgx.Rows) error {
	var (
		bucket                                                  time.Time
		method, tool                                            string
		events, requests, calls, errors, bytes, tokens, med, hi int64
		cost                                                    float64
		maxScore                                                int32
		hist, tail                                              []int64
		minMS, maxMS                                            *float64
		samples                                                 []float64
	)
	_, err := pgx.ForEachRow(rows, []any{&bucket, &method, &tool, &events, &requests, &calls, &errors,
		&bytes, &cost, &tokens, &med, &hi, &maxScore, &hist, &tail, &minMS, &maxMS, &samples}, func() error {
		t := &a.totals
		t.Events += events
		t.Requests += requests
		t.Errors += errors
		t.Bytes = addSat(t.Bytes, bytes)
		t.CostUSD += cost
		t.Tokens = addSat(t.Tokens, tokens)
		a.levels.Medium += med
		a.levels.High += hi
		a.levels.Low += events - med - hi

		d := a.dims[dim{method, tool}]
		if d == nil {
			d = &dimAcc{min: math.Inf(1), max: math.Inf(-1)}
			a.dims[dim{method, tool}] = d
		}
		d.calls += calls
		d.requests += requests
		d.errors += errors
		d.costUSD += cost
		d.medium += med
		d.high += hi
		d.maxScore = max(d.maxScore, int(maxScore))
		if n := d.addPacked(hist) + d.addPacked(tail); n > 0 {
			d.addRange(minMS, maxMS)
			switch {
			case d.partial:
			case samples == nil || int64(len(samples)) != n:
				d.partial, d.values = true, nil
			default:
				d.values = append(d.values, samples...)
			}
		}

		if a.fromRow {
			k := stats.SeriesBucket(bucket, a.step)
			p := a.series[k]
			p.Events += events
			p.Errors += errors
			a.series[k] = p
		}
		return nil
	})
	return err
}

// addSat adds two non-negative counters, stopping at the largest int64
// instead of wrapping negative (rows written before ingest bounded them
// may be that large).
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

// addPacked adds a packed histogram (bucket << 40 | count entries) and
// returns how many latencies it held.
func (d *dimAcc) addPacked(packed []int64) int64 {
	var total int64
	for _, x := range packed {
		b, n := int(x>>40), x&(1<<40-1)
		if b >= len(d.hist) {
			d.hist = append(d.hist, make([]int64, b+1-len(d.hist))...)
		}
		d.hist[b] += n
		total += n
	}
	return total
}

// addRange widens the latencies' range by a row's; a row with latencies
// but no range (older than the range columns) makes it unknown.
func (d *dimAcc) addRange(lo, hi *float64) {
	if lo == nil || hi == nil {
		d.min, d.max = math.NaN(), math.NaN()
		return
	}
	d.min, d.max = math.Min(d.min, *lo), math.Max(d.max, *hi)
}

// sample is the dimension's latencies as stats.Sample reads them.
func (d *dimAcc) sample() *stats.Sample {
	h := stats.Histogram{}
	for b, n := range d.hist {
		h.AddBucket(b, n)
	}
	values := d.values
	if d.partial {
		values = nil
	} else if values == nil {
		values = []float64{}
	}
	return stats.RollupSample(h, d.min, d.max, values)
}

func (a *statsAcc) addSeries(rows pgx.Rows) error {
	var (
		bucket         time.Time
		events, errors int64
	)
	_, err := pgx.ForEachRow(rows, []any{&bucket, &events, &errors}, func() error {
		k := stats.SeriesBucket(bucket, a.step)
		p := a.series[k]
		p.Events += events
		p.Errors += errors
		a.series[k] = p
		return nil
	})
	return err
}

// result applies the Aggregator's rules per (method, tool): methods count
// every row with a method, tools only tools/call rows naming a tool.
func (a *statsAcc) result(since, until time.Time, server string) stats.Stats {
	latency := stats.NewSample()
	type methodAcc struct {
		m    stats.Method
		hist *stats.Sample
	}
	type toolAcc struct {
		t            stats.Tool
		hist         *stats.Sample
		max          int
		high, medium int64
	}
	methods := map[string]*methodAcc{}
	tools := map[string]*toolAcc{}
	for k, d := range a.dims {
		ds := d.sample()
		latency.Merge(ds)
		if k.method != "" {
			m := methods[k.method]
			if m == nil {
				m = &methodAcc{m: stats.Method{Method: k.method}, hist: stats.NewSample()}
				methods[k.method] = m
			}
			m.m.Count += d.calls
			m.m.Errors += d.errors
			m.hist.Merge(ds)
		}
		if k.tool != "" && k.method == "tools/call" {
			t := tools[k.tool]
			if t == nil {
				t = &toolAcc{t: stats.Tool{Tool: k.tool}, hist: stats.NewSample()}
				tools[k.tool] = t
			}
			t.t.Calls += d.requests
			t.t.Errors += d.errors
			t.t.CostUSD = finite(t.t.CostUSD + d.costUSD)
			t.max = max(t.max, d.maxScore)
			t.high += d.high
			t.medium += d.medium
			t.hist.Merge(ds)
		}
	}
	methodList := make([]stats.Method, 0, len(methods))
	for _, m := range methods {
		m.m.Percentiles = m.hist.Percentiles()
		methodList = append(methodList, m.m)
	}
	toolList := make([]stats.Tool, 0, len(tools))
	var risky []stats.RiskyTool
	for _, t := range tools {
		t.t.Percentiles = t.hist.Percentiles()
		toolList = append(toolList, t.t)
		if t.max > 0 || t.high > 0 || t.medium > 0 {
			risky = append(risky, stats.RiskyTool{Tool: t.t.Tool, MaxScore: t.max, High: t.high, Medium: t.medium})
		}
	}
	s := stats.Stats{
		Since: since, Until: until, Server: server,
		Totals:     a.totalsFinite(),
		Latency:    stats.Latency{Count: latency.Count(), Percentiles: latency.Percentiles()},
		RiskLevels: a.levels,
	}
	return stats.Finish(s, toolList, methodList, a.alerts.Merge(risky), a.series)
}
