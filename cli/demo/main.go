// Command kilometers-demo is the guided tour behind `make demo`: it puts
// `kilometers monitor` in front of a real MCP server, drives a short session
// with the official MCP Go SDK client and prints what was recorded.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "kilometers-demo: %v\n", err)
		os.Exit(1)
	}
}

func newCmd() *cobra.Command {
	opts := &demo.Options{IO: &cmdutil.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}}
	cmd := &cobra.Command{
		Use:   "kilometers-demo [--kilometers PATH] [--home DIR] [-- SERVER-COMMAND...]",
		Short: "Watch a real MCP session through kilometers monitor, then show activity and stats",
		Long: `Runs an MCP server behind 'kilometers monitor', drives a short session with the
official MCP Go SDK client (list tools, call them, including ones that fail),
then prints 'kilometers activity' and 'kilometers stats' for it.

By default the server is a small one built into this program; give any stdio
MCP server command after -- to watch that one instead. Events go to a fresh
temporary KILOMETERS_HOME (or --home), never to your own store or API.`,
		Example: `  make demo        # builds bin/kilometers and bin/kilometers-demo, then runs this
  bin/kilometers-demo --kilometers bin/kilometers
  bin/kilometers-demo --home /tmp/km-demo -- npx -y @modelcontextprotocol/server-everything`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this program: %w", err)
			}
			if opts.Exe, err = findKilometers(opts.Exe, self); err != nil {
				return err
			}
			opts.BuiltinServer, opts.Server, opts.Environ = []string{self, "serve"}, args, os.Environ()
			return demo.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Exe, "kilometers", "", "the kilometers binary to demonstrate (default: the one beside this program, else on PATH)")
	cmd.Flags().StringVar(&opts.Home, "home", "", "directory for the demo's events (default: a new temporary directory)")
	cmd.AddCommand(&cobra.Command{
		Use:    "serve",
		Short:  "Run the built-in demo MCP server on stdio",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demo.Serve(cmd.Context(), os.Stdin, os.Stdout)
		},
	})
	return cmd
}

// findKilometers picks the binary to demonstrate: the flag, else the one
// `make build` put beside this program, else the one on PATH.
func findKilometers(flag, self string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	name := "kilometers"
	if filepath.Ext(self) == ".exe" {
		name += ".exe"
	}
	if p := filepath.Join(filepath.Dir(self), name); fileExists(p) {
		return p, nil
	}
	p, err := exec.LookPath("kilometers")
	if err != nil {
		return "", fmt.Errorf("no kilometers binary beside %s or on PATH: build it with `make build` or pass --kilometers", self)
	}
	return p, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
