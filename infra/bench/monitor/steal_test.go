package main

import "testing"

func TestParseCPUTimes(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       cpuTimes
		ok         bool
	}{
		{"linux", "cpu  100 5 40 800 10 0 5 40 30 0\ncpu0 50 2 20 400 5 0 2 20 15 0\nintr 1\n", cpuTimes{steal: 40, total: 1000}, true},
		{"no steal column (old kernels)", "cpu  100 5 40 800 10 0 5\n", cpuTimes{}, false},
		{"garbage", "cpu  1 2 x 4 5 6 7 8\n", cpuTimes{}, false},
		{"empty", "", cpuTimes{}, false},
	} {
		got, ok := parseCPUTimes([]byte(tc.stat))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: parseCPUTimes = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStealShare(t *testing.T) {
	a := cpuTimes{steal: 40, total: 1000}
	if got := stealShare(a, cpuTimes{steal: 65, total: 1100}); got != 0.25 {
		t.Errorf("stealShare = %v, want 0.25", got)
	}
	if got := stealShare(a, a); got != 0 {
		t.Errorf("stealShare with nothing elapsed = %v, want 0", got)
	}
}

func TestStealNote(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		share *float64
		want  string
	}{
		{nil, ""},
		{f(0.001), ""},
		{f(0.02), "; hypervisor steal 2% of CPU time"},
		{f(0.14), "; hypervisor steal 14% of CPU time: it lands on the variants by turns, so these ratios swing between runs"},
	} {
		if got := stealNote(tc.share); got != tc.want {
			t.Errorf("stealNote(%v) = %q, want %q", tc.share, got, tc.want)
		}
	}
}
