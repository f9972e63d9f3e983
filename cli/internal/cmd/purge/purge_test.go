package purge

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

func record(t *testing.T, st *store.Store, sid string, keepOpen bool) *store.Writer {
	t.Helper()
	ctx := context.Background()
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	e := event.Event{ID: sid[:24] + "000000000001", SessionID: sid, Seq: 1, TS: time.Now().UTC(), Direction: event.ClientToServer,
		Kind: event.KindRequest, Method: "ping", RPCID: "1", Size: 1}
	if err := w.Record(ctx, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	if keepOpen {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return nil
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	record(t, st, "0196f1c2-6e00-7a55-8c1d-000000000001", false)
	live := record(t, st, "0196f1c2-6e00-7a55-8c1d-000000000002", true)
	defer live.Close()

	run := func(in string, tty, yes bool) (string, string, error) {
		var out, errOut bytes.Buffer
		opts := &Options{IO: &cmdutil.IOStreams{In: strings.NewReader(in), Out: &out, ErrOut: &errOut, InIsTerminal: tty},
			Config: func() (*config.Config, error) { return config.Defaults(home), nil }, Yes: yes}
		err := Run(ctx, opts)
		return out.String(), errOut.String(), err
	}
	count := func() int {
		p, err := st.Activity(ctx, activity.Query{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Events)
	}
	if _, _, err := run("", false, false); err == nil || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("no terminal, no --yes: %v", err)
	}
	if _, errOut, err := run("n\n", true, false); err != nil || !strings.Contains(errOut, "[y/N]") || !strings.Contains(errOut, "Nothing deleted.") || count() != 2 {
		t.Errorf("answered no: %q, %v, %d events left", errOut, err, count())
	}
	out, _, err := run("y\n", true, false)
	if err != nil || !strings.Contains(out, "Deleted 1 segments") || !strings.Contains(out, "1 segments were left") {
		t.Fatalf("answered yes: %q, %v", out, err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d events left, want only the live session's", n)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run("", false, true); err != nil || !strings.Contains(out, "Deleted 1 segments") || count() != 0 {
		t.Errorf("--yes: %q, %v, %d left", out, err, count())
	}
}
