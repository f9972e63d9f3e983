package setup

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestNewEnv(t *testing.T) {
	env, err := NewEnv(func(string) string { return "" }, "/km")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if env.GOOS != runtime.GOOS || env.Home != "/km" || env.ProjectDir != wd || !filepath.IsAbs(env.Executable) || env.Processes == nil || env.UserHome == "" {
		t.Errorf("%+v", env)
	}
	if fi, err := os.Stat(env.Executable); err != nil || fi.IsDir() {
		t.Errorf("executable %s: %v", env.Executable, err)
	}
}

func TestPreferredExecutableKeepsTheSymlinkOnPath(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "Cellar", "kilometers", "1.2.3", "bin", "kilometers")
	os.MkdirAll(filepath.Dir(real), 0o755)
	if err := os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	if err := os.Symlink(real, filepath.Join(bin, "kilometers")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	t.Setenv("PATH", bin)
	if got := preferredExecutable("kilometers", real); got != filepath.Join(bin, "kilometers") {
		t.Errorf("got %s, want the link on PATH", got)
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755)
	if got := preferredExecutable(other, real); got != real {
		t.Errorf("an unrelated argv[0]: got %s", got)
	}
	if got := preferredExecutable("no-such-kilometers", real); got != real {
		t.Errorf("not on PATH: got %s", got)
	}
}
