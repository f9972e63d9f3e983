package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

func TestStamp(t *testing.T) {
	unstamped := cmdutil.BuildInfo{Version: "dev", Commit: "none", Date: "unknown"}
	release := cmdutil.BuildInfo{Version: "1.2.3", Commit: "abc1234", Date: "2026-11-22T12:00:00Z"}
	tests := []struct {
		name    string
		stamped cmdutil.BuildInfo
		module  string // debug.BuildInfo.Main.Version; "-" for no build info
		want    string
	}{
		{"ldflags win over the module version", release, "v9.9.9", "1.2.3"},
		{"go install module@v1.2.3", unstamped, "v1.2.3", "1.2.3"},
		{"go install of a prerelease tag", unstamped, "v1.3.0-rc.1", "1.3.0-rc.1"},
		{"go build in a checkout", unstamped, "(devel)", "dev"},
		{"no module version", unstamped, "", "dev"},
		{"no build info", unstamped, "-", "dev"},
		{"dirty checkout", unstamped, "v1.2.3+dirty", "dev"},
		{"pseudo-version, no tag before", unstamped, "v0.0.0-20261201120000-abcdef123456", "dev"},
		{"pseudo-version after a release", unstamped, "v1.2.4-0.20261201120000-abcdef123456", "dev"},
		{"pseudo-version after a prerelease", unstamped, "v1.2.4-rc.1.0.20261201120000-abcdef123456", "dev"},
		{"dirty pseudo-version", unstamped, "v0.0.0-20261201120000-abcdef123456+dirty", "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var info *debug.BuildInfo
			if tt.module != "-" {
				info = &debug.BuildInfo{Main: debug.Module{Path: "github.com/kilometers-ai/kilometers", Version: tt.module}}
			}
			got := Stamp(tt.stamped, info)
			if got.Version != tt.want {
				t.Errorf("Version = %q, want %q", got.Version, tt.want)
			}
			if got.Commit != tt.stamped.Commit || got.Date != tt.stamped.Date {
				t.Errorf("Commit, Date = %q, %q; want the stamped %q, %q", got.Commit, got.Date, tt.stamped.Commit, tt.stamped.Date)
			}
		})
	}
}

// Both main packages build the same program, the go command names each
// binary after its folder, and the linker flags the Makefile and
// .goreleaser.yaml pass reach the version variables through this
// package's import path.
func TestMainPackages(t *testing.T) {
	root := testenv.RepoRoot(t)
	const pkg = "github.com/kilometers-ai/kilometers/cli/internal/app"
	ldflags := "-X " + pkg + ".version=1.2.3 -X " + pkg + ".commit=abc1234 -X " + pkg + ".date=2026-11-22T12:00:00Z"
	for _, dir := range []string{"./cli", "./cli/kilometers"} {
		t.Run(dir, func(t *testing.T) {
			out := t.TempDir()
			build := exec.Command("go", "build", "-ldflags", ldflags, "-o", out+string(os.PathSeparator), dir)
			build.Dir = root
			if b, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", dir, err, b)
			}
			entries, err := os.ReadDir(out)
			if err != nil || len(entries) != 1 {
				t.Fatalf("go build %s wrote %v (%v), want one binary", dir, entries, err)
			}
			bin := filepath.Join(out, entries[0].Name())
			got, err := exec.Command(bin, "--version").Output()
			if err != nil {
				t.Fatalf("%s --version: %v", bin, err)
			}
			for _, want := range []string{"kilometers ", "1.2.3", "abc1234", "2026-11-22T12:00:00Z"} {
				if !strings.Contains(string(got), want) {
					t.Errorf("%s --version = %q, want it to contain %q", bin, got, want)
				}
			}
			if dir == "./cli/kilometers" && strings.TrimSuffix(entries[0].Name(), ".exe") != "kilometers" {
				t.Errorf("go build %s named the binary %q, want kilometers", dir, entries[0].Name())
			}
		})
	}
}
