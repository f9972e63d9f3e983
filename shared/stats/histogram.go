package stats

import (
	"math"
	"slices"
	"sort"
)

// Latency percentiles are read by one rule, defined here (Sample) and used by
// the local Aggregator and the backend alike. Up to ExactSample latencies
// are kept as they are and percentiles are exact: the nearest rank over the
// values. Beyond that they come from a log-scale histogram, whose bucket
// counts add up in the backend's rollups, and are clamped to the observed
// minimum and maximum, so a percentile never lies outside the data.
const (
	// bucketGrowth is the ratio between consecutive bucket bounds, so a
	// reported percentile is within 1% of the true value.
	bucketGrowth = 1.01
	// bucketBase is the upper bound of bucket 0 in milliseconds (1 µs).
	bucketBase = 0.001
)

var logGrowth = math.Log(bucketGrowth)

// Bucket returns the histogram bucket of a latency in milliseconds: the
// smallest b with ms <= bucketBase * bucketGrowth^b.
func Bucket(ms float64) int {
	if !(ms > bucketBase) { // also catches NaN
		return 0
	}
	b := int(math.Ceil(math.Log(ms/bucketBase)/logGrowth - 1e-9))
	if b < 0 {
		return 0
	}
	return b
}

// BucketValue is the value reported for a bucket: its upper bound, rounded
// to microseconds.
func BucketValue(b int) float64 {
	return math.Round(bucketBase*math.Pow(bucketGrowth, float64(b))*1000) / 1000
}

// Histogram counts latencies by bucket.
type Histogram map[int]int64

// Add records one latency in milliseconds.
func (h Histogram) Add(ms float64) { h[Bucket(ms)]++ }

// AddBucket records n latencies that fell in bucket b (from a rollup).
func (h Histogram) AddBucket(b int, n int64) {
	if n > 0 {
		h[b] += n
	}
}

// Count is the number of latencies recorded.
func (h Histogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile returns the nearest-rank q-quantile (0 < q <= 1), 0 when empty.
func (h Histogram) Quantile(q float64) float64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := nearestRank(q, n)
	keys := make([]int, 0, len(h))
	for b := range h {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	var seen int64
	for _, b := range keys {
		seen += h[b]
		if seen >= rank {
			return BucketValue(b)
		}
	}
	return BucketValue(keys[len(keys)-1])
}

// ExactSample is how many latencies a Sample keeps as they are. The
// backend's rollup rows keep their values up to the same count
// (shared/postgres, ingest.go).
const ExactSample = 128

// quantiles are the percentiles stats report.
var quantiles = [3]float64{0.50, 0.95, 0.99}

// Sample collects latencies in milliseconds for percentiles.
type Sample struct {
	hist     Histogram
	min, max float64 // NaN when unknown
	// exact holds every value while there are at most ExactSample and all
	// of them are known; partial says they are not.
	exact   []float64
	partial bool
}

// NewSample returns an empty sample.
func NewSample() *Sample { return &Sample{hist: Histogram{}, min: math.Inf(1), max: math.Inf(-1)} }

// RollupSample is the sample a backend rollup row describes: the histogram
// of its latencies, their range (NaN when the row predates it), and the
// values themselves, nil when the row did not keep them.
func RollupSample(h Histogram, min, max float64, values []float64) *Sample {
	s := &Sample{hist: h, min: min, max: max, exact: values}
	s.partial = h.Count() > 0 && (values == nil || int64(len(values)) != h.Count())
	if s.partial {
		s.exact = nil
	}
	return s
}

// Add records one latency.
func (s *Sample) Add(ms float64) {
	s.hist.Add(ms)
	s.min, s.max = math.Min(s.min, ms), math.Max(s.max, ms)
	s.keep(ms)
}

func (s *Sample) keep(v ...float64) {
	if s.partial {
		return
	}
	if len(s.exact)+len(v) > ExactSample {
		s.exact, s.partial = nil, true
		return
	}
	s.exact = append(s.exact, v...)
}

// Merge adds o's latencies to s.
func (s *Sample) Merge(o *Sample) {
	for b, n := range o.hist {
		s.hist.AddBucket(b, n)
	}
	s.min, s.max = math.Min(s.min, o.min), math.Max(s.max, o.max) // NaN wins: unknown stays unknown
	if o.partial {
		s.exact, s.partial = nil, true
		return
	}
	s.keep(o.exact...)
}

// Count is the number of latencies recorded.
func (s *Sample) Count() int64 { return s.hist.Count() }

// Percentiles reads p50, p95 and p99: exact while the sample holds every
// value, else from the histogram within the observed range.
func (s *Sample) Percentiles() Percentiles {
	var p [3]float64
	n := s.hist.Count()
	switch {
	case n == 0:
	case !s.partial && int64(len(s.exact)) == n:
		sorted := slices.Sorted(slices.Values(s.exact))
		for i, q := range quantiles {
			p[i] = roundMicros(sorted[nearestRank(q, n)-1])
		}
	default:
		for i, q := range quantiles {
			v := s.hist.Quantile(q)
			if !math.IsNaN(s.min) && !math.IsNaN(s.max) {
				v = math.Min(math.Max(v, roundMicros(s.min)), roundMicros(s.max))
			}
			p[i] = v
		}
	}
	return Percentiles{P50: p[0], P95: p[1], P99: p[2]}
}

// nearestRank is the 1-based rank of the q-quantile of n values.
func nearestRank(q float64, n int64) int64 {
	return min(max(int64(math.Ceil(q*float64(n))), 1), n)
}

func roundMicros(ms float64) float64 { return math.Round(ms*1000) / 1000 }
