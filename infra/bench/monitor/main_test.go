package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	sorted := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {1, 1}} {
		if got := percentile(sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestAddedRatio(t *testing.T) {
	for _, tc := range []struct {
		name          string
		wrapper, bare time.Duration
		want          float64
		ok            bool
	}{
		{"twice the floor", 200, 100, 2, true},
		{"same as the floor", 100, 100, 1, true},
		{"faster than direct", -10, 100, -0.1, true},
		{"floor hidden by noise", 200, 0, 0, false},
		{"floor below direct", 200, -10, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := addedRatio(tc.wrapper, tc.bare)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("addedRatio = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestPairedAdded(t *testing.T) {
	got := pairedAdded([]time.Duration{5, 7, 9, 11}, []time.Duration{1, 2, 10})
	want := []time.Duration{4, 5, -1}
	if !slices.Equal(got, want) {
		t.Errorf("pairedAdded = %v, want %v (pairs by index, as many as both have)", got, want)
	}
}

func TestRequestSize(t *testing.T) {
	for _, id := range []int{1, 42, 123456789} {
		if got := request(nil, id, requestSize); len(got) != requestSize || got[len(got)-1] != '\n' {
			t.Errorf("request(%d) is %d bytes ending %q, want %d ending in a newline", id, len(got), got[len(got)-1], requestSize)
		}
	}
}

func TestJudge(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	phase := func(name string, rssFloor bool, vr *varResult) phaseResult {
		return phaseResult{Spec: phaseSpec{Name: name, RSSFloor: rssFloor, Held: true}, Results: map[string]*varResult{"monitor": vr}}
	}
	for _, tc := range []struct {
		name string
		vr   *varResult
		pass bool
	}{
		{"within the floors", &varResult{methodResult: methodResult{RatioP50: f(1.2), RatioP99: f(1.4)}, PeakKB: 8000, Messages: 20_000}, true},
		{"p50 over", &varResult{methodResult: methodResult{RatioP50: f(1.6), RatioP99: f(1.0)}, PeakKB: 8000, Messages: 20_000}, false},
		{"p99 over", &varResult{methodResult: methodResult{RatioP50: f(1.0), RatioP99: f(2.0)}, PeakKB: 8000, Messages: 20_000}, false},
		{"p99 hidden by noise", &varResult{methodResult: methodResult{RatioP50: f(1.0)}, PeakKB: 8000, Messages: 20_000}, true},
		{"p50 hidden by noise", &varResult{methodResult: methodResult{RatioP99: f(1.0)}, PeakKB: 8000, Messages: 20_000}, true},
		{"RSS over", &varResult{methodResult: methodResult{RatioP50: f(1.0), RatioP99: f(1.0)}, PeakKB: 13 << 10, Messages: 20_000}, false},
		{"too few messages for the RSS figure", &varResult{methodResult: methodResult{RatioP50: f(1.0), RatioP99: f(1.0)}, PeakKB: 8000, Messages: 500}, false},
		{"RSS not read", &varResult{methodResult: methodResult{RatioP50: f(1.0), RatioP99: f(1.0)}, Messages: 20_000}, false},
		{"whole runs over: reported, not failed", &varResult{methodResult: methodResult{RatioP50: f(1.0), RatioP99: f(1.0)}, Whole: &methodResult{RatioP50: f(1.0), RatioP99: f(1.7)}, PeakKB: 8000, Messages: 20_000}, true},
		{"whole runs within", &varResult{methodResult: methodResult{RatioP50: f(1.0), RatioP99: f(1.0)}, Whole: &methodResult{RatioP50: f(1.3), RatioP99: f(1.4)}, PeakKB: 8000, Messages: 20_000}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Results{Phases: []phaseResult{phase("256 B", true, tc.vr)}}
			r.judge()
			if r.Pass != tc.pass {
				t.Errorf("pass = %v, want %v; checks: %+v", r.Pass, tc.pass, r.Checks)
			}
		})
	}
	t.Run("a large result's peak RSS is reported, not failed", func(t *testing.T) {
		for _, kb := range []int64{11 << 10, 13 << 10} {
			r := &Results{Phases: []phaseResult{phase("1 MiB", false, &varResult{methodResult: methodResult{RatioP50: f(1.0), RatioP99: f(1.0)}, PeakKB: kb})}}
			r.judge()
			var got *check
			for i := range r.Checks {
				if strings.Contains(r.Checks[i].What, "peak RSS in the 1 MiB run") {
					got = &r.Checks[i]
				}
			}
			if !r.Pass || got == nil || !got.Reported || got.Pass != (kb <= maxPeakKB) {
				t.Errorf("peak %d KiB: pass = %v, check %+v", kb, r.Pass, got)
			}
		}
	})
	t.Run("a phase not held is only reported", func(t *testing.T) {
		r := &Results{Phases: []phaseResult{{Spec: phaseSpec{Name: "16 MiB"}, Results: map[string]*varResult{"monitor": {methodResult: methodResult{RatioP50: f(3), RatioP99: f(3)}}}}}}
		r.judge()
		if !r.Pass || len(r.Checks) != 0 {
			t.Errorf("pass = %v with checks %+v, want a pass and no checks", r.Pass, r.Checks)
		}
	})
}

func TestBenchRefusesMissingParts(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    options
		want string
	}{
		{"no kilometers binary", options{kilometers: filepath.Join(t.TempDir(), "kilometers")}, "make build"},
		{"shipping without a database", options{kilometers: self, shipping: true}, "DATABASE_URL"},
		{"missing echo server", options{kilometers: self, echoServer: filepath.Join(t.TempDir(), "echoserver")}, "echoserver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bench(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("bench: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestStartBackendRefusesNonURL(t *testing.T) {
	_, err := startBackend(context.Background(), "/nonexistent", "host=localhost dbname=x")
	if err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("startBackend: %v, want an error asking for a postgres:// URL", err)
	}
}
