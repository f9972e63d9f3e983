// Package version implements `kilometers version`.
package version

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
)

// Line is what both `kilometers version` and `kilometers --version` print.
func Line(b cmdutil.BuildInfo) string {
	return fmt.Sprintf("%s (commit %s, built %s)", b.Version, b.Commit, b.Date)
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of kilometers",
		Example: `  kilometers version
  kilometers version --json | jq -r .version`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				return output.JSON(f.IO, struct {
					Version string `json:"version"`
					Commit  string `json:"commit"`
					Date    string `json:"date"`
				}{f.Build.Version, f.Build.Commit, f.Build.Date})
			}
			_, err := fmt.Fprintf(f.IO.Out, "kilometers %s\n", Line(f.Build))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version, commit and build date as JSON")
	return cmd
}
