package configcmd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
)

// SetOptions are `config set` and `config unset`'s inputs.
type SetOptions struct {
	IO     *cmdutil.IOStreams
	Home   func() (string, error)
	Getenv func(string) string
	Key    string
	Value  string
	Unset  bool
}

func newSetCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &SetOptions{IO: f.IO, Home: f.Home, Getenv: f.Getenv}
	return &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Write a setting to the config file, checked first",
		Long: `Write one setting to the config file. The value is checked as the monitor
would read it, and the file is left as it was when it is not valid.
Settings: ` + strings.Join(config.Keys, ", ") + `.
A KILOMETERS_* environment variable still wins over the file.`,
		Example: `  kilometers config set capture_mode metadata
  kilometers config set retention_days 7`,
		Args: cmdutil.ExactArgs(2, "a setting (KEY)", "its VALUE"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return config.Keys, cobra.ShellCompDirectiveNoFileComp
			}
			if len(args) == 1 && args[0] == config.KeyCaptureMode {
				return []string{config.CaptureFull, config.CaptureRedacted, config.CaptureMetadata}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key, opts.Value = args[0], args[1]
			return RunSet(opts)
		},
	}
}

func newUnsetCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &SetOptions{IO: f.IO, Home: f.Home, Getenv: f.Getenv, Unset: true}
	return &cobra.Command{
		Use:   "unset KEY",
		Short: "Remove a setting from the config file (back to its default)",
		Example: `  kilometers config unset capture_mode
  # Stop shipping to the API:
  kilometers config unset api_key`,
		Args: cmdutil.ExactArgs(1, "a setting (KEY)"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return config.Keys, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key = args[0]
			return RunSet(opts)
		},
	}
}

// RunSet changes one setting of the config file, or removes it.
func RunSet(opts *SetOptions) error {
	key := strings.ToLower(strings.TrimSpace(opts.Key))
	if !slices.Contains(config.Keys, key) {
		return cmdutil.FlagErrorf("unknown setting %q; the settings are %s", opts.Key, strings.Join(config.Keys, ", "))
	}
	home, err := opts.Home()
	if err != nil {
		return err
	}
	c := config.Defaults(home)
	f, err := config.ReadFile(c.File)
	if err != nil {
		return err
	}
	if err := c.ApplyFile(f); err != nil {
		return fmt.Errorf("%s: %w", c.File, err)
	}
	if opts.Unset {
		err = c.Set(key, config.Defaults(home).Value(key), config.SourceDefault)
	} else {
		err = c.Set(key, opts.Value, config.SourceFile)
	}
	if err != nil {
		return cmdutil.FlagErrorf("%w", err)
	}
	if err := c.Validate(); err != nil {
		return cmdutil.FlagErrorf("%w (the config file is unchanged)", err)
	}
	if err := config.WriteFile(c.File, c.ToFile()); err != nil {
		return err
	}
	if opts.Unset {
		fmt.Fprintf(opts.IO.Out, "Removed %s from %s (now the default, %s).\n", key, c.File, orNone(c.Value(key)))
	} else {
		fmt.Fprintf(opts.IO.Out, "Set %s to %s in %s.\n", key, orNone(c.Value(key)), c.File)
	}
	if v := opts.Getenv(config.EnvVar(key)); v != "" {
		fmt.Fprintf(opts.IO.ErrOut, "Note: %s is set in the environment and wins over the file.\n", config.EnvVar(key))
	}
	return nil
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}
