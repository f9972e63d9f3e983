// Package filters holds the flags that select recorded events, which
// `kilometers activity` and `kilometers export` share, and the rule that
// turns them into the query both the API and the local store answer
// (package shared/activity).
package filters

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/shared/activity"
)

// Flags are the flags that select events.
type Flags struct {
	Session string
	Server  string
	Method  string
	Tool    string
	Kind    string
	Risk    string
	Failed  bool
	Since   string
	Until   string
}

// AddFlags defines the filter flags on cmd, with completion of recorded
// values.
func (f *Flags) AddFlags(cmd *cobra.Command, cfg func() (*config.Config, error)) {
	fl := cmd.Flags()
	fl.StringVar(&f.Session, "session", "", "only events of this session `id` (or the end of it)")
	fl.StringVar(&f.Server, "server", "", "only events of this `server`")
	fl.StringVar(&f.Method, "method", "", "only events with this JSON-RPC `method` (tools/call, resources/read...)")
	fl.StringVar(&f.Tool, "tool", "", "only events of this `tool`")
	fl.StringVar(&f.Kind, "kind", "", "only events of this `kind`: request, response, notification, error or invalid")
	fl.StringVar(&f.Risk, "risk", "", "only events at this risk `level` or above: low, medium or high")
	fl.BoolVar(&f.Failed, "failed", false, "only failed replies: JSON-RPC errors and tool results with isError")
	fl.StringVar(&f.Since, "since", "", "only events at or after this `time` (RFC 3339, 2026-12-01, or 30m, 24h, 7d, 2w ago)")
	fl.StringVar(&f.Until, "until", "", "only events before this `time`")
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(
		[]string{"request", "response", "notification", "error", "invalid"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("risk", cobra.FixedCompletions(
		[]string{"low", "medium", "high"}, cobra.ShellCompDirectiveNoFileComp))
	cmdutil.CompleteRecorded(cmd, cfg, map[string]source.Field{
		"server": source.Servers, "tool": source.Tools, "method": source.Methods, "session": source.SessionIDs,
	})
}

// Query turns the filters into an activity query with the API's rules; v
// holds the caller's own parameters (limit, cursor).
func (f *Flags) Query(now time.Time, v url.Values) (activity.Query, error) {
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Session != "" && !output.IsUUID(f.Session) {
		return activity.Query{}, cmdutil.FlagErrorf("invalid --session: want a session id (see 'kilometers sessions')")
	}
	set("session", f.Session)
	set("server", f.Server)
	set("method", f.Method)
	set("tool", f.Tool)
	set("kind", f.Kind)
	set("risk", f.Risk)
	set("since", f.Since)
	set("until", f.Until)
	if f.Failed {
		v.Set("failed", "true")
	}
	q, err := activity.ParseQuery(v, now)
	if err != nil {
		return q, cmdutil.FlagErrorf("invalid --%w", err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, cmdutil.FlagErrorf("--since must be before --until")
	}
	return q, nil
}

// ResolveSessionFlag replaces the end of a session id given to --session
// with the whole id, looked up in src.
func (f *Flags) ResolveSessionFlag(ctx context.Context, src source.Source) error {
	if f.Session == "" || output.IsUUID(f.Session) || !output.IsShortID(f.Session) {
		return nil
	}
	id, err := ResolveSession(ctx, src, f.Session)
	if err != nil {
		return err
	}
	f.Session = id
	return nil
}

// resolvePages bounds how far back the end of an id is looked for.
const resolvePages = 10

// ResolveSession finds the one session whose id ends with suffix.
func ResolveSession(ctx context.Context, src source.Source, suffix string) (string, error) {
	suffix = strings.ToLower(suffix)
	q := activity.SessionQuery{Limit: activity.MaxLimit}
	var found []string
	for range resolvePages {
		page, err := src.Sessions(ctx, q)
		if err != nil {
			return "", fmt.Errorf("look for session %s: %w", suffix, err)
		}
		for _, s := range page.Sessions {
			if strings.HasSuffix(s.ID, suffix) {
				found = append(found, s.ID)
			}
		}
		if page.NextCursor == "" {
			break
		}
		if q.Cursor, err = activity.DecodeCursor(page.NextCursor); err != nil {
			return "", err
		}
	}
	switch len(found) {
	case 0:
		return "", cmdutil.FlagErrorf("invalid --session: no session id ends with %s (see 'kilometers sessions')", suffix)
	case 1:
		return found[0], nil
	}
	return "", cmdutil.FlagErrorf("invalid --session: %d sessions end with %s; give more of the id", len(found), suffix)
}
