// Package sessions implements `kilometers sessions`.
package sessions

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/shared/activity"
)

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Now    func() time.Time
	// Source opens where sessions are read from (see package source).
	Source func(ctx context.Context) (source.Source, error)
	// Local reads the local store even when an API is configured.
	Local bool

	Limit  int
	Server string
	Since  string
	Until  string
	Cursor string
	JSON   bool
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now}
	opts.Source = func(ctx context.Context) (source.Source, error) { return f.OpenSource(ctx, opts.Local) }
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List monitored sessions, newest first",
		Long: `List the runs of 'kilometers monitor', newest first: the session id, the
server, the MCP client and protocol version it spoke, the command, the host,
when it started and how long it ran, its tool calls and failed replies, the
server's exit code, and any warning the monitor recorded (a setting it had
to replace, say).

--since and --until bound the start time: RFC 3339, a date (2026-12-01), or
a span back from now (30m, 24h, 7d, 2w). With an API configured the
sessions of every machine of the team are listed; --local lists this
machine's. --json prints {"sessions": [...], "next_cursor": "..."}, the
answer of the API's GET /api/sessions.`,
		Example: `  # The latest sessions
  kilometers sessions

  # Sessions of one server this week, as JSON
  kilometers sessions --server filesystem --since 7d --json

  # Then the events of one of them (the id, or the end of it shown here)
  kilometers activity --session 2f4b6a8e0c31`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Limit, "limit", "L", activity.DefaultLimit, fmt.Sprintf("maximum number of sessions to list (1-%d)", activity.MaxLimit))
	fl.StringVar(&opts.Server, "server", "", "only sessions of this `server`")
	fl.StringVar(&opts.Since, "since", "", "only sessions started at or after this `time` (RFC 3339, 2026-12-01, or 30m, 24h, 7d, 2w ago)")
	fl.StringVar(&opts.Until, "until", "", "only sessions started before this `time`")
	fl.StringVar(&opts.Cursor, "cursor", "", "continue after a previous page (its next_cursor)")
	fl.BoolVar(&opts.Local, "local", false, "read this machine's local store even when an API is configured")
	fl.BoolVar(&opts.JSON, "json", false, `print {"sessions": [...], "next_cursor": "..."} as JSON`)
	cmdutil.CompleteRecorded(cmd, opts.Config, map[string]source.Field{"server": source.Servers})
	return cmd
}

// Query turns the flags into a sessions query, with the API's rules.
func (o *Options) Query() (activity.SessionQuery, error) {
	v := url.Values{}
	for k, s := range map[string]string{"server": o.Server, "since": o.Since, "until": o.Until, "cursor": o.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v.Set("limit", strconv.Itoa(o.Limit))
	q, err := activity.ParseSessionQuery(v, o.Now())
	if err != nil {
		return q, cmdutil.FlagErrorf("invalid --%w", err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, cmdutil.FlagErrorf("--since must be before --until")
	}
	return q, nil
}

// Run lists the sessions.
func Run(ctx context.Context, opts *Options) error {
	q, err := opts.Query()
	if err != nil {
		return err
	}
	src, err := opts.Source(ctx)
	if err != nil {
		return err
	}
	page, err := src.Sessions(ctx, q)
	if err != nil {
		return fmt.Errorf("read sessions: %w", err)
	}
	if opts.JSON {
		return output.JSON(opts.IO, page)
	}
	if len(page.Sessions) == 0 {
		if q.Server != "" {
			fmt.Fprintf(opts.IO.ErrOut, "No sessions of server %q match.\n", q.Server)
		} else {
			fmt.Fprintln(opts.IO.ErrOut, "No sessions match.")
		}
		return nil
	}
	stop := output.StartPager(opts.IO)
	err = printTable(opts.IO, page.Sessions, opts.Now())
	stop()
	if err != nil {
		return err
	}
	if page.NextCursor != "" && opts.IO.OutIsTerminal {
		fmt.Fprintf(opts.IO.ErrOut, "\nMore sessions: add --cursor %s\n", page.NextCursor)
	}
	return nil
}

func printTable(ios *cmdutil.IOStreams, rows []activity.SessionRow, now time.Time) error {
	tty := ios.OutIsTerminal
	t := output.NewTable(ios, "ID", "SERVER", "CLIENT", "PROTOCOL", "COMMAND", "HOST", "STARTED", "DURATION", "CALLS", "FAILED", "EXIT", "WARNINGS")
	t.Fixed(0, 6, 7, 8, 9)
	t.Optional(5, 3, 4, 2, 10) // HOST, PROTOCOL, COMMAND, CLIENT, EXIT
	for _, r := range rows {
		client := strings.TrimSpace(r.ClientName + " " + r.ClientVersion)
		started, duration := output.Time(ios, r.StartedAt, now), ""
		if tty {
			started = output.Ago(r.StartedAt, now)
		}
		switch {
		case r.EndedAt != nil && tty:
			duration = output.Duration(r.EndedAt.Sub(r.StartedAt))
		case r.EndedAt != nil:
			duration = strconv.FormatFloat(r.EndedAt.Sub(r.StartedAt).Seconds(), 'f', 3, 64)
		case tty:
			duration = "running"
		}
		exit := ""
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		warnings := strings.Join(r.Warnings, "; ")
		if tty && len(r.Warnings) > 1 {
			warnings = fmt.Sprintf("%s (+%d more)", r.Warnings[0], len(r.Warnings)-1)
		}
		var failedColor, exitColor func(string) string
		if r.Failed > 0 {
			failedColor = output.Red
		}
		if r.ExitCode != nil && *r.ExitCode != 0 {
			exitColor = output.Red
		}
		t.AddColoredRow(
			[]string{id(ios, r.ID), r.Server, client, r.ProtocolVersion, strings.Join(r.Command, " "), r.Host, started, duration,
				strconv.FormatInt(r.Calls, 10), strconv.FormatInt(r.Failed, 10), exit, warnings},
			[]func(string) string{output.Gray, nil, nil, nil, nil, nil, nil, nil, nil, failedColor, exitColor, output.Yellow},
		)
	}
	return t.Render()
}

// id is whole for scripts, its end on a terminal ('kilometers activity
// --session' takes either).
func id(ios *cmdutil.IOStreams, s string) string {
	if ios.OutIsTerminal {
		return output.ShortID(s)
	}
	return s
}
