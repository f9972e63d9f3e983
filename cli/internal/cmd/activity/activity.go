// Package activity implements `kilometers activity`.
package activity

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/filters"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Follow polling intervals: the local store is a few files away, the API a
// network round trip.
const (
	FollowLocalEvery = 500 * time.Millisecond
	FollowAPIEvery   = 2 * time.Second
	// followLag is how far back each poll looks again: a monitor writes
	// its events up to a second after their time, and other machines'
	// arrive later still.
	followLag = 10 * time.Second
	// followBacklog is how many recent events --follow shows first when
	// --limit is not given.
	followBacklog = 10
)

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Now    func() time.Time
	// Source opens where events are read from (see package source).
	Source func(ctx context.Context) (source.Source, error)
	// Local reads the local store even when an API is configured.
	Local bool
	// Every replaces the follow polling interval (0: by source).
	Every time.Duration

	filters.Flags
	Limit    int
	limitSet bool
	Cursor   string
	Follow   bool
	JSON     bool
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now}
	opts.Source = func(ctx context.Context) (source.Source, error) { return f.OpenSource(ctx, opts.Local) }
	cmd := &cobra.Command{
		Use:   "activity",
		Short: "List recorded events, newest first, or follow them live",
		Long: `List the JSON-RPC messages the monitor recorded, newest first, with
their time, server, direction, kind, method, tool (or prompt, or resource),
latency, size, risk with its reasons, and why a reply failed. With an API
configured ('kilometers init') they come from the API, every machine of the
team; --local reads this machine's store. 'kilometers show ID' prints one
call in full.

--failed keeps the replies that failed: JSON-RPC errors, and tool results
marked isError (which are kind "response"). Filters combine. Times are
RFC 3339, a date (2026-12-01), or a span back from now (30m, 24h, 7d, 2w).
When more events match than --limit, a last line on stderr says how to get
the next page; with --json, "next_cursor" is the value to pass to --cursor.

--follow prints the latest events oldest first, then new ones as they are
recorded, until interrupted; every filter applies. With --json it prints
one event per line.`,
		Example: `  # The latest 50 events
  kilometers activity

  # Failed calls of the last hour, with their error messages
  kilometers activity --failed --since 1h

  # Watch a server's traffic live
  kilometers activity --follow --server filesystem

  # Risky read_file calls, as JSON for jq
  kilometers activity --tool read_file --risk medium --json | jq '.events[].risk'

  # Only this machine, even with an API configured
  kilometers activity --local

  # The next page
  kilometers activity --limit 100 --cursor MjAyNi0xMS0yMlQxMjowMDowMFp8MDE5...`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.limitSet = cmd.Flags().Changed("limit")
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Limit, "limit", "L", activity.DefaultLimit, fmt.Sprintf("maximum number of events to list (1-%d)", activity.MaxLimit))
	fl.StringVar(&opts.Cursor, "cursor", "", "continue after a previous page (its next_cursor)")
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new events as they are recorded, until interrupted")
	fl.BoolVar(&opts.Local, "local", false, "read this machine's local store even when an API is configured")
	fl.BoolVar(&opts.JSON, "json", false, `print {"events": [...], "next_cursor": "..."} as JSON (with --follow: one event a line)`)

	opts.Flags.AddFlags(cmd, opts.Config)
	return cmd
}

// Query turns the flags into an activity query, with the same rules as the
// API's parameters.
func (o *Options) Query() (activity.Query, error) {
	v := url.Values{}
	v.Set("limit", strconv.Itoa(o.Limit))
	if o.Cursor != "" {
		v.Set("cursor", o.Cursor)
	}
	q, err := o.Flags.Query(o.Now(), v)
	if err != nil {
		return q, err
	}
	if o.Follow && (q.Cursor != nil || !q.Until.IsZero()) {
		return q, cmdutil.FlagErrorf("--follow shows new events: it cannot be combined with --cursor or --until")
	}
	return q, nil
}

// Run lists the events.
func Run(ctx context.Context, opts *Options) error {
	if _, err := opts.Query(); err != nil && opts.Session == "" {
		return err // a usage mistake needs no source
	}
	src, err := opts.Source(ctx)
	if err != nil {
		return err
	}
	defer source.ReportUnreadable(src, opts.IO.ErrOut)
	if err := opts.ResolveSessionFlag(ctx, src); err != nil {
		return err
	}
	q, err := opts.Query()
	if err != nil {
		return err
	}
	if opts.Follow {
		return follow(ctx, opts, src, q)
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
	stop := output.StartPager(opts.IO)
	t := newTable(opts.IO)
	for i := range page.Events {
		addRow(t, opts.IO, &page.Events[i], opts.Now())
	}
	err = t.Render()
	stop()
	if err != nil {
		return err
	}
	if page.NextCursor != "" && opts.IO.OutIsTerminal {
		fmt.Fprintf(opts.IO.ErrOut, "\nMore events: add --cursor %s\n", page.NextCursor)
	}
	return nil
}

func newTable(ios *cmdutil.IOStreams) *output.Table {
	if !ios.OutIsTerminal {
		// Scripts get the reasons in a column of their own.
		return output.NewTable(ios, "TIME", "SERVER", "DIR", "KIND", "METHOD", "TOOL", "LATENCY", "SIZE", "RISK", "REASONS", "ERROR", "ID")
	}
	t := output.NewTable(ios, "ID", "TIME", "SERVER", "DIR", "KIND", "METHOD", "TOOL", "LATENCY", "SIZE", "RISK", "ERROR")
	t.Fixed(0, 1)             // the id whole, to copy into 'kilometers show'
	t.Optional(3, 8, 7, 2, 5) // DIR, SIZE, LATENCY, SERVER, METHOD
	return t
}

// addRow adds one event: plain values for scripts, short and coloured
// ones for people.
func addRow(t *output.Table, ios *cmdutil.IOStreams, e *event.Event, now time.Time) {
	if !ios.OutIsTerminal {
		lat, risk, reasons := "", "", ""
		if e.LatencyMS != nil {
			lat = strconv.FormatFloat(*e.LatencyMS, 'f', -1, 64)
		}
		if e.Risk != nil {
			risk, reasons = string(e.Risk.Level), strings.Join(e.Risk.Reasons, ",")
		}
		t.AddRow(output.Time(ios, e.TS, now), e.Server, string(e.Direction), string(e.Kind),
			e.Method, output.Target(e), lat, strconv.FormatInt(e.Size, 10), risk, reasons, output.ErrorText(e), e.ID)
		return
	}
	lat, risk := "", ""
	if e.LatencyMS != nil {
		lat = output.Millis(*e.LatencyMS)
	}
	var riskColor func(string) string
	if e.Risk != nil {
		risk = fmt.Sprintf("%s %d", e.Risk.Level, e.Risk.Score)
		if r := ShortReasons(e.Risk.Reasons); r != "" {
			risk += " " + r
		}
		switch e.Risk.Level {
		case event.LevelHigh:
			riskColor = output.Red
		case event.LevelMedium:
			riskColor = output.Yellow
		}
	}
	var kindColor func(string) string
	if e.Failed() || e.Kind == event.KindInvalid {
		kindColor = output.Red
	}
	t.AddColoredRow(
		[]string{output.ShortID(e.ID), output.Time(ios, e.TS, now), e.Server, output.Arrow(e.Direction), string(e.Kind), e.Method, output.Target(e),
			lat, output.Bytes(e.Size), risk, output.ErrorText(e)},
		[]func(string) string{output.Gray, output.Gray, nil, nil, kindColor, nil, nil, nil, nil, riskColor, output.Red},
	)
}

// ShortReasons names the reasons of a risk briefly: the first, and how
// many more.
func ShortReasons(reasons []string) string {
	switch len(reasons) {
	case 0:
		return ""
	case 1:
		return reasons[0]
	}
	return fmt.Sprintf("%s +%d", reasons[0], len(reasons)-1)
}

// follow prints the latest events oldest first, then polls for new ones
// until ctx ends. Each poll looks back followLag again, so events written
// late are not missed; ids already printed are skipped.
func follow(ctx context.Context, opts *Options, src source.Source, q activity.Query) error {
	every := opts.Every
	if every <= 0 {
		every = FollowLocalEvery
		if source.IsRemote(src) {
			every = FollowAPIEvery
		}
	}
	backlog := q
	if !opts.limitSet {
		backlog.Limit = followBacklog
	}
	page, err := src.Activity(ctx, backlog)
	if err != nil {
		return fmt.Errorf("read activity: %w", err)
	}
	t := newTable(opts.IO)
	t.Growing()
	seen := map[string]time.Time{}
	var newest time.Time
	emit := func(evs []event.Event) error {
		slices.Reverse(evs) // oldest first, as a tail prints
		for i := range evs {
			e := &evs[i]
			if _, dup := seen[e.ID]; dup {
				continue
			}
			seen[e.ID] = e.TS
			if e.TS.After(newest) {
				newest = e.TS
			}
			if opts.JSON {
				if err := output.JSONLine(opts.IO.Out, e); err != nil {
					return err
				}
				continue
			}
			addRow(t, opts.IO, e, opts.Now())
		}
		if opts.JSON {
			return nil
		}
		return t.Flush()
	}
	if err := emit(page.Events); err != nil {
		return err
	}
	since := opts.Now()
	if !newest.IsZero() && newest.Before(since) {
		since = newest
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		poll := q
		poll.Limit = activity.MaxLimit
		poll.Cursor = nil
		if from := since.Add(-followLag); poll.Since.IsZero() || from.After(poll.Since) {
			poll.Since = from
		}
		var fresh []event.Event
		for {
			page, err := src.Activity(ctx, poll)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read activity: %w", err)
			}
			fresh = append(fresh, page.Events...)
			if page.NextCursor == "" {
				break
			}
			if poll.Cursor, err = activity.DecodeCursor(page.NextCursor); err != nil {
				return fmt.Errorf("read activity: %w", err)
			}
		}
		if err := emit(fresh); err != nil {
			return err
		}
		if newest.After(since) {
			since = newest
		}
		for id, ts := range seen {
			if ts.Before(since.Add(-2 * followLag)) {
				delete(seen, id) // older than any poll looks back
			}
		}
	}
}
