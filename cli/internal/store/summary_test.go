package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// summaryStore fills a store with three sealed sessions on three servers
// and one live segment, and returns it with its writer still open.
func summaryStore(t *testing.T) (string, *Writer) {
	t.Helper()
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{SegmentBytes: 16 << 10})
	for wi := range 3 {
		sid := testID(fmt.Sprint("sum", wi))
		evs := make([]event.Event, 0, 200)
		for i := range 200 {
			e := testEvent(sid, fmt.Sprint("sum", wi, "-", i), i, baseTime.Add(time.Duration(wi*200+i)*time.Second))
			e.Server = []string{"files", "git", "web"}[wi]
			if wi == 1 && i%4 == 0 {
				e.Tool = "only_in_git"
			}
			if i == 8 {
				e.Retry = true // the same call again: not counted twice
			}
			evs = append(evs, e)
		}
		writeSegment(t, s, sid, evs)
	}
	sid := testID("sum-live")
	w, err := s.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RecordSession(ctx, testSession(sid, "files")); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, eventsAt(sid, "sum-live-", 20, baseTime.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return home, w
}

// TestSummariesAnswerAsTheLines: activity filters and sessions' counts
// answer the same from segment summaries as from the lines, and a filter
// that no summary can match reads no segment but the live one.
func TestSummariesAnswerAsTheLines(t *testing.T) {
	ctx := context.Background()
	home, _ := summaryStore(t)
	queries := []activity.Query{
		{Tool: "only_in_git"},
		{Tool: "no-such-tool"},
		{Server: "web", Kind: event.KindError},
		{SessionID: testID("sum0"), Limit: 1000},
		{Failed: true, Limit: 1000},
		{MinRisk: event.LevelHigh, Limit: 1000},
		{Method: "resources/read", Server: "files"},
	}
	read := func(stage string) ([]activity.Page, activity.SessionPage) {
		t.Helper()
		s := mustOpen(t, home, Options{})
		var pages []activity.Page
		for _, q := range queries {
			p, err := s.Activity(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			pages = append(pages, p)
		}
		sp, err := s.Sessions(ctx, activity.SessionQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return pages, sp
	}
	cold, coldSessions := read("cold")
	sums, _ := filepath.Glob(filepath.Join(home, "store", "*.sum"))
	if len(sums) < 3 {
		t.Fatalf("%d summaries written, want one per sealed segment (at least 3)", len(sums))
	}
	warm, warmSessions := read("warm")
	for i := range queries {
		if !reflect.DeepEqual(cold[i], warm[i]) {
			t.Errorf("query %+v: from summaries %d events, from the lines %d", queries[i], len(warm[i].Events), len(cold[i].Events))
		}
	}
	if len(cold[0].Events) == 0 || len(cold[1].Events) != 0 {
		t.Errorf("only_in_git matched %d events, no-such-tool %d", len(cold[0].Events), len(cold[1].Events))
	}
	if !reflect.DeepEqual(coldSessions, warmSessions) {
		t.Errorf("sessions from summaries %+v\nfrom the lines %+v", warmSessions, coldSessions)
	}
	for _, r := range warmSessions.Sessions {
		if r.ID == testID("sum0") && r.Calls != 49 { // 50 tools/call requests, one a retry
			t.Errorf("session calls = %d, want 49 (a retry is the same call)", r.Calls)
		}
	}
}

// TestSummaryOfAChangedSegmentIsNotUsed: damage done to a segment after
// its summary was written is found and counted all the same.
func TestSummaryOfAChangedSegmentIsNotUsed(t *testing.T) {
	ctx := context.Background()
	home, _ := summaryStore(t)
	s := mustOpen(t, home, Options{})
	if _, err := s.Activity(ctx, activity.Query{Tool: "no-such-tool"}); err != nil {
		t.Fatal(err)
	}
	if u := s.Unreadable(); !u.IsZero() {
		t.Fatalf("intact store reads as %+v", u)
	}
	segs, err := s.segments()
	if err != nil {
		t.Fatal(err)
	}
	// The same size, another line start: only the file's time says it
	// changed.
	path := s.path(segs[0].id, ".jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b[1000:], []byte("\n{\"e\":")) + 1001
	copy(b[at:], "garbage!")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(path, later, later) // whatever the file system's clock resolution
	s = mustOpen(t, home, Options{})
	if _, err := s.Activity(ctx, activity.Query{Tool: "no-such-tool"}); err != nil {
		t.Fatal(err)
	}
	if u := s.Unreadable(); u.Lines == 0 {
		t.Errorf("damage after the summary: unreadable = %+v, want a damaged line", u)
	}
}
