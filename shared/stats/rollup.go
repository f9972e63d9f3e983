package stats

import (
	"math"
	"time"
)

// Row is one of the backend's rollup rows, as it reads them: the Counts of
// the events of one (bucket, server, method, tool) and their latencies.
type Row struct {
	Bucket       time.Time
	Method, Tool string
	Counts
	// Hist and HistTail are histogram entries (PackBucket); a bucket may
	// appear more than once, and its counts add up.
	Hist, HistTail []int64
	// MinMS and MaxMS are the latencies' range, nil on a row that
	// predates it.
	MinMS, MaxMS *float64
	// Samples are the latencies themselves, nil when the row holds more
	// than ExactSample of them.
	Samples []float64
}

// PackBucket is a histogram entry of a rollup row: a bucket (see Bucket)
// and how many latencies fell in it, in one int64.
func PackBucket(b int, n int64) int64 { return int64(b)<<40 | n }

func unpackBucket(x int64) (int, int64) { return int(x >> 40), x & (1<<40 - 1) }

// Rollups computes Stats from rollup rows, through the fold the Aggregator
// feeds with events, so both apply the same rules. Rows are merged per
// (method, tool) first, with a dense histogram: a window reads thousands
// of rows over a few dozen combinations.
type Rollups struct {
	since, until time.Time
	server       string
	step         time.Duration

	fold
	dims              map[dim]*dimAcc
	series            map[time.Time]Point
	sessions, dropped int64
}

// dim is one (method, tool) combination across the window.
type dim struct{ method, tool string }

type dimAcc struct {
	Counts
	hist []int64 // dense, indexed by bucket
	// The latencies' range (NaN once a row did not know it) and values
	// (partial once a row did not keep them).
	min, max float64
	values   []float64
	partial  bool
}

// NewRollups returns an empty fold for an aligned window (see AlignWindow)
// and an optional server filter, the ones the caller reads rows for.
func NewRollups(since, until time.Time, server string) *Rollups {
	return &Rollups{since: since, until: until, server: server, step: SeriesStep(since, until),
		fold: newFold(), dims: map[dim]*dimAcc{}, series: map[time.Time]Point{}}
}

// SeriesFromRows reports whether the series is read from the rows Add is
// given: for steps of an hour or more. Hourly rows cannot be split into
// smaller steps, so those take the per-minute series through AddSeries.
func (r *Rollups) SeriesFromRows() bool { return r.step >= time.Hour }

// Add counts one rollup row.
func (r *Rollups) Add(row *Row) {
	r.addTotals(row.Counts)
	k := dim{row.Method, row.Tool}
	d := r.dims[k]
	if d == nil {
		d = &dimAcc{min: math.Inf(1), max: math.Inf(-1)}
		r.dims[k] = d
	}
	d.Add(row.Counts)
	if n := d.addPacked(row.Hist) + d.addPacked(row.HistTail); n > 0 {
		d.addRange(row.MinMS, row.MaxMS)
		switch {
		case d.partial:
		case row.Samples == nil || int64(len(row.Samples)) != n:
			d.partial, d.values = true, nil
		default:
			d.values = append(d.values, row.Samples...)
		}
	}
	if r.SeriesFromRows() {
		r.AddSeries(row.Bucket, row.Events, row.Errors)
	}
}

// AddSeries counts events and errors of a minute or hour in the series.
func (r *Rollups) AddSeries(bucket time.Time, events, errors int64) {
	k := SeriesBucket(bucket, r.step)
	p := r.series[k]
	p.Events += events
	p.Errors += errors
	r.series[k] = p
}

// AddSessions counts sessions of the window and the events they reported
// as dropped.
func (r *Rollups) AddSessions(sessions, dropped int64) {
	r.sessions += sessions
	r.dropped = addSat(r.dropped, dropped)
}

// AddToolAlert adds a tool alert rollup's count (ToolAlertCounts summed).
func (r *Rollups) AddToolAlert(c ToolAlertCount) { r.alerts.AddCount(c) }

// Result returns the stats of the rows added.
func (r *Rollups) Result() Stats {
	for k, d := range r.dims {
		r.addDim(k.method, k.tool, d.Counts, latency{many: d.sample()})
	}
	clear(r.dims) // counted: a second Result must not count them again
	return r.result(r.since, r.until, r.server, r.sessions, r.dropped, r.series)
}

// addPacked adds histogram entries and returns how many latencies they
// held.
func (d *dimAcc) addPacked(packed []int64) int64 {
	var total int64
	for _, x := range packed {
		b, n := unpackBucket(x)
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

// sample is the dimension's latencies as a Sample.
func (d *dimAcc) sample() *Sample {
	h := Histogram{}
	for b, n := range d.hist {
		h.AddBucket(b, n)
	}
	values := d.values
	if d.partial {
		values = nil
	} else if values == nil {
		values = []float64{}
	}
	return RollupSample(h, d.min, d.max, values)
}
