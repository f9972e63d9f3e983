package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// samples; samples must be sorted. It is zero for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summary is one variant's round trips at one result size.
type summary struct {
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
}

func summarize(samples []time.Duration) summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	return summary{Samples: len(s), P50: percentile(s, 50), P99: percentile(s, 99)}
}

// pairedAdded returns, for each k, wrapper[k] - direct[k]: what the wrapper
// added to the k-th round trip, against the direct pipe's k-th, made in the
// same round.
func pairedAdded(wrapper, direct []time.Duration) []time.Duration {
	n := min(len(wrapper), len(direct))
	d := make([]time.Duration, n)
	for k := range n {
		d[k] = wrapper[k] - direct[k]
	}
	return d
}

// addedRatio is the figure the monitor is held to: the latency a wrapper adds over the
// direct pipe, as a multiple of what the bare copy adds. ok is false when
// the bare copy's added latency is not positive (noise larger than the
// floor itself), where no ratio means anything.
func addedRatio(wrapperAdded, bareAdded time.Duration) (ratio float64, ok bool) {
	if bareAdded <= 0 {
		return 0, false
	}
	return float64(wrapperAdded) / float64(bareAdded), true
}
