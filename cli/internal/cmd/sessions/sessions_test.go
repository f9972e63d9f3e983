package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/cli/internal/golden"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fixture records two sessions in a real store: a finished one with a
// failed call and a warning, and one still running.
func fixture(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ended, exit, yes := now.Add(-50*time.Minute), 1, true
	sessions := []struct {
		s   event.Session
		evs []event.Event
	}{
		{event.Session{ID: "0196f1c2-6e00-7a55-8c1d-000000000001", Server: "filesystem", ServerName: "secure-filesystem-server",
			ClientName: "claude-code", ClientVersion: "2.1.0", ProtocolVersion: "2025-11-25", Host: "laptop",
			Command:   []string{"npx", "-y", "@modelcontextprotocol/server-filesystem", "/home/me/projects/a-rather-long-project-directory-name"},
			StartedAt: now.Add(-time.Hour), EndedAt: &ended, ExitCode: &exit,
			Warnings: []string{`capture_mode "fulll" is not valid; recorded with "redacted"`, "another warning"}},
			[]event.Event{
				{ID: "0196f1c2-7a3b-7c11-9d2e-000000000001", Seq: 1, TS: now.Add(-time.Hour), Direction: event.ClientToServer, Kind: event.KindRequest,
					RPCID: "1", Method: "tools/call", Tool: "read_file", Size: 10},
				{ID: "0196f1c2-7a3b-7c11-9d2e-000000000002", Seq: 2, TS: now.Add(-time.Hour), Direction: event.ServerToClient, Kind: event.KindResponse,
					RPCID: "1", Method: "tools/call", Tool: "read_file", IsError: &yes, Size: 10},
			}},
		{event.Session{ID: "0196f1c2-6e00-7a55-8c1d-000000000002", Server: "everything", ClientName: "inspector", ClientVersion: "0.9",
			Command: []string{"npx", "-y", "@modelcontextprotocol/server-everything"}, StartedAt: now.Add(-5 * time.Minute)}, nil},
	}
	for _, s := range sessions {
		w, err := st.NewWriter(ctx, s.s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.RecordSession(ctx, s.s); err != nil {
			t.Fatal(err)
		}
		for i := range s.evs {
			s.evs[i].SessionID, s.evs[i].Server = s.s.ID, s.s.Server
		}
		if err := w.Record(ctx, s.evs); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestTable(t *testing.T) {
	st := fixture(t)
	for _, term := range golden.Terminals {
		t.Run(term.Name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			opts := &Options{IO: term.Streams(&out, &errOut), Now: func() time.Time { return now }, Limit: 50,
				Source: func(context.Context) (source.Source, error) { return st, nil }}
			if err := Run(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "sessions-"+term.Name, out.Bytes())
			for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if n := utf8.RuneCountInString(line); term.TTY && n > term.Width {
					t.Errorf("line of %d columns on a terminal of %d: %q", n, term.Width, line)
				}
			}
		})
	}
}

func TestJSONAndFilters(t *testing.T) {
	st := fixture(t)
	run := func(o Options) (string, string) {
		var out, errOut bytes.Buffer
		o.IO = golden.Terminals[2].Streams(&out, &errOut)
		o.Now = func() time.Time { return now }
		o.Source = func(context.Context) (source.Source, error) { return st, nil }
		if o.Limit == 0 {
			o.Limit = 50
		}
		if err := Run(context.Background(), &o); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	out, _ := run(Options{JSON: true, Limit: 1})
	var page activity.SessionPage
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Sessions) != 1 || page.Sessions[0].Server != "everything" || page.NextCursor == "" {
		t.Fatalf("first page %+v", page)
	}
	out, _ = run(Options{JSON: true, Cursor: page.NextCursor})
	page = activity.SessionPage{}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Sessions) != 1 || page.Sessions[0].Calls != 1 || page.Sessions[0].Failed != 1 || len(page.Sessions[0].Warnings) != 2 {
		t.Fatalf("second page %+v", page)
	}
	if out, _ := run(Options{Since: "30m"}); strings.Contains(out, "filesystem") || !strings.Contains(out, "everything") {
		t.Errorf("--since 30m:\n%s", out)
	}
	if _, errOut := run(Options{Server: "memory"}); !strings.Contains(errOut, `No sessions of server "memory" match.`) {
		t.Errorf("no match says %q", errOut)
	}
}

func TestQueryErrors(t *testing.T) {
	for _, o := range []Options{{Since: "soon"}, {Limit: 0}, {Cursor: "!!"}, {Since: "1h", Until: "2h"}} {
		o.Now = func() time.Time { return now }
		if _, err := o.Query(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
