package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/golden"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

var now = time.Date(2026, 11, 22, 12, 0, 30, 0, time.UTC)

const sid = "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"

func testFactory(home string) (*cmdutil.Factory, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	f := &cmdutil.Factory{
		IO:   &cmdutil.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Now:  func() time.Time { return now },
		Home: func() (string, error) { return home, nil },
	}
	f.Config = func() (*config.Config, error) { return config.Defaults(home), nil }
	return f, out, errOut
}

func TestFlags(t *testing.T) {
	minute := now.Truncate(time.Minute)
	tests := []struct {
		name    string
		args    string
		want    stats.Query
		wantErr string
	}{
		{name: "defaults", want: stats.Query{Since: minute.Add(-24 * time.Hour), Until: minute.Add(time.Minute)}},
		{name: "window", args: "--since 2026-11-20T00:00:00Z --until 2026-11-21T00:00:00Z --server files",
			want: stats.Query{Since: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Server: "files"}},
		{name: "week", args: "--since 7d", want: stats.Query{Since: minute.Add(-7 * 24 * time.Hour), Until: minute.Add(time.Minute)}},
		{name: "bad since", args: "--since soon", wantErr: "invalid --since"},
		{name: "bad until", args: "--until later", wantErr: "invalid --until"},
		{name: "backwards", args: "--since 1h --until 2h", wantErr: "since must be before until"},
		{name: "too long", args: "--since 400d", wantErr: "window longer than 366 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := testFactory(t.TempDir())
			var got stats.Query
			cmd := newCmd(f, func(_ context.Context, o *Options) error {
				q, err := o.Query()
				got = q
				return err
			})
			cmd.SetArgs(strings.Fields(tt.args))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
			err := cmd.Execute()
			if tt.wantErr != "" {
				var fe *cmdutil.FlagError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &fe) {
					t.Fatalf("err = %v, want a FlagError with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Since.Equal(tt.want.Since) || !got.Until.Equal(tt.want.Until) || got.Server != tt.want.Server {
				t.Errorf("query = %+v, want %+v", got, tt.want)
			}
		})
	}
}

type fakeSource struct {
	source.Source // only Stats and Sessions are called
	st            stats.Stats
}

func (f fakeSource) Stats(context.Context, stats.Query) (stats.Stats, error) { return f.st, nil }

// Sessions answers two sessions that recorded the same warning: stats
// names it once, with the count.
func (f fakeSource) Sessions(context.Context, activity.SessionQuery) (activity.SessionPage, error) {
	w := []string{`capture_mode "everything" is not redacted, metadata or full; recording with redacted (config.json:3:19)`}
	return activity.SessionPage{Sessions: []activity.SessionRow{
		{Session: event.Session{ID: "s1", Warnings: w}}, {Session: event.Session{ID: "s2", Warnings: w}}, {Session: event.Session{ID: "s3"}},
	}}, nil
}

func sampleStats() stats.Stats {
	q := stats.Query{}.Align(now)
	agg := stats.NewAggregator(q.Since, q.Until, "")
	lat := 42.0
	isErr := true
	for i, e := range []event.Event{
		{Kind: event.KindRequest, Method: "tools/call", Tool: "read_file", Risk: &event.Risk{Score: 80, Level: event.LevelHigh}, CostUSD: 0.000125},
		{Kind: event.KindResponse, Method: "tools/call", Tool: "read_file", LatencyMS: &lat, IsError: &isErr, CostUSD: 0.0021},
		{Kind: event.KindRequest, Method: "tools/list"},
		{Kind: event.KindResponse, Method: "tools/list", Risk: &event.Risk{Score: 100, Level: event.LevelHigh,
			Reasons: []string{"tool_poisoning:add", "hidden_instructions"}}},
		{Kind: event.KindRequest, Method: "tools/call", Tool: "get_time", Risk: &event.Risk{Score: 10, Level: event.LevelLow}},
	} {
		e.ID, e.SessionID, e.TS, e.Server, e.Size = sid, sid, now.Add(-time.Duration(i+1)*time.Minute), "files", 100
		agg.Add(&e)
	}
	agg.AddDropped(2)
	return agg.Result()
}

func TestRun(t *testing.T) {
	st := sampleStats()
	wantJSON, _ := json.Marshal(st)
	f, out, _ := testFactory(t.TempDir())
	opts := &Options{IO: f.IO, Now: f.Now, Since: "24h", JSON: true,
		Source: func(context.Context) (source.Source, error) { return fakeSource{st: st}, nil }}
	if err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if out.String() != string(wantJSON)+"\n" {
		t.Errorf("got  %s\nwant %s", out.String(), wantJSON)
	}
	if !strings.Contains(out.String(), `"riskiest_tools":[{"tool":"add","max_score":100,"high":1,"medium":0,"reasons":["tool_poisoning"]}`) {
		t.Errorf("the poisoned tool is not the riskiest: %s", out.String())
	}

	for _, term := range golden.Terminals {
		t.Run(term.Name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			opts := &Options{IO: term.Streams(&out, &errOut), Now: func() time.Time { return now }, Since: "24h",
				Source: func(context.Context) (source.Source, error) { return fakeSource{st: st}, nil }}
			if err := Run(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "stats-"+term.Name, out.Bytes())
			if strings.Contains(out.String(), "get_time") && strings.Contains(out.String(), "Riskiest") &&
				strings.Index(out.String(), "get_time") > strings.Index(out.String(), "Riskiest") {
				t.Errorf("a harmless tool is among the riskiest:\n%s", out.String())
			}
		})
	}

	for _, tt := range []struct {
		server, want string
	}{
		{"", "No events in this window. Is `kilometers monitor --`"},
		{"memory", `No events of server "memory" in this window`},
	} {
		f, _, errOut := testFactory(t.TempDir())
		opts := &Options{IO: f.IO, Now: f.Now, Since: "24h",
			Source: func(context.Context) (source.Source, error) {
				return fakeSource{st: stats.Stats{Server: tt.server}}, nil
			}}
		if err := Run(context.Background(), opts); err != nil || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("empty, server %q: %v, stderr %q", tt.server, err, errOut.String())
		}
	}
}

func TestLocalStore(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, event.Session{ID: sid, Server: "files", StartedAt: now.Add(-time.Hour), DroppedEvents: 4}); err != nil {
		t.Fatal(err)
	}
	lat := 3.0
	evs := []event.Event{
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", SessionID: sid, TS: now.Add(-time.Minute), Direction: event.ClientToServer, Kind: event.KindRequest, Server: "files", Method: "tools/call", Tool: "search", Size: 10},
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f11", SessionID: sid, TS: now.Add(-time.Minute), Direction: event.ServerToClient, Kind: event.KindResponse, Server: "files", Method: "tools/call", Tool: "search", LatencyMS: &lat, Size: 20},
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f12", SessionID: sid, TS: now.Add(-48 * time.Hour), Direction: event.ClientToServer, Kind: event.KindRequest, Server: "files", Method: "tools/list", Size: 5},
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, out, _ := testFactory(home)
	cmd := NewCmd(f)
	cmd.SetArgs([]string{"--json"})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	var got stats.Stats
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Totals.Events != 2 || got.Totals.Bytes != 30 || got.Totals.DroppedEvents != 4 || len(got.Tools) != 1 || got.Tools[0].Calls != 1 {
		t.Errorf("stats = %+v", got)
	}
}
