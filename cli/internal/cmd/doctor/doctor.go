// Package doctor implements `kilometers doctor`.
package doctor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/setup"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// Status grades a check.
type Status string

const (
	OK   Status = "ok"
	Info Status = "info" // worth knowing, nothing to do
	Warn Status = "warn" // needs the user's attention
	Fail Status = "fail" // something does not work
)

// Check is one finding.
type Check struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Detail  string `json:"detail"`
	// Fix says what to do about a warn or a fail.
	Fix string `json:"fix,omitempty"`
}

// Report is the --json shape.
type Report struct {
	// OK is false when any check needs attention (the exit code is 1).
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// ClientConfig is one MCP client configuration found on this machine and
// how many of its servers run behind the monitor.
type ClientConfig struct {
	Client string `json:"client"`
	Path   string `json:"path"`
	// Servers counts the stdio servers the monitor can wrap (remote ones
	// are not counted), Wrapped those it does.
	Servers int `json:"servers"`
	Wrapped int `json:"wrapped"`
	// Error says why the file could not be read (file:line:column).
	Error string `json:"error,omitempty"`
}

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Now    func() time.Time
	// UserAgent names the CLI to the API.
	UserAgent string
	// HTTPClient replaces the API client's transport (tests).
	HTTPClient *http.Client
	// Clients lists the MCP client configurations on this machine (the
	// files `kilometers setup` edits); nil skips the section.
	Clients func(ctx context.Context) ([]ClientConfig, error)
	JSON    bool
}

// apiTimeout bounds each API check: doctor must answer even when the API
// does not.
const apiTimeout = 5 * time.Second

// sessionWindow is how far back session warnings are reported.
const sessionWindow = 7 * 24 * time.Hour

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now, UserAgent: f.UserAgent()}
	opts.Clients = func(context.Context) ([]ClientConfig, error) {
		home, err := f.Home()
		if err != nil {
			return nil, err
		}
		env, err := setup.NewEnv(f.Getenv, home)
		if err != nil {
			return nil, fmt.Errorf("find the MCP client configurations: %w", err)
		}
		return clientConfigs(setup.Status(env)), nil
	}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the configuration, the local store, shipping and the API",
		Long: `Check that Kilometers is set up and working: the configuration and where
each value comes from, the local store (size, segments, anything unreadable),
warnings the monitor recorded in recent sessions, events waiting to be
shipped and the last shipping error, the API's reachability and whether it
accepts the key, and which MCP client configurations run their servers
behind the monitor.

Exits 1 when anything needs attention, each finding with what to do.`,
		Example: `  kilometers doctor
  kilometers doctor --json | jq '.checks[] | select(.status != "ok")'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return Run(cmd.Context(), opts) },
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"ok": ..., "checks": [...]} as JSON`)
	return cmd
}

// Run checks and reports.
func Run(ctx context.Context, opts *Options) error {
	r := Report{OK: true, Checks: []Check{}}
	add := func(c Check) {
		r.Checks = append(r.Checks, c)
		if c.Status == Warn || c.Status == Fail {
			r.OK = false
		}
	}
	c, err := opts.Config()
	if err != nil {
		add(Check{Section: "config", Name: "configuration", Status: Fail, Detail: err.Error(),
			Fix: "fix the file or the variable named, or run 'kilometers config unset KEY'"})
		return report(opts, r)
	}
	checkConfig(c, add)
	st := checkStore(ctx, opts, c, add)
	if st != nil {
		checkSessions(ctx, opts, st, add)
	}
	checkShipping(ctx, opts, c, st, add)
	checkClients(ctx, opts, add)
	return report(opts, r)
}

func checkConfig(c *config.Config, add func(Check)) {
	for _, k := range config.Keys {
		v := c.Value(k)
		if v == "" {
			v = "-"
		}
		detail := fmt.Sprintf("%s (%s)", v, c.Sources[k])
		if c.Sources[k] == config.SourceEnv {
			detail = fmt.Sprintf("%s (from %s)", v, config.EnvVar(k))
		}
		add(Check{Section: "config", Name: k, Status: OK, Detail: detail})
	}
	add(Check{Section: "config", Name: "file", Status: OK, Detail: c.File})
}

func checkStore(ctx context.Context, opts *Options, c *config.Config, add func(Check)) *store.Store {
	st, err := store.OpenConfig(ctx, c)
	if err != nil {
		add(Check{Section: "store", Name: "local store", Status: Fail, Detail: err.Error(),
			Fix: "check the permissions of " + c.Home + ", or set KILOMETERS_HOME to a directory you own"})
		return nil
	}
	u, err := st.Usage(ctx)
	if err != nil {
		add(Check{Section: "store", Name: "local store", Status: Fail, Detail: err.Error()})
		return st
	}
	detail := fmt.Sprintf("%s in %d segments (%d being written), %s events sealed, in %s",
		output.Bytes(u.Bytes), u.Segments, u.Live, output.Count(u.Events), u.Dir)
	if u.Oldest != nil {
		detail += fmt.Sprintf("; events from %s to %s", u.Oldest.UTC().Format(time.RFC3339), u.Newest.UTC().Format(time.RFC3339))
	}
	add(Check{Section: "store", Name: "local store", Status: OK, Detail: detail})
	if c.RetentionBytes > 0 && u.Bytes > c.RetentionBytes*9/10 {
		add(Check{Section: "store", Name: "size", Status: Warn,
			Detail: fmt.Sprintf("%s of the %s retention_bytes allows: the oldest events are deleted next", output.Bytes(u.Bytes), output.Bytes(c.RetentionBytes)),
			Fix:    "kilometers config set retention_bytes <more>, or ship them (kilometers sync)"})
	}
	if u.Unindexed > 0 {
		add(Check{Section: "store", Name: "segment indexes", Status: Warn,
			Detail: fmt.Sprintf("%d sealed segments have an unreadable index; reads scan them whole", u.Unindexed),
			Fix:    "nothing is lost; 'kilometers purge' starts afresh if reads are slow"})
	}
	return st
}

func checkSessions(ctx context.Context, opts *Options, st *store.Store, add func(Check)) {
	sessions, err := st.SessionRecords(ctx)
	if err != nil {
		add(Check{Section: "sessions", Name: "sessions", Status: Fail, Detail: err.Error()})
		return
	}
	since := opts.Now().Add(-sessionWindow)
	warned := 0
	for _, s := range sessions {
		if s.StartedAt.Before(since) {
			continue
		}
		if len(s.Warnings) > 0 {
			warned++
			add(Check{Section: "sessions", Name: "session " + output.ShortID(s.ID), Status: Warn,
				Detail: fmt.Sprintf("%s, started %s: %s", s.Server, s.StartedAt.UTC().Format(time.RFC3339), strings.Join(s.Warnings, "; ")),
				Fix:    "fix the setting named (kilometers config set/unset), then restart the MCP client"})
		}
		if s.DroppedEvents > 0 {
			warned++
			add(Check{Section: "sessions", Name: "session " + output.ShortID(s.ID), Status: Warn,
				Detail: fmt.Sprintf("%s: %s events could not be recorded", s.Server, output.Count(s.DroppedEvents)),
				Fix:    "the store was slow or failing: check free disk space"})
		}
	}
	if warned == 0 {
		add(Check{Section: "sessions", Name: "recent sessions", Status: OK,
			Detail: fmt.Sprintf("%d sessions, none with warnings in the last 7 days", len(sessions))})
	}
}

func checkShipping(ctx context.Context, opts *Options, c *config.Config, st *store.Store, add func(Check)) {
	if !c.ShippingEnabled() {
		detail := "no API configured: events stay on this machine"
		if c.APIURL != "" {
			detail = "api_url is set but api_key is not: nothing is shipped"
			add(Check{Section: "api", Name: "API", Status: Warn, Detail: detail, Fix: "kilometers config set api_key km_..."})
			return
		}
		add(Check{Section: "api", Name: "API", Status: Info, Detail: detail + " (kilometers init connects one)"})
		return
	}
	if st != nil {
		checkSpool(ctx, st, add)
	}
	client := apiclient.New(c.APIURL, c.APIKey, apiclient.Options{UserAgent: opts.UserAgent, RetryMax: -1, Timeout: apiTimeout, HTTPClient: opts.HTTPClient})
	hctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	h, err := client.Health(hctx)
	switch {
	case err != nil:
		add(Check{Section: "api", Name: "reachable", Status: Fail, Detail: fmt.Sprintf("%s: %v", c.APIURL, err),
			Fix: "check the network and api_url; events wait in the spool meanwhile"})
		return
	case h.Database != "" && h.Database != "ok":
		add(Check{Section: "api", Name: "reachable", Status: Warn, Detail: fmt.Sprintf("%s answers, but its database is %s", c.APIURL, h.Database),
			Fix: "the backend's operator must look at it; events wait in the spool meanwhile"})
	default:
		add(Check{Section: "api", Name: "reachable", Status: OK, Detail: c.APIURL})
	}
	kctx, cancel2 := context.WithTimeout(ctx, apiTimeout)
	defer cancel2()
	err = client.CheckKey(kctx)
	if e, ok := apiclient.AsError(err); ok && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
		add(Check{Section: "api", Name: "API key", Status: Fail, Detail: fmt.Sprintf("%s refused: %s", config.MaskKey(c.APIKey), e.Message),
			Fix: "kilometers config set api_key <a valid key>"})
		return
	}
	if err != nil {
		add(Check{Section: "api", Name: "API key", Status: Fail, Detail: err.Error()})
		return
	}
	add(Check{Section: "api", Name: "API key", Status: OK, Detail: config.MaskKey(c.APIKey) + " accepted"})
}

func checkSpool(ctx context.Context, st *store.Store, add func(Check)) {
	p, err := st.Pending(ctx)
	if err != nil {
		add(Check{Section: "shipping", Name: "spool", Status: Fail, Detail: err.Error()})
		return
	}
	switch {
	case p.Events == 0:
		add(Check{Section: "shipping", Name: "spool", Status: OK, Detail: "nothing waiting to be shipped"})
	case p.Oldest != nil && time.Since(*p.Oldest) > time.Hour:
		add(Check{Section: "shipping", Name: "spool", Status: Warn,
			Detail: fmt.Sprintf("%s events (%s) waiting since %s", output.Count(p.Events), output.Bytes(p.Bytes), p.Oldest.UTC().Format(time.RFC3339)),
			Fix:    "kilometers sync ships them now and says what stops them"})
	default:
		add(Check{Section: "shipping", Name: "spool", Status: OK, Detail: fmt.Sprintf("%s events waiting (recent)", output.Count(p.Events))})
	}
	if len(p.SetAside) > 0 {
		n := 0
		for _, b := range p.SetAside {
			n += b.Events
		}
		add(Check{Section: "shipping", Name: "set aside", Status: Warn,
			Detail: fmt.Sprintf("%d events in %d batches the API refused, first: %s", n, len(p.SetAside), p.SetAside[0].Reason),
			Fix:    "see 'kilometers sync'; delete the files under rejected/ once dealt with"})
	}
	if p.Lost > 0 {
		add(Check{Section: "shipping", Name: "lost", Status: Warn,
			Detail: fmt.Sprintf("%s unshipped events were deleted to respect retention_bytes", output.Count(p.Lost)),
			Fix:    "raise retention_bytes, or fix shipping"})
	}
	last, err := st.LastShipStatus()
	switch {
	case err != nil:
		add(Check{Section: "shipping", Name: "last shipping", Status: Warn, Detail: err.Error()})
	case last == nil:
		add(Check{Section: "shipping", Name: "last shipping", Status: Info, Detail: "no shipping attempt recorded yet"})
	case last.Error != "":
		add(Check{Section: "shipping", Name: "last shipping", Status: Warn,
			Detail: fmt.Sprintf("failed at %s: %s", last.At.UTC().Format(time.RFC3339), last.Error), Fix: "kilometers sync"})
	default:
		add(Check{Section: "shipping", Name: "last shipping", Status: OK, Detail: "succeeded at " + last.At.UTC().Format(time.RFC3339)})
	}
}

// clientConfigs is what doctor reports of the files setup found.
func clientConfigs(files []setup.File) []ClientConfig {
	out := make([]ClientConfig, 0, len(files))
	for _, f := range files {
		wrapped, wrappable := f.Wrapped()
		out = append(out, ClientConfig{Client: f.ClientName, Path: f.Path, Servers: wrappable, Wrapped: wrapped, Error: f.Error})
	}
	return out
}

func checkClients(ctx context.Context, opts *Options, add func(Check)) {
	if opts.Clients == nil {
		add(Check{Section: "clients", Name: "MCP clients", Status: Info, Detail: "not checked by this build"})
		return
	}
	found, err := opts.Clients(ctx)
	if err != nil {
		add(Check{Section: "clients", Name: "MCP clients", Status: Warn, Detail: err.Error()})
		return
	}
	if len(found) == 0 {
		add(Check{Section: "clients", Name: "MCP clients", Status: Info, Detail: "no MCP client configuration found"})
	}
	for _, cl := range found {
		if cl.Error != "" {
			add(Check{Section: "clients", Name: cl.Client, Status: Warn, Detail: cl.Error,
				Fix: "fix the file; kilometers setup leaves a file it cannot read untouched"})
			continue
		}
		c := Check{Section: "clients", Name: cl.Client, Status: OK, Detail: fmt.Sprintf("%d of %d servers monitored (%s)", cl.Wrapped, cl.Servers, cl.Path)}
		if cl.Wrapped < cl.Servers {
			c.Status, c.Fix = Warn, "kilometers setup puts the monitor in front of the others"
		}
		add(c)
	}
}

func report(opts *Options, r Report) error {
	if opts.JSON {
		if err := output.JSON(opts.IO, r); err != nil {
			return err
		}
	} else if err := printReport(opts.IO, &r); err != nil {
		return err
	}
	if !r.OK {
		return &cmdutil.ExitError{Code: 1}
	}
	return nil
}

var sectionTitles = map[string]string{
	"config": "Configuration", "store": "Local store", "sessions": "Recent sessions",
	"shipping": "Shipping", "api": "API", "clients": "MCP clients",
}

var marks = map[Status]string{OK: "✓", Info: "-", Warn: "!", Fail: "✗"}

func printReport(ios *cmdutil.IOStreams, r *Report) error {
	var b strings.Builder
	section := ""
	for _, c := range r.Checks {
		if c.Section != section {
			if section != "" {
				b.WriteByte('\n')
			}
			section = c.Section
			b.WriteString(output.Title(ios, sectionTitles[section]) + "\n")
		}
		mark := marks[c.Status]
		switch c.Status {
		case Warn:
			mark = output.Paint(ios, output.Yellow, mark)
		case Fail:
			mark = output.Paint(ios, output.Red, mark)
		case OK:
			mark = output.Paint(ios, output.Green, mark)
		}
		fmt.Fprintf(&b, "  %s %s: %s\n", mark, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(&b, "      %s\n", c.Fix)
		}
	}
	if r.OK {
		b.WriteString("\nNothing needs your attention.\n")
	} else {
		b.WriteString("\nSome things need your attention (marked ! or ✗).\n")
	}
	_, err := fmt.Fprint(ios.Out, b.String())
	return err
}
