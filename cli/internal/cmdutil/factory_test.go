package cmdutil

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func TestHomeDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "KILOMETERS_HOME wins", env: map[string]string{"KILOMETERS_HOME": "/tmp/km", "XDG_DATA_HOME": "/xdg"}, want: "/tmp/km"},
		{name: "XDG data dir", env: map[string]string{"XDG_DATA_HOME": "/xdg"}, want: "/xdg/kilometers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HomeDir(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got != filepath.FromSlash(tt.want) {
				t.Errorf("HomeDir = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("relative KILOMETERS_HOME is made absolute", func(t *testing.T) {
		got, err := HomeDir(func(k string) string {
			if k == "KILOMETERS_HOME" {
				return "rel"
			}
			return ""
		})
		if err != nil || !filepath.IsAbs(got) {
			t.Errorf("HomeDir = %q, %v; want an absolute path", got, err)
		}
	})
}

func TestIsExit(t *testing.T) {
	code, ok := IsExit(fmt.Errorf("run: %w", &ExitError{Code: 3}))
	if !ok || code != 3 {
		t.Errorf("IsExit(wrapped ExitError 3) = %d, %v", code, ok)
	}
	if _, ok := IsExit(errors.New("plain")); ok {
		t.Error("IsExit(plain error) = true")
	}
	var fe *FlagError
	if err := FlagErrorf("bad --limit %d", -1); !errors.As(err, &fe) || err.Error() != "bad --limit -1" {
		t.Errorf("FlagErrorf = %v", err)
	}
}
