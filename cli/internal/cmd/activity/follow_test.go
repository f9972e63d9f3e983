package activity

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/filters"
	"github.com/kilometers-ai/kilometers/cli/internal/source"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// lockedBuffer is written by the follower and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func record(t *testing.T, st *store.Store, sessionID string, evs ...event.Event) {
	t.Helper()
	ctx := context.Background()
	w, err := st.NewWriter(ctx, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, event.Session{ID: sessionID, Server: "files", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func followEvent(sessionID, id string, seq int64, tool string) event.Event {
	return event.Event{ID: id, SessionID: sessionID, Seq: seq, TS: time.Now().UTC(), Direction: event.ClientToServer,
		Kind: event.KindRequest, Server: "files", RPCID: "1", Method: "tools/call", Tool: tool, Size: 10}
}

// TestFollow tails a real store in a bubble of fake time: the backlog
// first, then the events of a session started after the follower, once
// each, filtered, until the context ends.
func TestFollow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		home := t.TempDir()
		st, err := store.Open(ctx, home, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		const s1, s2 = "0196f1c2-6e00-7a55-8c1d-000000000001", "0196f1c2-6e00-7a55-8c1d-000000000002"
		record(t, st, s1, followEvent(s1, "0196f1c2-7a3b-7c11-9d2e-000000000001", 1, "read_file"))
		time.Sleep(time.Second)

		out := &lockedBuffer{}
		opts := &Options{
			IO:     &cmdutil.IOStreams{Out: out, ErrOut: &bytes.Buffer{}},
			Now:    time.Now,
			Limit:  50,
			Flags:  filters.Flags{Tool: "read_file"},
			Follow: true,
			JSON:   true,
			Source: func(ctx context.Context) (source.Source, error) { return st, nil },
		}
		done := make(chan error)
		go func() { done <- Run(ctx, opts) }()
		synctest.Wait()
		if got := strings.Count(out.String(), "\n"); got != 1 {
			t.Fatalf("backlog: %d lines, want 1:\n%s", got, out.String())
		}

		// A session started after the follower, with an event the filter
		// drops.
		record(t, st, s2,
			followEvent(s2, "0196f1c2-7a3b-7c11-9d2e-000000000002", 1, "read_file"),
			followEvent(s2, "0196f1c2-7a3b-7c11-9d2e-000000000003", 2, "write_file"))
		time.Sleep(FollowLocalEvery)
		synctest.Wait()
		// Several polls later each event is still printed once.
		time.Sleep(5 * FollowLocalEvery)
		synctest.Wait()
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var e event.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			ids = append(ids, e.ID)
		}
		want := []string{"0196f1c2-7a3b-7c11-9d2e-000000000001", "0196f1c2-7a3b-7c11-9d2e-000000000002"}
		if strings.Join(ids, " ") != strings.Join(want, " ") {
			t.Errorf("followed %v, want %v", ids, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after interrupt = %v", err)
		}
	})
}

// TestFollowTable: on a terminal the tail is one table whose later rows
// line up with the first.
func TestFollowTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		st, err := store.Open(ctx, t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		const s1 = "0196f1c2-6e00-7a55-8c1d-000000000001"
		record(t, st, s1, followEvent(s1, "0196f1c2-7a3b-7c11-9d2e-000000000001", 1, "read_file"))
		out := &lockedBuffer{}
		opts := &Options{
			IO:  &cmdutil.IOStreams{Out: out, ErrOut: &bytes.Buffer{}, OutIsTerminal: true, Width: 200, TZ: time.UTC},
			Now: time.Now, Limit: 50, Follow: true,
			Source: func(ctx context.Context) (source.Source, error) { return st, nil },
		}
		done := make(chan error)
		go func() { done <- Run(ctx, opts) }()
		synctest.Wait()
		record(t, st, s1, followEvent(s1, "0196f1c2-7a3b-7c11-9d2e-000000000002", 2, "a_much_longer_tool_name"))
		time.Sleep(FollowLocalEvery)
		synctest.Wait()
		cancel()
		<-done
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
			t.Fatalf("table:\n%s", out.String())
		}
		if a, b := strings.Index(lines[1], "  request"), strings.Index(lines[2], "  request"); a != b || a < 0 {
			t.Errorf("rows do not line up:\n%s", out.String())
		}
	})
}
