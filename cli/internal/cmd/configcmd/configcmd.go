// Package configcmd implements `kilometers config`.
package configcmd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
)

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Flags  *config.Flags
	JSON   bool
}

// NewCmd builds the command; runF replaces the run function in tests.
func NewCmd(f *cmdutil.Factory, runF ...func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the effective settings and where each comes from",
		Long: `Show the settings Kilometers runs with, the API key masked, and where each
value comes from. Precedence, highest first: flags, KILOMETERS_* environment
variables, the config file written by 'kilometers init', defaults.`,
		Example: `  kilometers config
  kilometers config --json
  # What a flag would change:
  kilometers config --capture-mode metadata`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(runF) > 0 {
				return runF[0](opts)
			}
			return Run(opts)
		},
	}
	opts.Flags = config.BindFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// Setting is one line of the output.
type Setting struct {
	Key    string        `json:"key"`
	Value  string        `json:"value"`
	Source config.Source `json:"source"`
	Env    string        `json:"env"`
}

// Output is the --json shape.
type Output struct {
	Home       string    `json:"home"`
	File       string    `json:"file"`
	FileExists bool      `json:"file_exists"`
	Shipping   bool      `json:"shipping"`
	Settings   []Setting `json:"settings"`
}

// Run prints the effective configuration.
func Run(opts *Options) error {
	c, err := opts.Config()
	if err != nil {
		return err
	}
	// Showing the configuration is how to find what is wrong with it: the
	// problems are warnings here, the values shown are what is used.
	c.Warn(opts.IO.ErrOut, "kilometers config")
	if err := opts.Flags.Apply(c); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	out := Output{Home: c.Home, File: c.File, Shipping: c.ShippingEnabled()}
	if _, err := os.Stat(c.File); err == nil {
		out.FileExists = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("config file: %w", err)
	}
	for _, k := range config.Keys {
		out.Settings = append(out.Settings, Setting{Key: k, Value: c.Value(k), Source: c.Sources[k], Env: config.EnvVar(k)})
	}
	if opts.JSON {
		return output.JSON(opts.IO, out)
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
	for _, s := range out.Settings {
		v := s.Value
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, v, s.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	state := "not present"
	if out.FileExists {
		state = "present"
	}
	fmt.Fprintf(opts.IO.Out, "\nhome: %s\nconfig file: %s (%s)\n", out.Home, out.File, state)
	if out.Shipping {
		fmt.Fprintf(opts.IO.Out, "shipping: on, to %s\n", c.APIURL)
	} else {
		fmt.Fprintln(opts.IO.Out, "shipping: off (no API configured; run 'kilometers init')")
	}
	return nil
}
