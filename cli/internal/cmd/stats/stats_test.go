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
	"github.com/kilometers-ai/kilometers/cli/internal/store"
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
		{name: "too long", args: "--since 400d", wantErr: "longer than a year"},
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

type fakeSource struct{ st stats.Stats }

func (f fakeSource) Stats(context.Context, stats.Query) (stats.Stats, error) { return f.st, nil }

func sampleStats() stats.Stats {
	q := stats.Query{}.Align(now)
	agg := stats.NewAggregator(q.Since, q.Until, "")
	lat := 42.0
	isErr := true
	for i, e := range []event.Event{
		{Kind: event.KindRequest, Method: "tools/call", Tool: "read_file", Risk: &event.Risk{Score: 80, Level: event.LevelHigh}},
		{Kind: event.KindResponse, Method: "tools/call", Tool: "read_file", LatencyMS: &lat, IsError: &isErr},
		{Kind: event.KindRequest, Method: "tools/list"},
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
	tests := []struct {
		name    string
		json    bool
		tty     bool
		st      stats.Stats
		wantOut []string
		wantErr string
	}{
		{name: "json", json: true, st: st, wantOut: []string{string(wantJSON) + "\n"}},
		{name: "plain", st: st, wantOut: []string{
			"Events    3\n", "Errors    1 (50.0% of requests)\n", "Dropped   2 events",
			"TOOL\tCALLS\tERRORS\tP50\tP95\tP99\tCOST\nread_file\t1\t1\t42\t42\t42\t0.000000\n",
			"METHOD\tCOUNT\tERRORS", "tools/list\t1\t0\t0\t0\t0\n",
			"TOOL\tMAX SCORE\tHIGH\tMEDIUM\nread_file\t80\t1\t0\n",
		}},
		{name: "terminal", tty: true, st: st, wantOut: []string{"\x1b[1mTools\x1b[0m", "42.0 ms", "p50 42.0 ms"}},
		{name: "empty", st: stats.Stats{}, wantOut: []string{"Events    0\n"}, wantErr: "No events in this window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, errOut := testFactory(t.TempDir())
			f.IO.OutIsTerminal = tt.tty
			opts := &Options{IO: f.IO, Now: f.Now, Since: "24h", JSON: tt.json,
				Source: func(context.Context) (Source, error) { return fakeSource{tt.st}, nil }}
			if err := Run(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if tt.json && got != tt.wantOut[0] {
				t.Fatalf("got  %s\nwant %s", got, tt.wantOut[0])
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.wantErr)
			}
		})
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
