package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	sid := testID("session")
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	sess := testSession(sid, "files")
	if err := w.RecordSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	var want []event.Event
	for i := range 20 {
		want = append(want, testEvent(sid, fmt.Sprint(i), i, baseTime.Add(time.Duration(i)*time.Second)))
	}
	// Payloads that would fool a careless reader: the separator inside the
	// payload, an invalid payload, none at all.
	want[3].Payload = json.RawMessage(`{"a":{},"p":{"b":[1,2]}}`)
	want[4].Payload = json.RawMessage("{ \"spaced\" :\n 1 }")
	want[5].Payload = nil
	want[6].Payload = json.RawMessage(`"a line that is not JSON-RPC"`)
	if err := w.Record(ctx, want); err != nil {
		t.Fatal(err)
	}
	ended := baseTime.Add(time.Hour)
	code := 0
	sess.EndedAt, sess.ExitCode, sess.DroppedEvents = &ended, &code, 3
	if err := w.RecordSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, want[:1]); err != ErrClosed {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}
	want[4].Payload = json.RawMessage(`{"spaced":1}`)

	for _, s := range []*Store{s, mustOpen(t, home, Options{})} {
		page, err := s.Activity(ctx, activity.Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != len(want) || page.NextCursor != "" {
			t.Fatalf("got %d events, cursor %q; want %d, none", len(page.Events), page.NextCursor, len(want))
		}
		for i, got := range page.Events {
			w := want[len(want)-1-i]
			if gb, wb := mustJSON(t, got), mustJSON(t, w); gb != wb {
				t.Errorf("event %d:\n got %s\nwant %s", i, gb, wb)
			}
		}
		sessions, err := s.SessionRecords(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sessions) != 1 || mustJSON(t, sessions[0]) != mustJSON(t, sess) {
			t.Errorf("sessions = %+v, want the latest record %+v", sessions, sess)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		return // Windows has ACLs, not modes
	}
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "km")
	s := mustOpen(t, home, Options{})
	w, err := s.NewWriter(ctx, testID("s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, []event.Event{testEvent(testID("s"), "a", 0, baseTime)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	err = filepath.Walk(home, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o700
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentWriters runs several processes, each with several goroutines
// and writers, and checks that every event is there exactly once, intact.
func TestConcurrentWriters(t *testing.T) {
	home := t.TempDir()
	const procs, n = 4, 1500
	var waits []func() error
	for p := range procs {
		cmd := helper(t, "write", helperArgs{Home: home, SessionID: testID(fmt.Sprint("proc", p)), Prefix: fmt.Sprint("p", p), N: n})
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waits = append(waits, cmd.Wait)
	}
	for _, wait := range waits {
		if err := wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	s := mustOpen(t, home, Options{})
	seen := map[string]int{}
	for _, path := range segmentFiles(t, s) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s: does not end with a newline", path)
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if !json.Valid(line) {
				t.Fatalf("%s: invalid line %q", path, line)
			}
			if kindOf(line) == lineEvent {
				e, err := decodeEvent(line)
				if err != nil {
					t.Fatal(err)
				}
				seen[e.ID]++
			}
		}
	}
	if len(seen) != procs*n {
		t.Errorf("found %d distinct events, want %d", len(seen), procs*n)
	}
	for p := range procs {
		sid := testID(fmt.Sprint("proc", p))
		for i := range n {
			want := testEvent(sid, fmt.Sprintf("p%d-%d", p, i), i, baseTime.Add(time.Duration(i)*time.Millisecond))
			if c := seen[want.ID]; c != 1 {
				t.Fatalf("event p%d-%d stored %d times", p, i, c)
			}
		}
	}
	// Small segments forced rotation; every segment still names its session.
	segs, _ := s.segments()
	if len(segs) <= procs*2 {
		t.Errorf("%d segments: rotation did not happen", len(segs))
	}
	sessions, err := s.SessionRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != procs {
		t.Errorf("%d sessions, want %d", len(sessions), procs)
	}
}

func TestTornLastLine(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	sid := testID("torn")
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for i := range 5 {
		evs = append(evs, testEvent(sid, fmt.Sprint(i), i, baseTime.Add(time.Duration(i)*time.Second)))
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	data := s.path(w.seg.meta.ID, ".jsonl")
	f, err := os.OpenFile(data, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"e":{"id":"half a li`)
	f.Close()

	// While the writer is "alive", readers skip the torn line.
	page, err := s.Activity(ctx, activity.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 5 {
		t.Fatalf("live segment: %d events, want 5", len(page.Events))
	}
	// The writer dies: its lock goes, its segment is never sealed.
	w.seg.f.Close()
	w.seg.lock.Unlock()

	s2 := mustOpen(t, home, Options{})
	page, err = s2.Activity(ctx, activity.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 5 {
		t.Fatalf("recovered segment: %d events, want 5", len(page.Events))
	}
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("}\n")) || bytes.Contains(b, []byte("half a li")) {
		t.Errorf("torn line not cut: ...%q", b[max(0, len(b)-40):])
	}
	m, err := s2.readMeta(w.seg.meta.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Recovered || m.Events != 5 || !m.MinTS.Equal(baseTime) || !m.MaxTS.Equal(baseTime.Add(4*time.Second)) {
		t.Errorf("recovered index = %+v", m)
	}
	// The recovered segment ships like any other.
	c, err := s2.Claim(ctx, 100, 0)
	if err != nil || c == nil || len(c.Events()) != 5 {
		t.Fatalf("claim after recovery = %v, %v", c, err)
	}
	c.Release()
}

// TestKill9 kills a writer process with SIGKILL and checks that what Close
// returned for is all there and the store still reads.
func TestKill9(t *testing.T) {
	home := t.TempDir()
	const n = 300
	sid := testID("crash")
	cmd := helper(t, "crash", helperArgs{Home: home, SessionID: sid, Prefix: "c", N: n})
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if l := readLine(t, out); l != "ready" {
		t.Fatalf("helper said %q", l)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	ctx := context.Background()
	s := mustOpen(t, home, Options{})
	got := map[string]bool{}
	q := activity.Query{Limit: activity.MaxLimit}
	for {
		page, err := s.Activity(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			got[e.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor, _ = activity.DecodeCursor(page.NextCursor)
	}
	// The first n were closed; the next n were flushed before the kill.
	for i := range 2 * n {
		if !got[testID(fmt.Sprintf("c-%d", i))] {
			t.Fatalf("event c-%d lost", i)
		}
	}
	if len(got) != 2*n {
		t.Errorf("%d events, want %d", len(got), 2*n)
	}
}

func TestActivityPagination(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{SegmentBytes: 16 << 10})
	var all []event.Event
	for wi := range 3 {
		sid := testID(fmt.Sprint("w", wi))
		w, err := s.NewWriter(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		var evs []event.Event
		for i := range 400 {
			// Many events share a timestamp, across writers too: the id
			// breaks the tie.
			e := testEvent(sid, fmt.Sprint(wi, "-", i), i, baseTime.Add(time.Duration(i/4)*time.Second))
			evs = append(evs, e)
		}
		if err := w.Record(ctx, evs); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		if wi < 2 { // the last writer stays live
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			defer w.Close()
		}
	}
	tests := []struct {
		name string
		q    activity.Query
	}{
		{"all", activity.Query{Limit: 7}},
		{"tool", activity.Query{Limit: 13, Tool: "read_file"}},
		{"server and kind", activity.Query{Limit: 5, Server: "git", Kind: event.KindResponse}},
		{"risk", activity.Query{Limit: 9, MinRisk: event.LevelMedium}},
		{"window", activity.Query{Limit: 11, Since: baseTime.Add(20 * time.Second), Until: baseTime.Add(50 * time.Second)}},
		{"session", activity.Query{Limit: 50, SessionID: testID("w1"), Method: "tools/call"}},
		{"one page", activity.Query{Limit: 1000, Tool: "fetch"}},
		{"none", activity.Query{Limit: 10, Tool: "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for i := range all {
				if tt.q.Match(&all[i]) {
					want = append(want, all[i].ID)
				}
			}
			sort.Slice(want, func(i, j int) bool {
				a, b := find(all, want[i]), find(all, want[j])
				return activity.Less(a, b)
			})
			var got []string
			q := tt.q
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatal("pagination does not end")
				}
				page, err := s.Activity(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Events) > tt.q.Limit {
					t.Fatalf("page of %d, limit %d", len(page.Events), tt.q.Limit)
				}
				for _, e := range page.Events {
					got = append(got, e.ID)
				}
				if page.NextCursor == "" {
					break
				}
				if len(page.Events) != tt.q.Limit {
					t.Fatalf("short page (%d) with a next cursor", len(page.Events))
				}
				if q.Cursor, err = activity.DecodeCursor(page.NextCursor); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("walked %d events, want %d in order", len(got), len(want))
			}
		})
	}
}

func find(evs []event.Event, id string) *event.Event {
	for i := range evs {
		if evs[i].ID == id {
			return &evs[i]
		}
	}
	return nil
}

func TestStatsMatchesAggregator(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{SegmentBytes: 32 << 10})
	var all []event.Event
	var sessions []event.Session
	for wi := range 3 {
		sid := testID(fmt.Sprint("stats", wi))
		w, err := s.NewWriter(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		sess := testSession(sid, []string{"files", "git", "web"}[wi])
		sess.StartedAt = baseTime.Add(time.Duration(wi) * time.Hour)
		sess.DroppedEvents = int64(wi + 1)
		if err := w.RecordSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		for i := range 600 {
			e := testEvent(sid, fmt.Sprint("stats", wi, "-", i), i, baseTime.Add(time.Duration(wi)*time.Hour+time.Duration(i)*7*time.Second))
			all = append(all, e)
			if err := w.Record(ctx, []event.Event{e}); err != nil {
				t.Fatal(err)
			}
		}
		end := sess.StartedAt.Add(70 * time.Minute)
		sess.EndedAt = &end
		sess.DroppedEvents *= 10 // the latest record counts
		if err := w.RecordSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, sess)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    stats.Query
	}{
		{"everything", stats.Query{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(5 * time.Hour)}},
		{"server", stats.Query{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(5 * time.Hour), Server: "git"}},
		{"first hour", stats.Query{Since: baseTime, Until: baseTime.Add(time.Hour)}},
		{"later", stats.Query{Since: baseTime.Add(150 * time.Minute), Until: baseTime.Add(6 * time.Hour)}},
		{"empty", stats.Query{Since: baseTime.Add(24 * time.Hour), Until: baseTime.Add(25 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg := stats.NewAggregator(tt.q.Since, tt.q.Until, tt.q.Server)
			for i := range all {
				agg.Add(&all[i])
			}
			for i := range sessions {
				if sessionInWindow(&sessions[i], tt.q) {
					agg.AddDropped(sessions[i].DroppedEvents)
				}
			}
			want := agg.Result()
			// The first pass reads the segments (and writes their
			// summaries), the second merges the summaries.
			for _, pass := range []string{"read", "summarized"} {
				got, err := mustOpen(t, home, Options{}).Stats(ctx, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
					t.Errorf("%s: stats differ:\n got %s\nwant %s", pass, g, w)
				}
			}
		})
	}
	got, err := s.Stats(ctx, tests[0].q)
	if err != nil {
		t.Fatal(err)
	}
	if got.Totals.Events != int64(len(all)) || got.Totals.DroppedEvents != 60 {
		t.Errorf("totals = %+v, want %d events and 60 dropped", got.Totals, len(all))
	}
}

func TestSessionInWindow(t *testing.T) {
	end := baseTime.Add(time.Hour)
	q := stats.Query{Since: baseTime.Add(30 * time.Minute), Until: baseTime.Add(2 * time.Hour)}
	tests := []struct {
		name string
		sess event.Session
		q    stats.Query
		want bool
	}{
		{"overlaps", event.Session{StartedAt: baseTime, EndedAt: &end}, q, true},
		{"still running", event.Session{StartedAt: baseTime}, q, true},
		{"ended before", event.Session{StartedAt: baseTime, EndedAt: &end}, stats.Query{Since: end.Add(time.Minute), Until: end.Add(time.Hour)}, false},
		{"starts after", event.Session{StartedAt: q.Until}, q, false},
		{"other server", event.Session{StartedAt: baseTime, Server: "a"}, stats.Query{Since: q.Since, Until: q.Until, Server: "b"}, false},
	}
	for _, tt := range tests {
		if got := sessionInWindow(&tt.sess, tt.q); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// writeSegment records evs in a segment of its own and closes it.
func writeSegment(t *testing.T, s *Store, sid string, evs []event.Event) {
	t.Helper()
	ctx := context.Background()
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, testSession(sid, "files")); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func eventsAt(sid, prefix string, n int, ts time.Time) []event.Event {
	var evs []event.Event
	for i := range n {
		evs = append(evs, testEvent(sid, fmt.Sprint(prefix, i), i, ts))
	}
	return evs
}

func countEvents(t *testing.T, s *Store) int {
	t.Helper()
	page, err := s.Activity(context.Background(), activity.Query{Limit: activity.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Events)
}

func TestRetentionByAge(t *testing.T) {
	ctx := context.Background()
	now := baseTime.Add(40 * 24 * time.Hour)
	clock := func() time.Time { return now }
	for _, spool := range []bool{false, true} {
		t.Run(fmt.Sprint("spool=", spool), func(t *testing.T) {
			home := t.TempDir()
			s := mustOpen(t, home, Options{Now: clock})
			writeSegment(t, s, testID("old"), eventsAt(testID("old"), "old", 10, baseTime))               // 40 days old
			writeSegment(t, s, testID("new"), eventsAt(testID("new"), "new", 10, now.Add(-24*time.Hour))) // a day old
			live, err := s.NewWriter(ctx, testID("live"))
			if err != nil {
				t.Fatal(err)
			}
			defer live.Close()
			if err := live.Record(ctx, eventsAt(testID("live"), "live", 10, baseTime)); err != nil {
				t.Fatal(err)
			}
			if err := live.Flush(); err != nil {
				t.Fatal(err)
			}

			opts := Options{Now: clock, RetentionDays: 30, Spool: spool}
			s = mustOpen(t, home, opts)
			if spool {
				// Unshipped: kept however old.
				if got := countEvents(t, s); got != 30 {
					t.Fatalf("%d events before shipping, want 30", got)
				}
				for {
					c, err := s.Claim(ctx, 1000, 0)
					if err != nil {
						t.Fatal(err)
					}
					if c == nil {
						break
					}
					if err := c.Ack(ctx); err != nil {
						t.Fatal(err)
					}
				}
				s = mustOpen(t, home, opts)
			}
			// The old sealed segment goes; the live one stays however old.
			if got := countEvents(t, s); got != 20 {
				t.Errorf("%d events after retention, want 20", got)
			}
			page, _ := s.Activity(ctx, activity.Query{SessionID: testID("old")})
			if len(page.Events) != 0 {
				t.Errorf("old events still there")
			}
		})
	}
}

func TestRetentionBySize(t *testing.T) {
	ctx := context.Background()
	for _, spool := range []bool{false, true} {
		t.Run(fmt.Sprint("spool=", spool), func(t *testing.T) {
			home := t.TempDir()
			s := mustOpen(t, home, Options{})
			var sizes []int64
			for i := range 4 {
				sid := testID(fmt.Sprint("seg", i))
				writeSegment(t, s, sid, eventsAt(sid, fmt.Sprint("seg", i, "-"), 50, baseTime.Add(time.Duration(i)*time.Minute)))
				segs, _ := s.segments()
				sizes = append(sizes, segs[len(segs)-1].size)
			}
			if spool {
				// Ship the first two segments, except one... the third
				// segment's events stay unshipped, and so does the fourth.
				c, err := s.Claim(ctx, 100, 0)
				if err != nil || c == nil || len(c.Events()) != 100 {
					t.Fatalf("claim: %v %v", c, err)
				}
				if err := c.Ack(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// Room for the last segment and a bit: the oldest three go.
			limit := sizes[3] + sizes[3]/2
			s = mustOpen(t, home, Options{RetentionBytes: limit, Spool: spool})
			if got := countEvents(t, s); got != 50 {
				t.Errorf("%d events left, want 50 (the newest segment)", got)
			}
			info, err := s.Pending(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantLost := int64(0)
			if spool {
				wantLost = 50 // the third segment was never shipped
			}
			if info.Lost != wantLost {
				t.Errorf("lost = %d, want %d", info.Lost, wantLost)
			}
		})
	}
}

func TestClaimAckRelease(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	sidA, sidB := testID("a"), testID("b")
	writeSegment(t, s, sidA, eventsAt(sidA, "a", 30, baseTime))
	writeSegment(t, s, sidB, eventsAt(sidB, "b", 30, baseTime))

	c1, err := s.Claim(ctx, 20, 0)
	if err != nil || c1 == nil {
		t.Fatalf("claim = %v, %v", c1, err)
	}
	if len(c1.Events()) != 20 || c1.Events()[0].ID != testID("a0") {
		t.Fatalf("claimed %d events starting %s", len(c1.Events()), c1.Events()[0].ID)
	}
	if len(c1.Sessions()) != 1 || c1.Sessions()[0].ID != sidA {
		t.Errorf("claim sessions = %+v, want session a", c1.Sessions())
	}
	// A second claim (a lock on another descriptor, as another process
	// would hold) skips the claimed segment.
	c2, err := s.Claim(ctx, 100, 0)
	if err != nil || c2 == nil {
		t.Fatalf("second claim = %v, %v", c2, err)
	}
	for _, e := range c2.Events() {
		if e.SessionID != sidB {
			t.Fatalf("second claim took %s from a claimed segment", e.ID)
		}
	}
	if err := c2.Release(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c1.Ack(ctx); err == nil {
		t.Error("second Ack succeeded")
	}

	// Ack survives reopening; released events come back.
	s = mustOpen(t, home, Options{})
	info, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Events != 40 || info.Segments != 2 {
		t.Errorf("pending = %+v, want 40 events in 2 segments", info)
	}
	c3, err := s.Claim(ctx, 1000, 0)
	if err != nil || c3 == nil {
		t.Fatalf("claim = %v, %v", c3, err)
	}
	var ids []string
	for _, e := range c3.Events() {
		ids = append(ids, e.ID)
	}
	want := []string{}
	for i := 20; i < 30; i++ {
		want = append(want, testID(fmt.Sprint("a", i)))
	}
	for i := range 30 {
		want = append(want, testID(fmt.Sprint("b", i)))
	}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("claimed %d events, want a20..a29 then b0..b29", len(ids))
	}
	if len(c3.Sessions()) != 2 {
		t.Errorf("claim sessions = %d, want 2", len(c3.Sessions()))
	}
	if err := c3.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Claim(ctx, 1000, 0); c != nil || err != nil {
		t.Errorf("claim with nothing pending = %v, %v", c, err)
	}
}

func TestClaimMaxBytes(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{})
	sid := testID("bytes")
	writeSegment(t, s, sid, eventsAt(sid, "x", 10, baseTime))
	c, err := s.Claim(ctx, 100, 1) // one event always goes
	if err != nil || c == nil || len(c.Events()) != 1 {
		t.Fatalf("claim = %v, %v", c, err)
	}
	c.Release()
	c, err = s.Claim(ctx, 100, 1500)
	if err != nil || c == nil || len(c.Events()) < 2 || len(c.Events()) == 10 {
		t.Fatalf("claim of 1500 bytes = %d events, %v", len(c.Events()), err)
	}
	c.Release()
}

func TestClaimLiveSegment(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{})
	sid := testID("live")
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sess := testSession(sid, "files")
	if err := w.RecordSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	total := 0
	for round := range 3 {
		if err := w.Record(ctx, eventsAt(sid, fmt.Sprint("r", round, "-"), 5, baseTime)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		c, err := s.Claim(ctx, 100, 0)
		if err != nil || c == nil {
			t.Fatalf("round %d: claim = %v, %v", round, c, err)
		}
		if len(c.Events()) != 5 {
			t.Errorf("round %d: %d events, want 5", round, len(c.Events()))
		}
		// The session record precedes the range in later rounds.
		if len(c.Sessions()) != 1 || c.Sessions()[0].ID != sid {
			t.Errorf("round %d: sessions = %+v", round, c.Sessions())
		}
		total += len(c.Events())
		if err := c.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An end-of-session update alone is shipped too.
	end := baseTime.Add(time.Minute)
	sess.EndedAt = &end
	if err := w.RecordSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, 100, 0)
	if err != nil || c == nil || len(c.Events()) != 0 || len(c.Sessions()) != 1 || c.Sessions()[0].EndedAt == nil {
		t.Fatalf("session-only claim = %+v, %v", c, err)
	}
	c.Ack(ctx)
}

func TestSetAside(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	sid := testID("reject")
	writeSegment(t, s, sid, eventsAt(sid, "r", 8, baseTime))
	c, err := s.Claim(ctx, 5, 0)
	if err != nil || c == nil {
		t.Fatal(c, err)
	}
	refused := c.Events()[2:3]
	for range 2 { // again, as after a crash before the Ack: one copy
		if err := c.SetAside(ctx, "400 invalid: events[0].ts: out of range", nil, refused); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, home, Options{})
	info, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Events != 3 {
		t.Errorf("pending events = %d, want 3", info.Events)
	}
	if len(info.SetAside) != 1 || info.SetAside[0].Events != 1 || !strings.Contains(info.SetAside[0].Reason, "events[0]") ||
		!slices.Equal(info.SetAside[0].IDs, []string{testID("r2")}) {
		t.Fatalf("set aside = %+v", info.SetAside)
	}
	b, err := os.ReadFile(info.SetAside[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	var rec rejectedBatch
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Batch.Events) != 1 || len(rec.Batch.Sessions) != 1 {
		t.Errorf("set-aside file: %v, %d events", err, len(rec.Batch.Events))
	}
	// Session records: one file per record, once each.
	c2, err := s.Claim(ctx, 1, 0)
	if err != nil || c2 == nil {
		t.Fatal(c2, err)
	}
	srec := testSession(sid, "files")
	ended := srec
	ended.EndedAt = &baseTime
	for _, r := range []event.Session{srec, srec, ended} {
		if err := c2.SetAside(ctx, "500", []event.Session{r}, nil); err != nil {
			t.Fatal(err)
		}
	}
	c2.Release()
	if info, err = s.Pending(ctx); err != nil || len(info.SetAside) != 3 {
		t.Fatalf("set aside after session records = %+v, %v", info.SetAside, err)
	}
	for _, b := range info.SetAside[1:] {
		if b.Sessions != 1 || b.Events != 0 || len(b.IDs) != 1 || b.IDs[0] != sid {
			t.Errorf("set-aside session record %+v", b)
		}
	}
	// A set-aside file that cannot be read is listed, not logged.
	if err := os.WriteFile(filepath.Join(home, "rejected", "20260101T000000.000000000Z-x.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err = s.Pending(ctx); err != nil || len(info.SetAside) != 4 || !strings.Contains(info.SetAside[0].Reason, "cannot be read") {
		t.Fatalf("set aside with a damaged file = %+v, %v", info.SetAside, err)
	}
	// Never retried: the next claim starts after them.
	c, err = s.Claim(ctx, 100, 0)
	if err != nil || c == nil || len(c.Events()) != 3 || c.Events()[0].ID != testID("r5") {
		t.Fatalf("claim after set-aside = %+v, %v", c, err)
	}
	c.Release()
}

// TestClaimAcrossProcesses ships from several processes at once: every event
// is shipped exactly once.
func TestClaimAcrossProcesses(t *testing.T) {
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	want := map[string]bool{}
	for i := range 12 {
		sid := testID(fmt.Sprint("ship", i))
		evs := eventsAt(sid, fmt.Sprint("ship", i, "-"), 40, baseTime)
		writeSegment(t, s, sid, evs)
		for _, e := range evs {
			want[e.ID] = true
		}
	}
	// This process holds a claim on the first segment all along: no
	// helper may ship it.
	held, err := s.Claim(context.Background(), 40, 0)
	if err != nil || held == nil {
		t.Fatal(held, err)
	}
	heldIDs := map[string]bool{}
	for _, e := range held.Events() {
		heldIDs[e.ID] = true
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for p := range 3 {
		cmd := helper(t, "ship", helperArgs{Home: home, Batch: 15 + p})
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("shipper: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range lines(string(out)) {
				got[id]++
			}
		}()
	}
	wg.Wait()
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s shipped %d times", id, n)
		}
		if heldIDs[id] {
			t.Errorf("event %s shipped while claimed by another process", id)
		}
	}
	if len(got) != len(want)-len(heldIDs) {
		t.Errorf("shipped %d events, want %d", len(got), len(want)-len(heldIDs))
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	// Released: another process ships them now.
	ids := runHelperOutput(t, helper(t, "claim-once", helperArgs{Home: home}))
	if len(ids) != len(heldIDs) {
		t.Errorf("after release, %d events shipped, want %d", len(ids), len(heldIDs))
	}
}

// A Record that fails part-way says how many of its events it recorded, so
// the monitor does not count those as dropped. Here the first event fills
// the segment and sealing it fails (its directory is gone).
func TestRecordFailingPartWayReportsWritten(t *testing.T) {
	home := t.TempDir()
	s := mustOpen(t, home, Options{SegmentBytes: 1})
	ctx := context.Background()
	w, err := s.NewWriter(ctx, testID("sess"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.Dir()); err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{
		testEvent(testID("sess"), "a", 0, baseTime),
		testEvent(testID("sess"), "b", 1, baseTime),
		testEvent(testID("sess"), "c", 2, baseTime),
	}
	err = w.Record(ctx, evs)
	var pe *PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Record = %v, want a *PartialError", err)
	}
	if pe.RecordedEvents() != 1 {
		t.Errorf("RecordedEvents() = %d, want 1", pe.RecordedEvents())
	}
	if pe.Unwrap() == nil || !strings.Contains(pe.Error(), "recorded 1 events") {
		t.Errorf("error %q does not carry the cause and the count", pe.Error())
	}
	w.Close()
}

func TestNewSegmentID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9]{19}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, at := range []time.Time{time.Unix(0, 0), time.Unix(0, 7), time.Date(2026, 12, 3, 12, 0, 0, 1, time.UTC),
		time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC), time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for range 100 {
			id := newSegmentID(at)
			if !re.MatchString(id) {
				t.Fatalf("newSegmentID(%v) = %q", at, id)
			}
			if ns := max(at.UnixNano(), 0); id[:19] != fmt.Sprintf("%019d", ns) {
				t.Fatalf("newSegmentID(%v) = %q, want the time %019d first", at, id, ns)
			}
			if seen[id] {
				t.Fatalf("newSegmentID made %q twice", id)
			}
			seen[id] = true
		}
	}
	if a, b := newSegmentID(time.Unix(9, 0)), newSegmentID(time.Unix(10, 0)); a >= b {
		t.Errorf("ids do not sort by time: %q, %q", a, b)
	}
}
