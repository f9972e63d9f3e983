package activity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/filters"
	"github.com/kilometers-ai/kilometers/cli/internal/golden"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

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
	tests := []struct {
		name    string
		args    string
		want    activity.Query
		wantErr string
	}{
		{name: "defaults", args: "", want: activity.Query{Limit: 50}},
		{name: "filters", args: "--limit 5 --session " + sid + " --server files --method tools/call --tool read_file --kind error --risk medium",
			want: activity.Query{Limit: 5, SessionID: sid, Server: "files", Method: "tools/call", Tool: "read_file", Kind: event.KindError, MinRisk: event.LevelMedium}},
		{name: "times", args: "--since 2h --until 2026-11-22T11:30:00Z",
			want: activity.Query{Limit: 50, Since: now.Add(-2 * time.Hour), Until: now.Add(-30 * time.Minute)}},
		{name: "days", args: "--since 7d", want: activity.Query{Limit: 50, Since: now.Add(-7 * 24 * time.Hour)}},
		{name: "limit too big", args: "--limit 5000", wantErr: "invalid --limit"},
		{name: "limit zero", args: "-L 0", wantErr: "invalid --limit"},
		{name: "bad kind", args: "--kind reply", wantErr: "invalid --kind"},
		{name: "bad risk", args: "--risk severe", wantErr: "invalid --risk"},
		{name: "bad since", args: "--since yesterday", wantErr: "invalid --since"},
		{name: "bad session", args: "--session abc", wantErr: "invalid --session"},
		{name: "bad cursor", args: "--cursor !!", wantErr: "invalid --cursor"},
		{name: "window backwards", args: "--since 1h --until 2h", wantErr: "--since must be before --until"},
		{name: "not a number", args: "--limit many", wantErr: "invalid argument"},
		{name: "arguments", args: "extra", wantErr: `takes no arguments, got "extra"`},
		{name: "failed", args: "--failed --since 2w", want: activity.Query{Limit: 50, Failed: true, Since: now.Add(-14 * 24 * time.Hour)}},
		{name: "date", args: "--since 2026-11-01", want: activity.Query{Limit: 50, Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "follow with cursor", args: "-f --cursor " + (activity.Cursor{TS: now, ID: sid}).Encode(), wantErr: "--follow shows new events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := testFactory(t.TempDir())
			var got activity.Query
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
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				var fe *cmdutil.FlagError
				if !errors.As(err, &fe) {
					t.Errorf("err %v is not a FlagError (exit 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Since.Equal(tt.want.Since) || !got.Until.Equal(tt.want.Until) {
				t.Errorf("window = %v..%v, want %v..%v", got.Since, got.Until, tt.want.Since, tt.want.Until)
			}
			got.Since, got.Until, tt.want.Since, tt.want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("query = %+v, want %+v", got, tt.want)
			}
		})
	}
}

type fakeSource struct {
	source.Source // only Activity is called
	page          activity.Page
	got           activity.Query
}

func (f *fakeSource) Activity(_ context.Context, q activity.Query) (activity.Page, error) {
	f.got = q
	return f.page, nil
}

func sampleEvents() []event.Event {
	lat := 12.5
	code := -32602
	yes := true
	return []event.Event{
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f14", SessionID: sid, Seq: 5, TS: now.Add(-30 * time.Second), Direction: event.ServerToClient,
			Kind: event.KindResponse, Server: "everything", RPCID: "2", Method: "tools/list", Size: 9000,
			Risk: &event.Risk{Score: 100, Level: event.LevelHigh, Reasons: []string{"tool_poisoning:add", "hidden_instructions", "conceals_from_user"}}},
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f13", SessionID: sid, Seq: 4, TS: now.Add(-40 * time.Second), Direction: event.ServerToClient,
			Kind: event.KindResponse, Server: "files", RPCID: "18", Method: "tools/call", Tool: "write_file", LatencyMS: &lat, IsError: &yes,
			ErrorMessage: "Access denied - path outside allowed directories: /etc/passwd not in /tmp/project", Size: 300},
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f12", SessionID: sid, Seq: 3, TS: now.Add(-50 * time.Second), Direction: event.ClientToServer,
			Kind: event.KindRequest, Server: "everything", RPCID: "3", Method: "prompts/get", Prompt: "complex_prompt", Size: 80},
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f11", SessionID: sid, Seq: 2, TS: now.Add(-time.Minute), Direction: event.ServerToClient,
			Kind: event.KindError, Server: "files", RPCID: "17", Method: "tools/call", Tool: "read_file", LatencyMS: &lat, ErrorCode: &code,
			ErrorMessage: "Invalid arguments", Size: 2048, Risk: &event.Risk{Score: 75, Level: event.LevelHigh, Reasons: []string{"sensitive_path"}},
			Payload: json.RawMessage(`{"jsonrpc":"2.0","id":17,"error":{"code":-32602,"message":"Invalid arguments"}}`)},
		{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", SessionID: sid, Seq: 1, TS: now.Add(-26 * time.Hour), Direction: event.ClientToServer,
			Kind: event.KindRequest, Server: "files", RPCID: "17", Method: "tools/call", Tool: "read_file", Size: 120},
	}
}

func TestRunJSON(t *testing.T) {
	f, out, _ := testFactory(t.TempDir())
	src := &fakeSource{page: activity.Page{Events: sampleEvents(), NextCursor: "abc"}}
	opts := &Options{IO: f.IO, Now: f.Now, Limit: 2, Flags: filters.Flags{Tool: "read_file"}, JSON: true,
		Source: func(context.Context) (source.Source, error) { return src, nil }}
	if err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(src.page)
	if got := strings.TrimSpace(out.String()); got != string(want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if src.got.Tool != "read_file" || src.got.Limit != 2 {
		t.Errorf("source got query %+v", src.got)
	}
}

// TestTable checks the table in golden files: 80 and 200 columns, and
// piped.
func TestTable(t *testing.T) {
	for _, term := range golden.Terminals {
		t.Run(term.Name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			opts := &Options{IO: term.Streams(&out, &errOut), Now: func() time.Time { return now }, Limit: 50,
				Source: func(context.Context) (source.Source, error) {
					return &fakeSource{page: activity.Page{Events: sampleEvents(), NextCursor: "abc"}}, nil
				}}
			if err := Run(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "activity-"+term.Name, out.Bytes())
			if term.TTY {
				for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
					if n := utf8.RuneCountInString(line); n > term.Width {
						t.Errorf("line of %d columns on a terminal of %d: %q", n, term.Width, line)
					}
				}
				if !strings.Contains(errOut.String(), "--cursor abc") {
					t.Errorf("stderr %q lacks the next page's hint", errOut.String())
				}
			} else if errOut.Len() != 0 {
				t.Errorf("stderr %q when piped", errOut.String())
			}
		})
	}
	f, _, errOut := testFactory(t.TempDir())
	opts := &Options{IO: f.IO, Now: f.Now, Limit: 50,
		Source: func(context.Context) (source.Source, error) {
			return &fakeSource{page: activity.Page{Events: []event.Event{}}}, nil
		}}
	if err := Run(context.Background(), opts); err != nil || !strings.Contains(errOut.String(), "No events match.") {
		t.Errorf("empty: %v, stderr %q", err, errOut.String())
	}
}

// TestLocalStore runs the command end to end against a real store.
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
	if err := w.Record(ctx, sampleEvents()[3:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, out, _ := testFactory(home)
	cmd := NewCmd(f)
	cmd.SetArgs([]string{"--json", "--limit", "1"})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	var page activity.Page
	if err := json.Unmarshal(out.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Kind != event.KindError || page.NextCursor == "" {
		t.Fatalf("page = %+v", page)
	}
	out.Reset()
	cmd = NewCmd(f)
	cmd.SetArgs([]string{"--json", "--cursor", page.NextCursor})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	page = activity.Page{}
	if err := json.Unmarshal(out.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Kind != event.KindRequest || page.NextCursor != "" {
		t.Fatalf("second page = %+v", page)
	}
}

// A bad setting stops activity only when it uses it: capture_mode never,
// api_url unless --local.
func TestBadSettingsStopOnlyWhatUsesThem(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       []string
		wantErr    string // "" to succeed
		wantWarn   string
	}{
		{"bad capture mode", `{"capture_mode": "ful"}`, []string{"--json"}, "", `capture_mode: must be full, redacted or metadata, got "ful"`},
		{"bad api url", `{"api_url": "ftp://x", "api_key": "km_0123456789abcdef"}`, []string{"--json"}, "config.json:1:13: api_url: want an http(s) URL", ""},
		{"bad api url, local", `{"api_url": "ftp://x", "api_key": "km_0123456789abcdef"}`, []string{"--json", "--local"}, "", "api_url"},
		{"unknown key", `{"limit": 5}`, []string{"--json"}, "", `unknown setting "limit"`},
		{"not JSON, local", `{capture_mode: "full"}`, []string{"--json", "--local"}, "", "config.json:1:2: invalid JSON"},
		{"not JSON", `{capture_mode: "full"}`, []string{"--json"}, "config.json:1:2: invalid JSON", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.WriteFile(config.Path(home), []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			f, out, errOut := testFactory(home)
			f.Config = func() (*config.Config, error) { return config.Load(home, func(string) string { return "" }) }
			cmd := NewCmd(f)
			cmd.SetArgs(tc.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.ExecuteContext(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("failed: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && !strings.Contains(out.String(), `"events"`) {
				t.Errorf("no page printed: %q", out.String())
			}
			if tc.wantWarn != "" && (!strings.Contains(errOut.String(), "kilometers: warning: ") ||
				!strings.Contains(errOut.String(), tc.wantWarn)) {
				t.Errorf("stderr %q, want a warning with %q", errOut.String(), tc.wantWarn)
			}
		})
	}
}
