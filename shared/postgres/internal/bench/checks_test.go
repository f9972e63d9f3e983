package main

import (
	"slices"
	"testing"
)

// TestChecksHoldTheLargeAimAtTheLargestSize: a run whose largest size is
// below 100M (the disk would not hold more) is held to the large aim there.
func TestChecksHoldTheLargeAimAtTheLargestSize(t *testing.T) {
	size := func(n int, median float64) StatsResult {
		return StatsResult{Events: n, Windows: []WindowResult{{Query: "since=24h", MedianMillis: median}}}
	}
	for _, tc := range []struct {
		name  string
		sizes []StatsResult
		want  []string
	}{
		{"1M only", []StatsResult{size(1_000_000, 5)}, []string{"stats median, since=24h, 1M events"}},
		{"10M", []StatsResult{size(1_000_000, 5), size(10_000_000, 30)},
			[]string{"stats median, since=24h, 1M events", "stats median, since=24h, 10M events"}},
		{"70M fit", []StatsResult{size(1_000_000, 5), size(10_000_000, 30), size(70_000_000, 90)},
			[]string{"stats median, since=24h, 1M events", "stats median, since=24h, 10M events", "stats median, since=24h, 70M events"}},
		{"100M fit", []StatsResult{size(10_000_000, 30), size(100_000_000, 90), size(120_000_000, 95)},
			[]string{"stats median, since=24h, 10M events", "stats median, since=24h, 100M events"}},
	} {
		var got []string
		for _, c := range checks(&Result{Stats: tc.sizes}) {
			if c.Name != "ingest through the handler / raw COPY into an indexed table" {
				got = append(got, c.Name)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: checks %q, want %q", tc.name, got, tc.want)
		}
	}
}
