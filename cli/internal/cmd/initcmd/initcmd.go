// Package initcmd implements `kilometers init`.
package initcmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
)

// Options are the command's flags and dependencies.
type Options struct {
	IO        *cmdutil.IOStreams
	Home      func() (string, error)
	Getenv    func(string) string
	UserAgent string
	Flags     *config.Flags
	KeyStdin  bool
	NoVerify  bool
	JSON      bool
	// Timeout bounds the check against the API.
	Timeout time.Duration
}

// NewCmd builds the command; runF replaces the run function in tests.
func NewCmd(f *cmdutil.Factory, runF ...func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Home: f.Home, Getenv: f.Getenv, UserAgent: "kilometers/" + f.Build.Version, Timeout: 20 * time.Second}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Connect this machine to a Kilometers API",
		Long: `Write the config file (mode 0600, in the Kilometers home) with the API's URL,
an API key and shipping settings, after checking that the API answers and
accepts the key. From then on monitored sessions are shipped to the API, and
'kilometers activity' and 'kilometers stats' read it.

Settings already in the file are kept unless a flag changes them. The URL and
key may also come from KILOMETERS_API_URL and KILOMETERS_API_KEY.`,
		Example: `  # Key from a variable, so it does not show in the process list:
  export KILOMETERS_API_KEY=km_...
  kilometers init --api-url https://abc123.execute-api.eu-west-1.amazonaws.com

  # Key from stdin (a secret manager, a file):
  op read op://team/kilometers/key | kilometers init --api-url https://km.example.com --api-key-stdin

  # Ship metadata only, no payloads:
  kilometers init --api-url http://127.0.0.1:8080 --capture-mode metadata

  # In a provisioning script:
  kilometers init --api-url "$URL" --api-key-stdin --json < key.txt | jq .ok`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(runF) > 0 {
				return runF[0](cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	opts.Flags = config.BindFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.KeyStdin, "api-key-stdin", false, "read the API key from standard input")
	cmd.Flags().BoolVar(&opts.NoVerify, "no-verify", false, "write the file without checking the API")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the outcome as JSON (also on failure)")
	cmd.MarkFlagsMutuallyExclusive("api-key", "api-key-stdin")
	return cmd
}

// Output is the --json shape.
type Output struct {
	OK          bool   `json:"ok"`
	File        string `json:"file,omitempty"`
	APIURL      string `json:"api_url,omitempty"`
	APIKey      string `json:"api_key,omitempty"` // masked
	CaptureMode string `json:"capture_mode,omitempty"`
	// Verified is true when the API answered and accepted the key.
	Verified bool `json:"verified"`
	// Database is what the API said of its database ("ok", or why not).
	Database string `json:"database,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Run checks the settings against the API and writes the config file.
func Run(ctx context.Context, opts *Options) error {
	var out Output
	err := run(ctx, opts, &out)
	if !opts.JSON {
		return err
	}
	out.OK = err == nil
	if err != nil {
		out.Error = err.Error()
	}
	if jerr := output.JSON(opts.IO, out); jerr != nil {
		return errors.Join(err, jerr)
	}
	return err
}

func run(ctx context.Context, opts *Options, out *Output) error {
	home, err := opts.Home()
	if err != nil {
		return err
	}
	path := config.Path(home)
	file, err := config.ReadFile(path)
	if err != nil {
		return err
	}
	// Start from the file, then flags; URL and key may come from the
	// environment when neither gives them.
	c := config.Defaults(home)
	if err := c.ApplyFile(file); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range []string{config.KeyAPIURL, config.KeyAPIKey} {
		if v := opts.Getenv(config.EnvVar(k)); v != "" {
			if err := c.Set(k, v, config.SourceEnv); err != nil {
				return fmt.Errorf("%s: %w", config.EnvVar(k), err)
			}
		}
	}
	if opts.KeyStdin {
		key, err := bufio.NewReader(opts.IO.In).ReadString('\n')
		if err != nil && key == "" {
			return fmt.Errorf("read API key from stdin: %w", err)
		}
		if err := c.Set(config.KeyAPIKey, strings.TrimSpace(key), config.SourceFlag); err != nil {
			return err
		}
	}
	if err := opts.Flags.Apply(c); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	if c.APIURL == "" {
		return cmdutil.FlagErrorf("the API's URL is required: --api-url or %s", config.EnvVar(config.KeyAPIURL))
	}
	if c.APIKey == "" {
		return cmdutil.FlagErrorf("an API key is required: %s, --api-key-stdin or --api-key", config.EnvVar(config.KeyAPIKey))
	}
	out.File, out.APIURL, out.APIKey, out.CaptureMode = path, c.APIURL, config.MaskKey(c.APIKey), c.CaptureMode

	if !opts.NoVerify {
		db, err := verify(ctx, opts, c)
		out.Database = db
		if err != nil {
			return err
		}
		out.Verified = true
	}
	// Every key that has a value other than the default is written, so
	// the file alone reproduces this configuration.
	if err := config.WriteFile(path, c.ToFile()); err != nil {
		return err
	}
	if opts.JSON {
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "Wrote %s (readable by you only).\n", path)
	fmt.Fprintf(opts.IO.Out, "Events of monitored sessions are now shipped to %s (capture mode %s).\n", c.APIURL, c.CaptureMode)
	fmt.Fprintln(opts.IO.Out, "Check with 'kilometers config'; ship what was recorded before now with 'kilometers sync'.")
	return nil
}

// verify checks that the API answers and accepts the key; it returns what
// the API said of its database.
func verify(ctx context.Context, opts *Options, c *config.Config) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	client := apiclient.New(c.APIURL, c.APIKey, apiclient.Options{UserAgent: opts.UserAgent, RetryMax: 1})
	db := "ok"
	h, err := client.Health(ctx)
	if err != nil {
		e, ok := apiclient.AsError(err)
		if !ok || e.Status != 503 {
			return "", fmt.Errorf("cannot reach the API at %s (is the URL right? use --no-verify to write the file anyway): %w", c.APIURL, err)
		}
		db = "down: " + e.Message
		fmt.Fprintf(opts.IO.ErrOut, "warning: the API answers but its database is down (%s); events will wait in the local spool\n", e.Message)
	} else if h.Status != "ok" {
		db = h.Database
		fmt.Fprintf(opts.IO.ErrOut, "warning: the API reports status %q, database %q\n", h.Status, h.Database)
	}
	if err := client.CheckKey(ctx); err != nil {
		if e, ok := apiclient.AsError(err); ok && (e.Status == 401 || e.Status == 403) {
			return db, fmt.Errorf("the API refused the key %s: %s", config.MaskKey(c.APIKey), e.Message)
		}
		return db, fmt.Errorf("check the API key: %w", err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "API at %s is up; key %s accepted.\n", c.APIURL, config.MaskKey(c.APIKey))
	return db, nil
}
