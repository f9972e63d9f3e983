package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/filters"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	sactivity "github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fixture records n events, more than one page, every fifth a failed reply.
func fixture(t *testing.T, n int) (*store.Store, []event.Event) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), store.Options{SegmentBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	const sid = "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for i := range n {
		e := event.Event{ID: fmt.Sprintf("0196f1c2-7a3b-7c11-9d2e-%012d", i), SessionID: sid, Seq: int64(i + 1),
			TS: now.Add(-time.Hour + time.Duration(i)*time.Millisecond), Direction: event.ClientToServer, Kind: event.KindRequest,
			Server: "files", RPCID: fmt.Sprint(i), Method: "tools/call", Tool: "read_file", Size: 40,
			Payload: json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"note":"a, \"quoted\"\nline"}`, i))}
		if i%5 == 4 {
			code := -32000
			e.Direction, e.Kind, e.ErrorCode = event.ServerToClient, event.KindError, &code
		}
		evs = append(evs, e)
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return st, evs
}

func run(t *testing.T, st *store.Store, o Options) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o.IO = &cmdutil.IOStreams{Out: &out, ErrOut: &errOut, ErrIsTerminal: o.IO != nil && o.IO.ErrIsTerminal}
	o.Now = func() time.Time { return now }
	o.Source = func(context.Context) (source.Source, error) { return st, nil }
	if o.Format == "" {
		o.Format = NDJSON
	}
	err := Run(context.Background(), &o)
	return out.String(), errOut.String(), err
}

// TestNDJSON: every stored event, more than a page of them, exactly as
// stored, newest first.
func TestNDJSON(t *testing.T) {
	st, evs := fixture(t, 2*sactivity.MaxLimit+7)
	out, errOut, err := run(t, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("%d lines, want %d", len(lines), len(evs))
	}
	for i, line := range lines {
		want, _ := json.Marshal(evs[len(evs)-1-i])
		var got, exp any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		json.Unmarshal(want, &exp)
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("line %d:\n got %s\nwant %s", i, line, want)
		}
	}
	if errOut != "" {
		t.Errorf("progress %q on a stderr that is no terminal", errOut)
	}
}

func TestFiltersAndCSV(t *testing.T) {
	st, evs := fixture(t, 50)
	out, _, err := run(t, st, Options{Flags: filters.Flags{Failed: true}, Format: CSV})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(evs)/5 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	last := rows[1]
	if last[0] != evs[49].ID || last[5] != "error" || last[13] != "-32000" || last[len(last)-1] != string(evs[49].Payload) {
		t.Errorf("row %v", last)
	}
}

func TestFile(t *testing.T) {
	st, evs := fixture(t, 30)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.ndjson")
	_, errOut, err := run(t, st, Options{Output: path, IO: &cmdutil.IOStreams{ErrIsTerminal: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.Count(string(b), "\n") != len(evs) {
		t.Fatalf("file: %d lines, %v", strings.Count(string(b), "\n"), err)
	}
	if !strings.HasSuffix(errOut, "\rExported 30 events to "+path+"\n") {
		t.Errorf("progress %q", errOut)
	}
	// A failed export leaves nothing behind, not even the old file's
	// replacement.
	_, _, err = run(t, st, Options{Output: filepath.Join(dir, "no-such-dir", "x.ndjson")})
	if err == nil {
		t.Error("export into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestUsage(t *testing.T) {
	st, _ := fixture(t, 1)
	for _, o := range []Options{{Format: "xml"}, {Flags: filters.Flags{Since: "soon"}}, {Flags: filters.Flags{Kind: "reply"}}} {
		_, _, err := run(t, st, o)
		var fe *cmdutil.FlagError
		if err == nil || !errors.As(err, &fe) {
			t.Errorf("%+v: err = %v, want a usage error", o, err)
		}
	}
}
