// Package root assembles the kilometers command tree.
package root

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmd/activity"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/admin"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/alertscmd"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/configcmd"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/initcmd"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/monitor"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/setup"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/stats"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/sync"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

// NewCmd builds the root command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kilometers <command>",
		Short: "See what AI assistants do through their MCP servers",
		Long: `Kilometers sits in front of any MCP server, relays its stdio unchanged and
records every JSON-RPC message as an event: tool, latency, errors, size, risk
and cost. Events land in a local store at once; with an API configured they
are also shipped to a Kilometers backend.`,
		Example: `  # In your MCP client's config, put the monitor in front of the server command:
  kilometers monitor -- npx -y @modelcontextprotocol/server-everything

  # Then see what happened:
  kilometers activity --limit 20
  kilometers stats --since 24h --json`,
		Version:       fmt.Sprintf("%s (commit %s, built %s)", f.Build.Version, f.Build.Commit, f.Build.Date),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	cmd.SetIn(f.IO.In)
	cmd.SetVersionTemplate("kilometers {{.Version}}\n")
	cmd.AddCommand(
		monitor.NewCmd(f),
		activity.NewCmd(f),
		stats.NewCmd(f),
		sync.NewCmd(f),
		initcmd.NewCmd(f),
		configcmd.NewCmd(f),
		admin.NewCmd(f),
		setup.NewCmd(f),
		alertscmd.NewCmd(f),
	)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	return cmd
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, f *cmdutil.Factory, args []string) int {
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if code, ok := cmdutil.IsExit(err); ok {
		return code
	}
	fmt.Fprintf(f.IO.ErrOut, "kilometers: %v\n", err)
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) {
		fmt.Fprintln(f.IO.ErrOut, "Run 'kilometers --help' for usage.")
		return 2
	}
	return 1
}
