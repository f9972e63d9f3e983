package sync

import (
	"errors"
	"testing"
)

func TestBackgroundOutcome(t *testing.T) {
	down := errors.New("down")
	none, ok, failed := result{}, result{configured: true}, result{configured: true, err: down}
	for _, c := range []struct {
		name    string
		rs      []result
		wantErr bool
	}{
		{"nothing configured", []result{none, none, none}, false},
		{"API alone delivered", []result{ok, none, none}, false},
		{"API alone failed", []result{failed, none, none}, true},
		{"API down, OTLP delivered", []result{failed, ok, none}, false},
		{"OTLP down, API delivered", []result{ok, failed, none}, false},
		{"everything down", []result{failed, failed, failed}, true},
		{"alerts alone failed", []result{none, none, failed}, true},
	} {
		if err := backgroundOutcome(c.rs...); (err != nil) != c.wantErr {
			t.Errorf("%s: %v, want error %v", c.name, err, c.wantErr)
		}
	}
}
