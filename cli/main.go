// Command kilometers watches what AI assistants do through their MCP servers.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kilometers-ai/kilometers/cli/internal/cmd/root"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

// Set by the release build (-ldflags "-X main.version=...").
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	// The monitor handles signals itself (it forwards them to the server);
	// every other command just stops on the first one.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	f := cmdutil.NewFactory(cmdutil.BuildInfo{Version: version, Commit: commit, Date: date})
	os.Exit(root.Execute(ctx, f, os.Args[1:]))
}
