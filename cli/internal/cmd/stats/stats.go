// Package stats implements `kilometers stats`.
package stats

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
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// localStats is --json from the local store when some of it could not be
// read: the stats, and what they could not count.
type localStats struct {
	stats.Stats
	Unreadable *store.Unreadable `json:"unreadable,omitempty"`
}

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Now    func() time.Time
	// Source opens where stats are computed from (see package source).
	Source func(ctx context.Context) (source.Source, error)
	// Local reads the local store even when an API is configured.
	Local bool

	Since  string
	Until  string
	Server string
	JSON   bool
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now}
	opts.Source = func(ctx context.Context) (source.Source, error) { return f.OpenSource(ctx, opts.Local) }
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Summarise recorded events: totals, latency, tools, risk",
		Long: `Summarise the events of a window (the last 24 hours by default): totals,
latency percentiles, each tool's calls, errors and p50/p95/p99, methods,
risk levels and the riskiest tools.

Times are RFC 3339 or a duration back from now (30m, 24h, 7d); the window
is widened to whole minutes. --json prints the same answer as the API's
GET /api/stats. With an API configured ('kilometers init') the stats cover
every machine of the team; --local summarises this machine's store.`,
		Example: `  # The last 24 hours
  kilometers stats

  # One server over the last week
  kilometers stats --since 7d --server github

  # Only this machine, even with an API configured
  kilometers stats --local

  # Tools by error count, with jq
  kilometers stats --json | jq '.tools | sort_by(-.errors)[:5]'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Since, "since", "24h", "start of the window (`time`: RFC 3339, or 30m, 24h, 7d ago)")
	fl.StringVar(&opts.Until, "until", "", "end of the window (`time`; default now)")
	fl.StringVar(&opts.Server, "server", "", "only events of this `server`")
	fl.BoolVar(&opts.Local, "local", false, "read this machine's local store even when an API is configured")
	fl.BoolVar(&opts.JSON, "json", false, "print the stats as JSON")
	_ = cmd.RegisterFlagCompletionFunc("server", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return source.Complete(cmd.Context(), opts.Config, source.Servers), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Query turns the flags into an aligned stats query, with the same rules as
// the API's parameters.
func (o *Options) Query() (stats.Query, error) {
	v := url.Values{}
	for k, s := range map[string]string{"since": o.Since, "until": o.Until, "server": o.Server} {
		if s != "" {
			v.Set(k, s)
		}
	}
	q, err := stats.ParseQuery(v, o.Now())
	if err != nil {
		for _, flag := range []string{"since", "until", "server"} {
			if strings.HasPrefix(err.Error(), flag+":") {
				return q, cmdutil.FlagErrorf("invalid --%w", err)
			}
		}
		return q, cmdutil.FlagErrorf("--since to --until: %w", err)
	}
	return q, nil
}

// Run prints the stats.
func Run(ctx context.Context, opts *Options) error {
	q, err := opts.Query()
	if err != nil {
		return err
	}
	src, err := opts.Source(ctx)
	if err != nil {
		return err
	}
	st, err := src.Stats(ctx, q)
	if err != nil {
		return fmt.Errorf("compute stats: %w", err)
	}
	defer source.ReportUnreadable(src, opts.IO.ErrOut)
	if u := source.Unreadable(src); opts.JSON && u != nil {
		return output.JSON(opts.IO, localStats{Stats: st, Unreadable: u})
	}
	if opts.JSON {
		return output.JSON(opts.IO, st)
	}
	return printStats(opts.IO, &st, sessionWarnings(ctx, src, st))
}

// maxWarningsShown bounds the distinct session warnings stats prints; the
// rest are in `kilometers sessions`.
const maxWarningsShown = 3

// warningCount is one warning the monitor recorded, and in how many of
// the window's sessions.
type warningCount struct {
	text     string
	sessions int
}

// sessionWarnings gathers the warnings of the sessions that started in
// st's window (a setting replaced by its default, say): recording went
// on, but the user should know. A source that cannot list sessions adds
// nothing: the numbers above stand on their own.
func sessionWarnings(ctx context.Context, src source.Source, st stats.Stats) []warningCount {
	page, err := src.Sessions(ctx, activity.SessionQuery{Server: st.Server, Since: st.Since, Until: st.Until, Limit: activity.MaxLimit})
	if err != nil {
		return nil
	}
	var out []warningCount
	seen := map[string]int{}
	for _, s := range page.Sessions {
		for _, w := range s.Warnings {
			if i, ok := seen[w]; ok {
				out[i].sessions++
				continue
			}
			seen[w] = len(out)
			out = append(out, warningCount{text: w, sessions: 1})
		}
	}
	return out
}

func printStats(ios *cmdutil.IOStreams, st *stats.Stats, warnings []warningCount) error {
	w := ios.Out
	title := func(s string) string { return output.Title(ios, s) }
	// A zero "now" shows the whole date on both ends.
	window := fmt.Sprintf("%s to %s", output.Time(ios, st.Since, time.Time{}), output.Time(ios, st.Until, time.Time{}))
	if st.Server != "" {
		window += ", server " + st.Server
	}
	fmt.Fprintf(w, "%s (%s)\n\n", title("Stats"), window)
	t := st.Totals
	pairs := [][2]string{
		{"Events", output.Count(t.Events)},
		{"Requests", output.Count(t.Requests)},
		{"Errors", fmt.Sprintf("%s (%.1f%% of requests)", output.Count(t.Errors), t.ErrorRate*100)},
		{"Bytes", output.Bytes(t.Bytes)},
		{"Cost", "$" + strconv.FormatFloat(t.CostUSD, 'f', -1, 64)},
		{"Tokens", output.Count(t.Tokens)},
		{"Sessions", output.Count(t.Sessions)},
	}
	if t.DroppedEvents > 0 {
		pairs = append(pairs, [2]string{"Dropped", output.Count(t.DroppedEvents) + " events the monitor could not record"})
	}
	if st.Latency.Count > 0 {
		pairs = append(pairs, [2]string{"Latency", fmt.Sprintf("p50 %s  p95 %s  p99 %s  (%s replies)",
			output.Millis(st.Latency.P50), output.Millis(st.Latency.P95), output.Millis(st.Latency.P99), output.Count(st.Latency.Count))})
	}
	pairs = append(pairs, [2]string{"Risk", fmt.Sprintf("%s low, %s medium, %s high",
		output.Count(st.RiskLevels.Low), output.Count(st.RiskLevels.Medium), output.Count(st.RiskLevels.High))})
	for i, w := range warnings {
		if i == maxWarningsShown {
			pairs = append(pairs, [2]string{"", fmt.Sprintf("and %d more: kilometers sessions", len(warnings)-i)})
			break
		}
		key := ""
		if i == 0 {
			key = "Warnings"
		}
		pairs = append(pairs, [2]string{key, fmt.Sprintf("%s (%d sessions)", w.text, w.sessions)})
	}
	if err := output.KeyValues(w, pairs); err != nil {
		return err
	}
	if t.Events == 0 {
		if st.Server != "" {
			// A filter that matches nothing is no sign of a broken setup.
			fmt.Fprintf(ios.ErrOut, "\nNo events of server %q in this window ('kilometers sessions' lists the servers seen).\n", st.Server)
		} else {
			fmt.Fprintln(ios.ErrOut, "\nNo events in this window. Is `kilometers monitor --` in front of your MCP servers?")
		}
		return nil
	}

	if len(st.Tools) > 0 {
		fmt.Fprintf(w, "\n%s\n", title("Tools"))
		tb := output.NewTable(ios, "TOOL", "CALLS", "ERRORS", "P50", "P95", "P99", "COST")
		for _, tl := range st.Tools {
			var errColor func(string) string
			if tl.Errors > 0 {
				errColor = output.Red
			}
			tb.AddColoredRow([]string{tl.Tool, num(ios, tl.Calls), num(ios, tl.Errors),
				ms(ios, tl.P50), ms(ios, tl.P95), ms(ios, tl.P99), cost(ios, tl.CostUSD)},
				[]func(string) string{nil, nil, errColor})
		}
		if err := tb.Render(); err != nil {
			return err
		}
	}
	if len(st.Methods) > 0 {
		fmt.Fprintf(w, "\n%s\n", title("Methods"))
		tb := output.NewTable(ios, "METHOD", "COUNT", "ERRORS", "P50", "P95", "P99")
		for _, m := range st.Methods {
			tb.AddRow(m.Method, num(ios, m.Count), num(ios, m.Errors), ms(ios, m.P50), ms(ios, m.P95), ms(ios, m.P99))
		}
		if err := tb.Render(); err != nil {
			return err
		}
	}
	if len(st.RiskiestTools) > 0 {
		fmt.Fprintf(w, "\n%s\n", title("Riskiest tools"))
		tb := output.NewTable(ios, "TOOL", "MAX SCORE", "HIGH", "MEDIUM", "ALERT")
		for _, r := range st.RiskiestTools {
			var c func(string) string
			if r.High > 0 {
				c = output.Red
			} else if r.Medium > 0 {
				c = output.Yellow
			}
			alert := strings.Join(r.Reasons, ",")
			if ios.OutIsTerminal {
				alert = strings.ReplaceAll(strings.Join(r.Reasons, ", "), "_", " ")
			}
			tb.AddColoredRow([]string{r.Tool, strconv.Itoa(r.MaxScore), num(ios, r.High), num(ios, r.Medium), alert},
				[]func(string) string{nil, c, nil, nil, output.Red})
		}
		if err := tb.Render(); err != nil {
			return err
		}
	}
	return nil
}

// cost shows dollars to a terminal, a plain number to scripts.
func cost(ios *cmdutil.IOStreams, usd float64) string {
	if ios.OutIsTerminal {
		return fmt.Sprintf("$%.6f", usd)
	}
	return strconv.FormatFloat(usd, 'f', -1, 64)
}

// num and ms format for people on a terminal, plainly for scripts.
func num(ios *cmdutil.IOStreams, n int64) string {
	if ios.OutIsTerminal {
		return output.Count(n)
	}
	return strconv.FormatInt(n, 10)
}

func ms(ios *cmdutil.IOStreams, v float64) string {
	if ios.OutIsTerminal {
		if v == 0 {
			return "-"
		}
		return output.Millis(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
