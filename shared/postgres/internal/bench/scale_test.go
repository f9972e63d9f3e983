package main

import (
	"strings"
	"testing"
)

func TestDiskRoom(t *testing.T) {
	const gb = 1e9
	for _, c := range []struct {
		name        string
		used, total uint64
		need, max   float64
		wantRefusal bool
	}{
		{"room left", 20 * gb, 100 * gb, 40 * gb, 70, false},
		{"exactly at the limit", 20 * gb, 100 * gb, 50 * gb, 70, false},
		{"past the limit", 20 * gb, 100 * gb, 51 * gb, 70, true},
		{"already past it", 80 * gb, 100 * gb, 0, 70, true},
		{"unknown size", 0, 0, 1e15, 70, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := diskRoom("/data", c.used, c.total, c.need, c.max)
			if got := err != nil; got != c.wantRefusal {
				t.Fatalf("diskRoom(%d, %d, %.0f, %.0f) = %v, want refusal %v", c.used, c.total, c.need, c.max, err, c.wantRefusal)
			}
			if err != nil && !strings.Contains(err.Error(), "-max-disk-used 70%") {
				t.Errorf("the refusal %q does not name the flag", err)
			}
		})
	}
}
