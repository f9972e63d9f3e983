package stats

import (
	"math"
	"sort"
)

// Latency percentiles come from a log-scale histogram rather than from sorted
// raw values so that the backend can keep them in rollups (bucket counts add
// up) and still answer exactly what the local store answers for the same
// events: both sides count the same buckets and read quantiles with the same
// rule, defined here and nowhere else.
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
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
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

// Percentiles reads p50, p95 and p99 from h.
func (h Histogram) Percentiles() Percentiles {
	return Percentiles{P50: h.Quantile(0.50), P95: h.Quantile(0.95), P99: h.Quantile(0.99)}
}
