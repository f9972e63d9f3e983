package cmdutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// The platform, not what the home directory holds, picks the default: a
// Linux home with a Library folder is still a Linux home.
func TestHomeDirByPlatform(t *testing.T) {
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "Library"), 0o700); err != nil {
		t.Fatal(err)
	}
	userHome := func() (string, error) { return home, nil }
	for _, tt := range []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"darwin", nil, filepath.Join(home, "Library", "Application Support", "kilometers")},
		{"linux", nil, filepath.Join(home, ".local", "share", "kilometers")},
		{"linux", map[string]string{"LOCALAPPDATA": "/appdata"}, filepath.Join(home, ".local", "share", "kilometers")},
		{"windows", map[string]string{"LOCALAPPDATA": "/appdata"}, filepath.Join("/appdata", "kilometers")},
		{"windows", nil, filepath.Join(home, ".local", "share", "kilometers")},
	} {
		got, err := homeDir(tt.goos, func(k string) string { return tt.env[k] }, userHome)
		if err != nil || got != tt.want {
			t.Errorf("%s %v: %q, %v; want %q", tt.goos, tt.env, got, err, tt.want)
		}
	}
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	if _, err := homeDir("linux", func(string) string { return "" }, noHome); err == nil || !strings.Contains(err.Error(), "set KILOMETERS_HOME") {
		t.Errorf("no user home: %v, want an error naming KILOMETERS_HOME", err)
	}
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
