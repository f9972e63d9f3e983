package cmdutil

import (
	"errors"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
)

// NoArgs refuses arguments with a usage error in plain words.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// ExactArgs wants n arguments, named in the message when some are missing
// (cobra's own says "accepts 1 arg(s), received 0").
func ExactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n && len(names) > len(args):
			return FlagErrorf("%s needs %s", cmd.CommandPath(), names[len(args)])
		case len(args) < n:
			return FlagErrorf("%s needs %d arguments, got %d", cmd.CommandPath(), n, len(args))
		case len(args) > n:
			return FlagErrorf("%s: unexpected argument %q", cmd.CommandPath(), args[n])
		}
		return nil
	}
}

// CompleteRecorded makes the named flags complete with values recorded in
// the local store.
func CompleteRecorded(cmd *cobra.Command, cfg func() (*config.Config, error), flags map[string]source.Field) {
	for name, field := range flags {
		if cmd.Flags().Lookup(name) == nil {
			continue
		}
		_ = cmd.RegisterFlagCompletionFunc(name, func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
			return source.Complete(c.Context(), cfg, field), cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// goInternals matches what pflag appends to a bad value: the Go parser's
// own words (`strconv.ParseInt: parsing "x": invalid syntax`).
var goInternals = regexp.MustCompile(`: strconv\.Parse\w+: parsing "[^"]*": (invalid syntax|value out of range)$`)

// PlainFlagError rewrites pflag's errors without Go internals.
func PlainFlagError(err error) error {
	msg := err.Error()
	if m := goInternals.FindStringSubmatch(msg); m != nil {
		what := "not a number"
		if m[1] == "value out of range" {
			what = "out of range"
		}
		if strings.Contains(m[0], "ParseBool") {
			what = "want true or false"
		}
		return errors.New(strings.TrimSuffix(msg, m[0]) + ": " + what)
	}
	return err
}
