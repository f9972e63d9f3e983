// Package activity implements `kilometers activity`.
package activity

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Source answers activity queries: the local store, or the API.
type Source interface {
	Activity(ctx context.Context, q activity.Query) (activity.Page, error)
}

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Now    func() time.Time
	// Source opens where events are read from; by default the local store.
	Source func(ctx context.Context) (Source, error)
	// Local reads the local store even when an API is configured.
	Local bool

	Limit   int
	Session string
	Server  string
	Method  string
	Tool    string
	Kind    string
	Risk    string
	Since   string
	Until   string
	Cursor  string
	JSON    bool
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now}
	opts.Source = func(ctx context.Context) (Source, error) {
		return openSource(ctx, opts.Config, opts.Local, "kilometers/"+f.Build.Version, opts.IO.ErrOut)
	}
	cmd := &cobra.Command{
		Use:   "activity",
		Short: "List recorded events, newest first",
		Long: `List the JSON-RPC messages the monitor recorded, newest first, with
their server, direction, kind, method, tool, latency, size and risk. With an
API configured ('kilometers init') they come from the API, every machine of
the team; --local reads this machine's store.

Filters combine. Times are RFC 3339 or a duration back from now (30m, 24h,
7d). When more events match than --limit, a last line on stderr says how to
get the next page; with --json, "next_cursor" is the value to pass to
--cursor.`,
		Example: `  # The latest 50 events
  kilometers activity

  # Failed tool calls of the last hour
  kilometers activity --kind error --since 1h

  # Risky read_file calls, as JSON for jq
  kilometers activity --tool read_file --risk medium --json | jq '.events[].risk'

  # Only this machine, even with an API configured
  kilometers activity --local

  # The next page
  kilometers activity --limit 100 --cursor MjAyNi0xMS0yMlQxMjowMDowMFp8MDE5...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Limit, "limit", "L", activity.DefaultLimit, fmt.Sprintf("maximum number of events to list (1-%d)", activity.MaxLimit))
	fl.StringVar(&opts.Session, "session", "", "only events of this session `id`")
	fl.StringVar(&opts.Server, "server", "", "only events of this `server`")
	fl.StringVar(&opts.Method, "method", "", "only events with this JSON-RPC `method` (tools/call, resources/read...)")
	fl.StringVar(&opts.Tool, "tool", "", "only events of this `tool`")
	fl.StringVar(&opts.Kind, "kind", "", "only events of this `kind`: request, response, notification, error or invalid")
	fl.StringVar(&opts.Risk, "risk", "", "only events at this risk `level` or above: low, medium or high")
	fl.StringVar(&opts.Since, "since", "", "only events at or after this `time` (RFC 3339, or 30m, 24h, 7d ago)")
	fl.StringVar(&opts.Until, "until", "", "only events before this `time`")
	fl.StringVar(&opts.Cursor, "cursor", "", "continue after a previous page (its next_cursor)")
	fl.BoolVar(&opts.Local, "local", false, "read this machine's local store even when an API is configured")
	fl.BoolVar(&opts.JSON, "json", false, `print {"events": [...], "next_cursor": "..."} as JSON`)

	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(
		[]string{"request", "response", "notification", "error", "invalid"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("risk", cobra.FixedCompletions(
		[]string{"low", "medium", "high"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("server", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return CompleteServers(cmd.Context(), opts.Config), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Query turns the flags into an activity query, with the same rules as the
// API's parameters.
func (o *Options) Query() (activity.Query, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("session", o.Session)
	set("server", o.Server)
	set("method", o.Method)
	set("tool", o.Tool)
	set("kind", o.Kind)
	set("risk", o.Risk)
	set("since", o.Since)
	set("until", o.Until)
	set("cursor", o.Cursor)
	v.Set("limit", strconv.Itoa(o.Limit))
	q, err := activity.ParseQuery(v, o.Now())
	if err != nil {
		return q, cmdutil.FlagErrorf("invalid --%w", err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, cmdutil.FlagErrorf("--since must be before --until")
	}
	return q, nil
}

// Run lists the events.
func Run(ctx context.Context, opts *Options) error {
	q, err := opts.Query()
	if err != nil {
		return err
	}
	src, err := opts.Source(ctx)
	if err != nil {
		return err
	}
	if dr, ok := src.(interface{ ReportUnreadable(io.Writer) }); ok {
		// The local store says, once, what it could not read.
		defer dr.ReportUnreadable(opts.IO.ErrOut)
	}
	page, err := src.Activity(ctx, q)
	if err != nil {
		return fmt.Errorf("read activity: %w", err)
	}
	if opts.JSON {
		return output.JSON(opts.IO, page)
	}
	if len(page.Events) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No events match.")
		return nil
	}
	if err := printTable(opts.IO, page.Events, opts.Now()); err != nil {
		return err
	}
	if page.NextCursor != "" && opts.IO.OutIsTerminal {
		fmt.Fprintf(opts.IO.ErrOut, "\nMore events: add --cursor %s\n", page.NextCursor)
	}
	return nil
}

func printTable(ios *cmdutil.IOStreams, events []event.Event, now time.Time) error {
	t := output.NewTable(ios, "TIME", "SERVER", "DIR", "KIND", "METHOD", "TOOL", "LATENCY", "SIZE", "RISK")
	for i := range events {
		e := &events[i]
		if !ios.OutIsTerminal {
			// Plain values for scripts.
			lat, risk := "", ""
			if e.LatencyMS != nil {
				lat = strconv.FormatFloat(*e.LatencyMS, 'f', -1, 64)
			}
			if e.Risk != nil {
				risk = string(e.Risk.Level)
			}
			t.AddRow(e.TS.UTC().Format(time.RFC3339Nano), e.Server, string(e.Direction), string(e.Kind),
				e.Method, e.Tool, lat, strconv.FormatInt(e.Size, 10), risk)
			continue
		}
		lat, risk := "", ""
		if e.LatencyMS != nil {
			lat = output.Millis(*e.LatencyMS)
		}
		var riskColor func(string) string
		if e.Risk != nil {
			risk = fmt.Sprintf("%s %d", e.Risk.Level, e.Risk.Score)
			switch e.Risk.Level {
			case event.LevelHigh:
				riskColor = output.Red
			case event.LevelMedium:
				riskColor = output.Yellow
			}
		}
		kindColor := (func(string) string)(nil)
		if e.Failed() || e.Kind == event.KindInvalid {
			kindColor = output.Red
		}
		t.AddColoredRow(
			[]string{formatTime(e.TS, now), e.Server, arrow(e.Direction), string(e.Kind), e.Method, e.Tool, lat, output.Bytes(e.Size), risk},
			[]func(string) string{output.Gray, nil, nil, kindColor, nil, nil, nil, nil, riskColor},
		)
	}
	return t.Render()
}

// formatTime shows local time, with the date when it is not today.
func formatTime(ts, now time.Time) string {
	ts, now = ts.Local(), now.Local()
	if ts.Year() == now.Year() && ts.YearDay() == now.YearDay() {
		return ts.Format("15:04:05.000")
	}
	return ts.Format("2006-01-02 15:04:05")
}

func arrow(d event.Direction) string {
	switch d {
	case event.ClientToServer:
		return "→"
	case event.ServerToClient:
		return "←"
	}
	return "?"
}

// openSource reads the API (every machine of the tenant) when one is
// configured, else, or with --local, the local store.
func openSource(ctx context.Context, cfg func() (*config.Config, error), local bool, userAgent string, errOut io.Writer) (Source, error) {
	c, err := cfg()
	if err != nil {
		return nil, err
	}
	// A bad setting stops the command only if it uses it.
	if err := c.Check(config.ReadKeys(local)...); err != nil {
		return nil, err
	}
	c.Warn(errOut, "kilometers", config.ReadKeys(local)...)
	if client := apiclient.FromConfig(c, userAgent); client != nil && !local {
		return client, nil
	}
	return store.OpenConfig(ctx, c)
}

// openLocal opens the local store the configuration names.
func openLocal(ctx context.Context, cfg func() (*config.Config, error)) (*store.Store, error) {
	c, err := cfg()
	if err != nil {
		return nil, err
	}
	return store.OpenConfig(ctx, c)
}

// CompleteServers lists the servers the local store knows, for shell
// completion; nothing when the store cannot be read.
func CompleteServers(ctx context.Context, cfg func() (*config.Config, error)) []string {
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := openLocal(ctx, cfg)
	if err != nil {
		return nil
	}
	sessions, err := st.Sessions(ctx)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range sessions {
		if s.Server != "" && !seen[s.Server] {
			seen[s.Server] = true
			out = append(out, s.Server)
		}
	}
	return out
}
