package source

import (
	"context"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Field names a recorded value shell completion can offer.
type Field int

const (
	Servers Field = iota
	Tools
	Methods
	SessionIDs
)

// completionEvents bounds how many recent events completion reads: enough
// to know the tools in use, quick enough for a key press.
const completionEvents = activity.MaxLimit

// Complete lists recorded values of a field from the local store (never
// the network: completion must be instant), most recent first; nothing when
// the store cannot be read.
func Complete(ctx context.Context, cfg func() (*config.Config, error), f Field) []string {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := cfg()
	if err != nil {
		return nil
	}
	st, err := store.OpenConfig(ctx, c)
	if err != nil {
		return nil
	}
	var vals []string
	switch f {
	case Servers, SessionIDs:
		sessions, err := st.SessionRecords(ctx)
		if err != nil {
			return nil
		}
		for _, s := range sessions {
			if f == Servers {
				vals = append(vals, s.Server)
			} else {
				vals = append(vals, s.ID+"\t"+describe(&s))
			}
		}
	case Tools, Methods:
		page, err := st.Activity(ctx, activity.Query{Kind: event.KindRequest, Limit: completionEvents})
		if err != nil {
			return nil
		}
		for _, e := range page.Events {
			if f == Tools {
				vals = append(vals, e.Tool)
			} else {
				vals = append(vals, e.Method)
			}
		}
	}
	return unique(vals)
}

func describe(s *event.Session) string {
	return s.Server + " " + s.StartedAt.Local().Format("2006-01-02 15:04")
}

// unique drops empty and repeated values, keeping the first of each.
func unique(vals []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, v := range vals {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
