// Package admin implements `kilometers admin`: tenants, their keys and
// settings, the audit trail and the maintenance job, through the API's admin routes (see
// docs/api.md, "Admin").
//
// The admin token is read from $KILOMETERS_ADMIN_TOKEN or, with
// --token-stdin, from the first line of standard input; never from a flag
// value, which would land in shell history and in ps. The API's URL is the
// one configured for shipping (kilometers init, api_url, KILOMETERS_API_URL).
package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
)

// EnvAdminToken holds the admin token; the server reads the same variable
// (shared/dbconfig.EnvAdminToken).
const EnvAdminToken = "KILOMETERS_ADMIN_TOKEN"

// maxTokenLine bounds what --token-stdin reads.
const maxTokenLine = 4096

// Common is what every admin subcommand needs.
type Common struct {
	IO        *cmdutil.IOStreams
	Config    func() (*config.Config, error)
	Getenv    func(string) string
	UserAgent string
	// TokenStdin reads the admin token from standard input.
	TokenStdin bool
}

// Client returns an admin client for the configured API and the admin
// token.
func (c *Common) Client() (*apiclient.Admin, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	if cfg.APIURL == "" {
		return nil, errors.New("no API configured: set api_url with 'kilometers init' or KILOMETERS_API_URL")
	}
	token, err := c.Token()
	if err != nil {
		return nil, err
	}
	return apiclient.NewAdmin(cfg.APIURL, token, apiclient.Options{UserAgent: c.UserAgent}), nil
}

// Token returns the admin token from stdin (with --token-stdin) or the
// environment.
func (c *Common) Token() (string, error) {
	if c.TokenStdin {
		line, err := bufio.NewReaderSize(io.LimitReader(c.IO.In, maxTokenLine), maxTokenLine).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the admin token from stdin: %w", err)
		}
		if t := strings.TrimSpace(line); t != "" {
			return t, nil
		}
		return "", errors.New("--token-stdin: standard input holds no admin token")
	}
	if t := strings.TrimSpace(c.Getenv(EnvAdminToken)); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("no admin token: set %s, or pipe it in with --token-stdin", EnvAdminToken)
}

// NewCmd builds `kilometers admin` and its subcommands.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	c := &Common{IO: f.IO, Config: f.Config, Getenv: f.Getenv, UserAgent: "kilometers/" + f.Build.Version}
	cmd := &cobra.Command{
		Use:   "admin <command>",
		Short: "Administer a Kilometers API: tenants, keys, settings, audit trail",
		Long: `Administer the Kilometers API configured for shipping (api_url) with its
admin token: create, list, rename and delete tenants, create, list and
revoke their API keys, set their retention and limits, read the audit
trail every one of these actions is written to, and run the maintenance
job (time partitions and retention) now.

The admin token comes from $KILOMETERS_ADMIN_TOKEN or, with --token-stdin,
from the first line of standard input; there is no flag for the token
itself, so it never lands in shell history.`,
		Example: `  export KILOMETERS_ADMIN_TOKEN=...            # or: ... | kilometers admin --token-stdin ...
  kilometers admin tenants create acme
  kilometers admin tenants list
  kilometers admin keys create 01a207de-8b16-7d10-afc3-6313c71168c2 --scopes read
  kilometers admin settings 01a207de-8b16-7d10-afc3-6313c71168c2 --read-per-minute 1200
  kilometers admin audit --json
  kilometers admin maintenance`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().BoolVar(&c.TokenStdin, "token-stdin", false, "read the admin token from the first line of standard input")
	cmd.AddCommand(newTenantsCmd(c, nil), newKeysCmd(c, nil), newSettingsCmd(c, nil), newAuditCmd(c, nil), newMaintenanceCmd(c, nil))
	return cmd
}

// when formats a time for people on a terminal, as RFC 3339 for scripts.
func when(ios *cmdutil.IOStreams, t *time.Time) string {
	switch {
	case t == nil || t.IsZero():
		return "-"
	case ios.OutIsTerminal:
		return t.Local().Format("2006-01-02 15:04:05")
	}
	return t.UTC().Format(time.RFC3339)
}

// run calls runF when a test gave one, else the command's Run.
func run[O any](ctx context.Context, o *O, runF func(context.Context, *O) error, def func(context.Context, *O) error) error {
	if runF != nil {
		return runF(ctx, o)
	}
	return def(ctx, o)
}

func jsonOr(ios *cmdutil.IOStreams, asJSON bool, v any, human func() error) error {
	if asJSON {
		return output.JSON(ios, v)
	}
	return human()
}
