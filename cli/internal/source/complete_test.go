package source

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestComplete(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, s := range []struct{ id, server, tool string }{
		{"0196f1c2-6e00-7a55-8c1d-000000000001", "filesystem", "read_file"},
		{"0196f1c2-6e00-7a55-8c1d-000000000002", "everything", "echo"},
	} {
		w, err := st.NewWriter(ctx, s.id)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.RecordSession(ctx, event.Session{ID: s.id, Server: s.server, StartedAt: now.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		evs := []event.Event{
			{ID: s.id[:24] + "00000000000a", SessionID: s.id, Seq: 1, TS: now, Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: "1", Method: "tools/call", Tool: s.tool},
			{ID: s.id[:24] + "00000000000b", SessionID: s.id, Seq: 2, TS: now, Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: "2", Method: "tools/list"},
			{ID: s.id[:24] + "00000000000c", SessionID: s.id, Seq: 3, TS: now, Direction: event.ServerToClient, Kind: event.KindResponse, RPCID: "1", Method: "tools/call", Tool: s.tool},
		}
		if err := w.Record(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := func() (*config.Config, error) { return config.Defaults(home), nil }
	for _, tt := range []struct {
		f    Field
		want []string
	}{
		{Servers, []string{"everything", "filesystem"}},
		{Tools, []string{"echo", "read_file"}},
		{Methods, []string{"tools/call", "tools/list"}},
	} {
		got := Complete(ctx, cfg, tt.f)
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("field %d: %v, want %v", tt.f, got, tt.want)
		}
	}
	ids := Complete(ctx, cfg, SessionIDs)
	if len(ids) != 2 || ids[0] != "0196f1c2-6e00-7a55-8c1d-000000000002\teverything "+now.Add(time.Minute).Local().Format("2006-01-02 15:04") {
		t.Errorf("session ids %q", ids)
	}
	broken := func() (*config.Config, error) { return config.Defaults("/proc/nonexistent/km"), nil }
	if got := Complete(ctx, broken, Servers); len(got) != 0 {
		t.Errorf("an unreadable store completes %v", got)
	}
}
