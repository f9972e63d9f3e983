// Package alertscmd implements `kilometers alerts`: local alert rules that
// the background shipper evaluates and delivers to webhooks.
package alertscmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/alerts"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
)

// Common are the dependencies every subcommand takes.
type Common struct {
	IO        *cmdutil.IOStreams
	Home      func() (string, error)
	Now       func() time.Time
	Getenv    func(string) string
	UserAgent string
}

// NewCmd builds `kilometers alerts`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	c := &Common{IO: f.IO, Home: f.Home, Now: f.Now, Getenv: f.Getenv, UserAgent: "kilometers/" + f.Build.Version}
	cmd := &cobra.Command{
		Use:   "alerts <command>",
		Short: "Alert rules that post to webhooks (Slack-compatible)",
		Long: `Alert rules watch what the monitor records and post to a webhook when they
fire: a poisoned tool, a tool definition that changed, a high-risk call, a
server or tool seen for the first time, a tool's failure rate or p95 latency
over a threshold within a window. The background shipper that runs beside
every monitored session evaluates them, seconds after the events are
recorded; nothing runs on the relay path.

Every POST carries a JSON body with a Slack-compatible "text" field and the
header X-Kilometers-Signature: sha256=<hex HMAC-SHA256 of the body>, keyed
with the rule's secret. See docs/alerts.md.`,
		Example: `  printf %s "$SECRET" | kilometers alerts add --on poisoning --webhook https://hooks.slack.com/services/T0/B0/XYZ
  kilometers alerts list
  kilometers alerts test al_1a2b3c4d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAddCmd(c), newListCmd(c), newRemoveCmd(c), newTestCmd(c))
	return cmd
}

// AddOptions are the flags of `alerts add`.
type AddOptions struct {
	*Common
	On        string
	Threshold float64
	Window    time.Duration
	Webhook   string
	SecretEnv string
	JSON      bool
}

func newAddCmd(c *Common) *cobra.Command {
	o := &AddOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "add --on RULE --webhook URL",
		Short: "Add an alert rule",
		Long: `Add an alert rule. RULE is one of:

  poisoning           a tools/list reply with a tool whose description hides instructions
  definition_changed  a tool whose definition changed since it was first seen
  high_risk           a tools/call whose risk score reaches --threshold (default 70)
  new_server          a server seen for the first time
  new_tool            a tool seen for the first time
  failure_rate        a tool's failed share of calls within --window reaches --threshold (0-1, default 0.5)
  latency_p95         a tool's p95 latency within --window reaches --threshold milliseconds (default 1000)

A rule fires at most once per condition (server or tool) per --window
(default 5m), and only for events recorded after it was added. The signing
secret is read from stdin, or from the variable --secret-env names when the
alert is sent.`,
		Example: `  printf %s "$SECRET" | kilometers alerts add --on poisoning --webhook https://hooks.slack.com/services/T0/B0/XYZ
  kilometers alerts add --on failure_rate --threshold 0.2 --window 10m --webhook https://example.com/hook --secret-env KM_HOOK_SECRET < /dev/null
  printf %s "$SECRET" | kilometers alerts add --on latency_p95 --threshold 2000 --webhook https://example.com/hook`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return RunAdd(o) },
	}
	cmd.Flags().StringVar(&o.On, "on", "", "the `rule` (see above)")
	cmd.Flags().Float64Var(&o.Threshold, "threshold", 0, "threshold of high_risk (score), failure_rate (fraction) and latency_p95 (ms)")
	cmd.Flags().DurationVar(&o.Window, "window", alerts.DefaultWindow, "window of failure_rate and latency_p95, and the least time between two alerts of one condition")
	cmd.Flags().StringVar(&o.Webhook, "webhook", "", "the `URL` to POST alerts to")
	cmd.Flags().StringVar(&o.SecretEnv, "secret-env", "", "read the signing secret from this environment `variable` when sending, instead of stdin now")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the rule as JSON (without its secret)")
	_ = cmd.MarkFlagRequired("on")
	_ = cmd.MarkFlagRequired("webhook")
	return cmd
}

// maxSecret bounds what is read from stdin as a secret.
const maxSecret = 4096

// RunAdd adds a rule.
func RunAdd(o *AddOptions) error {
	home, err := o.Home()
	if err != nil {
		return err
	}
	r := alerts.Rule{ID: alerts.NewID(), On: alerts.Kind(strings.ToLower(o.On)), Threshold: o.Threshold, Window: o.Window,
		Webhook: o.Webhook, SecretEnv: o.SecretEnv, CreatedAt: o.Now().UTC()}
	if o.SecretEnv == "" {
		if r.Secret, err = readSecret(o.IO.In); err != nil {
			return err
		}
	}
	if err := r.Validate(); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	rules, err := alerts.Load(home)
	if err != nil {
		return err
	}
	if err := alerts.Save(home, append(rules, r)); err != nil {
		return err
	}
	if o.JSON {
		return output.JSON(o.IO, public(r))
	}
	fmt.Fprintf(o.IO.Out, "Added alert rule %s: %s -> %s\n", r.ID, describe(r), r.Webhook)
	return nil
}

// readSecret reads the secret from stdin: its first line, without
// surrounding space. One line, not everything up to EOF, so that typing it
// at a terminal ends with Enter.
func readSecret(in io.Reader) (string, error) {
	if in == nil {
		return "", errors.New("no signing secret: pipe it on stdin or use --secret-env")
	}
	line, err := bufio.NewReader(io.LimitReader(in, maxSecret+1)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the signing secret: %w", err)
	}
	if len(line) > maxSecret {
		return "", fmt.Errorf("signing secret on stdin longer than %d bytes", maxSecret)
	}
	return strings.TrimSpace(line), nil
}

// publicRule is a rule as shown: the secret is never printed.
type publicRule struct {
	ID        string      `json:"id"`
	On        alerts.Kind `json:"on"`
	Threshold float64     `json:"threshold,omitempty"`
	Window    string      `json:"window"`
	Webhook   string      `json:"webhook"`
	Secret    string      `json:"secret"`
	CreatedAt time.Time   `json:"created_at"`
}

func public(r alerts.Rule) publicRule {
	secret := "stored"
	if r.SecretEnv != "" {
		secret = "$" + r.SecretEnv
	}
	w := r.Window
	if w == 0 {
		w = alerts.DefaultWindow
	}
	return publicRule{ID: r.ID, On: r.On, Threshold: r.Threshold, Window: w.String(), Webhook: r.Webhook, Secret: secret, CreatedAt: r.CreatedAt}
}

func describe(r alerts.Rule) string {
	s := string(r.On)
	if r.Threshold > 0 {
		s += fmt.Sprintf(" >= %g", r.Threshold)
	}
	return s + " per " + public(r).Window
}

// ListOptions are the flags of `alerts list`.
type ListOptions struct {
	*Common
	JSON bool
}

func newListCmd(c *Common) *cobra.Command {
	o := &ListOptions{Common: c}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the alert rules",
		Example: `  kilometers alerts list
  kilometers alerts list --json | jq -r '.rules[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return RunList(o) },
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, `print {"rules": [...]} as JSON (secrets never shown)`)
	return cmd
}

// RunList prints the rules.
func RunList(o *ListOptions) error {
	home, err := o.Home()
	if err != nil {
		return err
	}
	rules, err := alerts.Load(home)
	if err != nil {
		return err
	}
	out := struct {
		Rules []publicRule `json:"rules"`
	}{Rules: []publicRule{}}
	for _, r := range rules {
		out.Rules = append(out.Rules, public(r))
	}
	if o.JSON {
		return output.JSON(o.IO, out)
	}
	if len(rules) == 0 {
		fmt.Fprintln(o.IO.Out, "No alert rules. Add one with: kilometers alerts add --on poisoning --webhook URL")
		return nil
	}
	tb := output.NewTable(o.IO, "ID", "RULE", "THRESHOLD", "WINDOW", "WEBHOOK", "SECRET")
	for _, r := range out.Rules {
		th := ""
		if r.Threshold > 0 {
			th = fmt.Sprint(r.Threshold)
		}
		tb.AddRow(r.ID, string(r.On), th, r.Window, r.Webhook, r.Secret)
	}
	return tb.Render()
}

// IDOptions are the argument of `alerts remove` and `alerts test`.
type IDOptions struct {
	*Common
	ID string
}

func newRemoveCmd(c *Common) *cobra.Command {
	o := &IDOptions{Common: c}
	return &cobra.Command{
		Use:     "remove <id>",
		Aliases: []string{"rm"},
		Short:   "Remove an alert rule",
		Example: `  kilometers alerts remove al_1a2b3c4d`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return RunRemove(o)
		},
	}
}

// RunRemove removes a rule; alerts of it still undelivered are dropped.
func RunRemove(o *IDOptions) error {
	home, err := o.Home()
	if err != nil {
		return err
	}
	rules, err := alerts.Load(home)
	if err != nil {
		return err
	}
	kept := rules[:0]
	for _, r := range rules {
		if r.ID != o.ID {
			kept = append(kept, r)
		}
	}
	if len(kept) == len(rules) {
		return fmt.Errorf("no alert rule %q (see kilometers alerts list)", o.ID)
	}
	if err := alerts.Save(home, kept); err != nil {
		return err
	}
	fmt.Fprintf(o.IO.Out, "Removed alert rule %s.\n", o.ID)
	return nil
}

func newTestCmd(c *Common) *cobra.Command {
	o := &IDOptions{Common: c}
	return &cobra.Command{
		Use:   "test <id>",
		Short: "Send a test alert of a rule to its webhook",
		Long: `Send a test alert, signed like a real one and marked "test": true, to the
rule's webhook, with the same retries. Exits non-zero if it was not delivered.`,
		Example: `  kilometers alerts test al_1a2b3c4d`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return RunTest(cmd.Context(), o)
		},
	}
}

// RunTest sends a test alert.
func RunTest(ctx context.Context, o *IDOptions) error {
	home, err := o.Home()
	if err != nil {
		return err
	}
	rules, err := alerts.Load(home)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.ID != o.ID {
			continue
		}
		now := o.Now().UTC()
		a := alerts.Alert{ID: "alert_test_" + now.Format("20060102T150405Z"), RuleID: r.ID, On: r.On, Test: true, At: now,
			Condition: "test", Text: fmt.Sprintf("*Kilometers alert* (test): rule %s (%s) reaches this webhook.", r.ID, describe(r))}
		s := &alerts.Sender{Getenv: o.Getenv, UserAgent: o.UserAgent}
		if err := s.Send(ctx, r, a); err != nil {
			return fmt.Errorf("test alert not delivered to %s: %w", r.Webhook, err)
		}
		fmt.Fprintf(o.IO.Out, "Test alert delivered to %s.\n", r.Webhook)
		return nil
	}
	return fmt.Errorf("no alert rule %q (see kilometers alerts list)", o.ID)
}
