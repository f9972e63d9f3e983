package main

import "testing"

func TestJudgeLong(t *testing.T) {
	for _, tc := range []struct {
		name   string
		peakKB int64
		pass   bool
	}{
		{"under the floor", maxPeakKB - 1, true},
		{"at the floor", maxPeakKB, true},
		{"over the floor", maxPeakKB + 1, false},
		{"not measured", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Results{Pass: true, Long: &longResult{Messages: 200_001, PeakKB: tc.peakKB}}
			r.judgeLong()
			if len(r.Checks) != 1 || r.Checks[0].Pass != tc.pass || r.Pass != tc.pass {
				t.Errorf("checks %+v, pass %v; want one check passing %v", r.Checks, r.Pass, tc.pass)
			}
		})
	}
	r := &Results{Pass: true}
	r.judgeLong()
	if len(r.Checks) != 0 || !r.Pass {
		t.Errorf("a run without the long session got checks %+v, pass %v", r.Checks, r.Pass)
	}
}
