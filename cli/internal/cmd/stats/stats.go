// Package stats implements `kilometers stats`.
package stats

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/cmd/activity"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Source answers stats queries: the local store, or the API.
type Source interface {
	Stats(ctx context.Context, q stats.Query) (stats.Stats, error)
}

// damageReporter is a Source that says what it could not read: the local
// store.
type damageReporter interface {
	Unreadable() store.Unreadable
	ReportUnreadable(w io.Writer)
}

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
	// Source opens where stats are computed from; by default the local
	// store.
	Source func(ctx context.Context) (Source, error)
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
	opts.Source = func(ctx context.Context) (Source, error) {
		c, err := opts.Config()
		if err != nil {
			return nil, err
		}
		// A bad setting stops the command only if it uses it.
		if err := c.Check(config.ReadKeys(opts.Local)...); err != nil {
			return nil, err
		}
		c.Warn(opts.IO.ErrOut, "kilometers", config.ReadKeys(opts.Local)...)
		if client := apiclient.FromConfig(c, "kilometers/"+f.Build.Version); client != nil && !opts.Local {
			return client, nil
		}
		return store.OpenConfig(ctx, c)
	}
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
		Args: cobra.NoArgs,
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
		return activity.CompleteServers(cmd.Context(), opts.Config), cobra.ShellCompDirectiveNoFileComp
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
		return q, cmdutil.FlagErrorf("invalid --%w", err)
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
	if dr, ok := src.(damageReporter); ok {
		defer dr.ReportUnreadable(opts.IO.ErrOut)
		if u := dr.Unreadable(); opts.JSON && !u.IsZero() {
			return output.JSON(opts.IO, localStats{Stats: st, Unreadable: &u})
		}
	}
	if opts.JSON {
		return output.JSON(opts.IO, st)
	}
	return printStats(opts.IO, &st)
}

func printStats(ios *cmdutil.IOStreams, st *stats.Stats) error {
	w := ios.Out
	title := func(s string) string {
		if ios.OutIsTerminal {
			return output.Bold(s)
		}
		return s
	}
	window := fmt.Sprintf("%s to %s", st.Since.Local().Format("2006-01-02 15:04"), st.Until.Local().Format("2006-01-02 15:04"))
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
		{"Cost", fmt.Sprintf("$%.6f", t.CostUSD)},
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
	if err := output.KeyValues(w, pairs); err != nil {
		return err
	}
	if t.Events == 0 {
		fmt.Fprintln(ios.ErrOut, "\nNo events in this window. Is `kilometers monitor --` in front of your MCP servers?")
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
				ms(ios, tl.P50), ms(ios, tl.P95), ms(ios, tl.P99), fmt.Sprintf("%.6f", tl.CostUSD)},
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
		tb := output.NewTable(ios, "TOOL", "MAX SCORE", "HIGH", "MEDIUM")
		for _, r := range st.RiskiestTools {
			var c func(string) string
			if r.High > 0 {
				c = output.Red
			} else if r.Medium > 0 {
				c = output.Yellow
			}
			tb.AddColoredRow([]string{r.Tool, strconv.Itoa(r.MaxScore), num(ios, r.High), num(ios, r.Medium)},
				[]func(string) string{nil, c})
		}
		if err := tb.Render(); err != nil {
			return err
		}
	}
	return nil
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
