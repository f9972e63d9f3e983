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
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/doctor"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/export"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/initcmd"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/monitor"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/purge"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/sessions"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/setup"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/show"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/stats"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/sync"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/ui"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/version"
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
		Version:                    version.Line(f.Build),
		SilenceUsage:               true,
		SilenceErrors:              true,
		SuggestionsMinimumDistance: 2,
		// Anything not a command is a usage mistake (exit 2), said plainly.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return cmdutil.FlagErrorf("%s", msg)
		},
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
		ui.NewCmd(f),
		sessions.NewCmd(f),
		show.NewCmd(f),
		export.NewCmd(f),
		purge.NewCmd(f),
		doctor.NewCmd(f),
		version.NewCmd(f),
		alertscmd.NewCmd(f),
	)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &cmdutil.FlagError{Err: cmdutil.PlainFlagError(err)} })
	return cmd
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, f *cmdutil.Factory, args []string) int {
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	failed, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if code, ok := cmdutil.IsExit(err); ok {
		return code
	}
	fmt.Fprintf(f.IO.ErrOut, "kilometers: %v\n", err)
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) {
		fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", failed.CommandPath())
		return 2
	}
	return 1
}
