// Package purge implements `kilometers purge`.
package purge

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Yes    bool
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete this machine's recorded events",
		Long: `Delete every event and session in the local store, the batches the API
refused (kept under rejected/), and the record of shipping. Events not yet
shipped are lost. The configuration and the tool definitions the monitor
remembers (to notice a changed tool) are kept; events already shipped stay
in the API. Segments a running monitor is writing are left alone.

It asks first; --yes answers for scripts. Without a terminal to ask on it
refuses unless --yes is given.`,
		Example: `  kilometers purge
  kilometers purge --yes`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return Run(cmd.Context(), opts) },
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask")
	return cmd
}

// Run deletes the local data.
func Run(ctx context.Context, opts *Options) error {
	c, err := opts.Config()
	if err != nil {
		return err
	}
	st, err := store.OpenConfig(ctx, c)
	if err != nil {
		return err
	}
	u, err := st.Usage(ctx)
	if err != nil {
		return err
	}
	p, err := st.Pending(ctx)
	if err != nil {
		return err
	}
	if !opts.Yes {
		if !opts.IO.InIsTerminal {
			return cmdutil.FlagErrorf("purge deletes recorded events: run it on a terminal to be asked, or pass --yes")
		}
		msg := fmt.Sprintf("Delete %s of recorded events in %s", output.Bytes(u.Bytes), u.Dir)
		if p.Events > 0 {
			msg += fmt.Sprintf(", %s of them never shipped", output.Count(p.Events))
		}
		fmt.Fprintf(opts.IO.ErrOut, "%s? [y/N] ", msg)
		answer, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(opts.IO.ErrOut, "Nothing deleted.")
			return nil
		}
	}
	r, err := st.Purge(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "Deleted %d segments (%s) and %d set-aside batches.\n", r.Segments, output.Bytes(r.Bytes), r.SetAside)
	if r.Busy > 0 {
		fmt.Fprintf(opts.IO.Out, "%d segments were left: a monitor is recording into them or a shipper holds them.\n", r.Busy)
	}
	return nil
}
