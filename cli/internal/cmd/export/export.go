// Package export implements `kilometers export`.
package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/filters"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	sactivity "github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Formats.
const (
	NDJSON = "ndjson"
	CSV    = "csv"
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

	filters.Flags
	Format string
	Output string
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now}
	opts.Source = func(ctx context.Context) (source.Source, error) { return f.OpenSource(ctx, opts.Local) }
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every matching event, as NDJSON or CSV",
		Long: `Write every event that matches the filters (the same as 'kilometers
activity' takes), newest first, as they are read: not one page, all of them.

--format ndjson (the default) writes one event a line in exactly the shape
of --json output and of the API. --format csv writes a header and one row an
event, the payload as a JSON text in the last column. -o writes to a file
instead of standard output; the file appears whole or not at all. On a
terminal, progress is shown on stderr.`,
		Example: `  # Everything of the last week, for jq or a notebook
  kilometers export --since 7d > events.ndjson

  # The failed calls of one server, as a spreadsheet
  kilometers export --server filesystem --failed --format csv -o failed.csv

  # This machine's events only, even with an API configured
  kilometers export --local --since 2026-12-01 --until 2026-12-02`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	opts.Flags.AddFlags(cmd, opts.Config)
	fl := cmd.Flags()
	fl.StringVar(&opts.Format, "format", NDJSON, "`format` of the output: ndjson or csv")
	fl.StringVarP(&opts.Output, "output", "o", "", "write to this `file` instead of standard output")
	fl.BoolVar(&opts.Local, "local", false, "read this machine's local store even when an API is configured")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{NDJSON, CSV}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Run writes the events.
func Run(ctx context.Context, opts *Options) error {
	if opts.Format != NDJSON && opts.Format != CSV {
		return cmdutil.FlagErrorf("invalid --format %q: want ndjson or csv", opts.Format)
	}
	if _, err := opts.Flags.Query(opts.Now(), url.Values{}); err != nil && opts.Session == "" {
		return err
	}
	src, err := opts.Source(ctx)
	if err != nil {
		return err
	}
	if err := opts.ResolveSessionFlag(ctx, src); err != nil {
		return err
	}
	q, err := opts.Flags.Query(opts.Now(), url.Values{"limit": {strconv.Itoa(sactivity.MaxLimit)}})
	if err != nil {
		return err
	}
	if opts.Output == "" || opts.Output == "-" {
		n, err := write(ctx, opts, src, q, opts.IO.Out)
		opts.progressDone(n, err)
		return err
	}
	// A temporary file beside the target, renamed when complete: a failed
	// export leaves no half file.
	dir, base := filepath.Split(opts.Output)
	if dir == "" {
		dir = "." // not os.TempDir: the rename must stay on one file system
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing left to remove
	n, err := write(ctx, opts, src, q, tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("export: %w", cerr)
	}
	if err == nil {
		if err = os.Rename(tmp.Name(), opts.Output); err != nil {
			err = fmt.Errorf("export: %w", err)
		}
	}
	opts.progressDone(n, err)
	return err
}

// write streams the pages of events to w and returns how many it wrote.
func write(ctx context.Context, opts *Options, src source.Source, q sactivity.Query, w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	if opts.Format == CSV {
		cw = csv.NewWriter(bw)
		if err := cw.Write(csvHeader); err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
	}
	var n int64
	for {
		page, err := src.Activity(ctx, q)
		if err != nil {
			return n, fmt.Errorf("read events: %w", err)
		}
		for i := range page.Events {
			e := &page.Events[i]
			if cw != nil {
				err = cw.Write(csvRow(e))
			} else {
				err = output.JSONLine(bw, e)
			}
			if err != nil {
				return n, fmt.Errorf("export: %w", err)
			}
			n++
		}
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return n, fmt.Errorf("export: %w", err)
			}
		}
		if err := bw.Flush(); err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		opts.progress(n)
		if page.NextCursor == "" {
			return n, nil
		}
		if q.Cursor, err = sactivity.DecodeCursor(page.NextCursor); err != nil {
			return n, fmt.Errorf("read events: %w", err)
		}
	}
}

func (o *Options) progress(n int64) {
	if o.IO.ErrIsTerminal {
		fmt.Fprintf(o.IO.ErrOut, "\rExported %s events", output.Count(n))
	}
}

func (o *Options) progressDone(n int64, err error) {
	if !o.IO.ErrIsTerminal {
		return
	}
	where := ""
	if o.Output != "" && o.Output != "-" && err == nil {
		where = " to " + o.Output
	}
	fmt.Fprintf(o.IO.ErrOut, "\rExported %s events%s\n", output.Count(n), where)
}

var csvHeader = []string{"id", "session_id", "seq", "ts", "direction", "kind", "server", "rpc_id", "method", "tool",
	"prompt", "resource_uri", "latency_ms", "error_code", "is_error", "error_message", "size", "risk_score", "risk_level",
	"risk_reasons", "cost_usd", "tokens", "payload_truncated", "payload"}

func csvRow(e *event.Event) []string {
	opt := func(ok bool, s func() string) string {
		if !ok {
			return ""
		}
		return s()
	}
	score, level, reasons := "", "", ""
	if e.Risk != nil {
		score, level, reasons = strconv.Itoa(e.Risk.Score), string(e.Risk.Level), strings.Join(e.Risk.Reasons, ",")
	}
	return []string{
		e.ID, e.SessionID, strconv.FormatInt(e.Seq, 10), e.TS.UTC().Format(time.RFC3339Nano), string(e.Direction), string(e.Kind),
		e.Server, e.RPCID, e.Method, e.Tool, e.Prompt, e.ResourceURI,
		opt(e.LatencyMS != nil, func() string { return strconv.FormatFloat(*e.LatencyMS, 'f', -1, 64) }),
		opt(e.ErrorCode != nil, func() string { return strconv.Itoa(*e.ErrorCode) }),
		opt(e.IsError != nil, func() string { return strconv.FormatBool(*e.IsError) }),
		e.ErrorMessage, strconv.FormatInt(e.Size, 10), score, level, reasons,
		opt(e.CostUSD != 0, func() string { return strconv.FormatFloat(e.CostUSD, 'f', -1, 64) }),
		opt(e.Tokens != 0, func() string { return strconv.FormatInt(e.Tokens, 10) }),
		strconv.FormatBool(e.PayloadTruncated), string(e.Payload),
	}
}
