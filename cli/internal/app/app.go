// Package app is the kilometers command's main. Two main packages call it:
// cli (what `go build ./cli`, the Makefile and GoReleaser build) and
// cli/kilometers (what `go install .../cli/kilometers@latest` installs, a
// binary named after its folder: kilometers).
package app

import (
	"context"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/kilometers-ai/kilometers/cli/internal/cmd/root"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

// Set by release builds:
//
//	-ldflags "-X github.com/kilometers-ai/kilometers/cli/internal/app.version=1.2.3 ..."
//
// These are the linker's inputs, never written at run time.
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// Main runs kilometers with the process's arguments and returns its exit
// code.
func Main() int {
	// The monitor handles signals itself (it forwards them to the server);
	// every other command just stops on the first one.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	info, _ := debug.ReadBuildInfo()
	f := cmdutil.NewFactory(Stamp(cmdutil.BuildInfo{Version: version, Commit: commit, Date: date}, info))
	return root.Execute(ctx, f, os.Args[1:])
}

// pseudoVersion matches the versions the go command makes up for untagged
// commits: v0.0.0-20261201120000-abcdef123456, v1.2.4-0.20261201120000-abcdef123456
// and v1.2.4-rc.1.0.20261201120000-abcdef123456.
var pseudoVersion = regexp.MustCompile(`[-.]\d{14}-[0-9a-f]{12}(?:\+|$)`)

// Stamp returns the build information to report. What the linker stamped
// wins; an unstamped binary that `go install module@v1.2.3` built reports
// the module version the go command recorded, so such installs are not all
// "dev". Pseudo-versions and local builds ("(devel)", "+dirty") stay
// "dev": they name no release.
func Stamp(stamped cmdutil.BuildInfo, info *debug.BuildInfo) cmdutil.BuildInfo {
	if stamped.Version != "dev" || info == nil {
		return stamped
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" || strings.Contains(v, "+") || pseudoVersion.MatchString(v) {
		return stamped
	}
	stamped.Version = strings.TrimPrefix(v, "v")
	return stamped
}
