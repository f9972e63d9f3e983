// Package show implements `kilometers show`.
package show

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	sactivity "github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// searchPages bounds how far back a short id is looked for: the newest
// searchPages × MaxLimit events.
const searchPages = 10

// Options are the command's flags and dependencies.
type Options struct {
	IO  *cmdutil.IOStreams
	Now func() time.Time
	// Source opens where the call is read from (see package source).
	Source func(ctx context.Context) (source.Source, error)
	// Local reads the local store even when an API is configured.
	Local bool

	ID   string
	JSON bool
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Now: f.Now}
	opts.Source = func(ctx context.Context) (source.Source, error) { return f.OpenSource(ctx, opts.Local) }
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one call: the request and its reply, in full",
		Long: `Show the call an event belongs to: the request and the reply paired (by
session, direction and JSON-RPC id), the latency, why it failed, the risk
score with every reason, and both payloads pretty-printed. On a terminal it
opens in a pager.

ID is an event id, of either half, from 'kilometers activity': the whole id
(as --json and piped output print it) or the end a terminal shows (at least
8 characters; it is looked for among the latest events). --json prints
{"request": {...}, "response": {...}}, the answer of the API's
GET /api/events/{id}; a half that was not recorded is null.`,
		Example: `  # The call of an event listed by 'kilometers activity'
  kilometers show 5b0c3a7e9f11

  # Both halves as JSON
  kilometers show 0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f11 --json | jq .response.error_message`,
		Args: cmdutil.ExactArgs(1, "an event ID (see 'kilometers activity')"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return source.Complete(cmd.Context(), f.Config, source.EventIDs), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Local, "local", false, "read this machine's local store even when an API is configured")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"request": {...}, "response": {...}} as JSON`)
	return cmd
}

// Run prints the call.
func Run(ctx context.Context, opts *Options) error {
	id := strings.ToLower(strings.TrimSpace(opts.ID))
	if !output.IsUUID(id) && !output.IsShortID(id) {
		return cmdutil.FlagErrorf("%q is not an event id: want a UUID, or at least its last 8 characters", opts.ID)
	}
	src, err := opts.Source(ctx)
	if err != nil {
		return err
	}
	if !output.IsUUID(id) {
		if id, err = resolve(ctx, src, id); err != nil {
			return err
		}
	}
	call, err := src.Call(ctx, id)
	if errors.Is(err, sactivity.ErrNotFound) {
		return fmt.Errorf("no event %s was recorded", id)
	}
	if err != nil {
		return fmt.Errorf("read call: %w", err)
	}
	if opts.JSON {
		return output.JSON(opts.IO, call)
	}
	stop := output.StartPager(opts.IO)
	defer stop()
	return print(opts.IO, &call, opts.Now())
}

// resolve finds the one recent event whose id ends with suffix.
func resolve(ctx context.Context, src source.Source, suffix string) (string, error) {
	q := sactivity.Query{Limit: sactivity.MaxLimit}
	var found []string
	for range searchPages {
		page, err := src.Activity(ctx, q)
		if err != nil {
			return "", fmt.Errorf("look for event %s: %w", suffix, err)
		}
		for _, e := range page.Events {
			if strings.HasSuffix(e.ID, suffix) {
				found = append(found, e.ID)
			}
		}
		if page.NextCursor == "" || len(found) > 0 {
			break
		}
		if q.Cursor, err = sactivity.DecodeCursor(page.NextCursor); err != nil {
			return "", err
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no recent event id ends with %s; pass the whole id ('kilometers activity --json' prints it)", suffix)
	case 1:
		return found[0], nil
	}
	return "", cmdutil.FlagErrorf("%d events end with %s (%s); give more of the id", len(found), suffix, strings.Join(found, ", "))
}

func print(ios *cmdutil.IOStreams, c *sactivity.Call, now time.Time) error {
	var b bytes.Buffer
	first := c.Request
	if first == nil {
		first = c.Response
	}
	heading := strings.TrimSpace(first.Method + " " + output.Target(first))
	if heading == "" {
		heading = string(first.Kind)
	}
	fmt.Fprintf(&b, "%s\n\n", output.Title(ios, heading))
	pairs := [][2]string{
		{"Server", first.Server},
		{"Session", first.SessionID},
	}
	half := func(name string, e *event.Event) {
		if e == nil {
			what := "not recorded"
			if name == "Response" && c.Request != nil && c.Request.Kind != event.KindRequest {
				what = "none (" + string(c.Request.Kind) + " messages have no reply)"
			}
			pairs = append(pairs, [2]string{name, what})
			return
		}
		pairs = append(pairs, [2]string{name, fmt.Sprintf("%s  %s  %s %s  %s", e.ID, output.Time(ios, e.TS, now),
			output.Arrow(e.Direction), e.Kind, output.Bytes(e.Size))})
	}
	half("Request", c.Request)
	half("Response", c.Response)
	if r := c.Response; r != nil && r.LatencyMS != nil {
		pairs = append(pairs, [2]string{"Latency", output.Millis(*r.LatencyMS)})
	}
	if r := c.Response; r != nil && r.Failed() {
		pairs = append(pairs, [2]string{"Error", output.Paint(ios, output.Red, output.ErrorText(r))})
	}
	for _, e := range []*event.Event{c.Request, c.Response} {
		if e == nil || e.Risk == nil {
			continue
		}
		risk := fmt.Sprintf("%s %d", e.Risk.Level, e.Risk.Score)
		if len(e.Risk.Reasons) > 0 {
			risk += ": " + strings.Join(e.Risk.Reasons, ", ")
		}
		name := "Request risk"
		if e == c.Response {
			name = "Response risk"
		}
		style := (func(string) string)(nil)
		switch e.Risk.Level {
		case event.LevelHigh:
			style = output.Red
		case event.LevelMedium:
			style = output.Yellow
		}
		pairs = append(pairs, [2]string{name, output.Paint(ios, style, risk)})
	}
	for _, e := range []*event.Event{c.Request, c.Response} {
		if e != nil && (e.CostUSD != 0 || e.Tokens != 0) {
			pairs = append(pairs, [2]string{"Cost", fmt.Sprintf("$%.6f, %s tokens", e.CostUSD, output.Count(e.Tokens))})
			break
		}
	}
	if err := output.KeyValues(&b, pairs); err != nil {
		return err
	}
	for _, e := range []*event.Event{c.Request, c.Response} {
		if e == nil {
			continue
		}
		name := "Request"
		if e == c.Response {
			name = "Response"
		}
		fmt.Fprintf(&b, "\n%s\n", output.Title(ios, name+" payload"))
		writePayload(&b, e)
	}
	_, err := io.Copy(ios.Out, &b)
	return err
}

// writePayload pretty-prints a payload; a line that was not JSON-RPC is
// stored as a JSON string and shown as its text.
func writePayload(b *bytes.Buffer, e *event.Event) {
	switch {
	case len(e.Payload) == 0:
		b.WriteString("(no payload: recorded with capture_mode metadata)\n")
	case e.Payload[0] == '"':
		var s string
		if json.Unmarshal(e.Payload, &s) == nil {
			b.WriteString(s)
			b.WriteByte('\n')
		} else {
			b.Write(e.Payload)
			b.WriteByte('\n')
		}
	default:
		if err := json.Indent(b, e.Payload, "", "  "); err != nil {
			b.Write(e.Payload)
		}
		b.WriteByte('\n')
	}
	if e.PayloadTruncated {
		fmt.Fprintf(b, "(truncated by the monitor: the message was %s)\n", output.Bytes(e.Size))
	}
}
