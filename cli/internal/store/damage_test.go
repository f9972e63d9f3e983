package store

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// damagedStore writes one sealed segment of n events (line 0 is the
// session record, line i+1 event i), lets damage change its bytes, and
// opens the store again with a logger that keeps what it says.
func damagedStore(t *testing.T, n int, damage func(b []byte, lineStart []int) []byte) (*Store, []event.Event, *bytes.Buffer) {
	t.Helper()
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	sid := testID("damaged")
	evs := eventsAt(sid, "dmg", n, baseTime)
	for i := range evs {
		evs[i].TS = baseTime.Add(time.Duration(i) * time.Second)
	}
	writeSegment(t, s, sid, evs)
	files := segmentFiles(t, s)
	if len(files) != 1 {
		t.Fatalf("%d segments", len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	starts := []int{0}
	for i, c := range b {
		if c == '\n' && i+1 < len(b) {
			starts = append(starts, i+1)
		}
	}
	if len(starts) != n+1 {
		t.Fatalf("%d lines for %d events", len(starts), n)
	}
	if err := os.WriteFile(files[0], damage(bytes.Clone(b), starts), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	return mustOpen(t, home, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}), evs, &logs
}

func overwrite(b []byte, at int, with string) []byte {
	copy(b[at:], with)
	return b
}

// TestDamagedSegment overwrites parts of a sealed segment in place, as a
// disk error or a stray write would: only the records on damaged lines are
// lost, every other event is still listed, counted and shipped, and the
// loss is counted, once, and said once.
func TestDamagedSegment(t *testing.T) {
	const n = 12
	garbage := strings.Repeat("\x00", 40)
	for _, c := range []struct {
		name   string
		damage func(b []byte, line []int) []byte
		lost   []int // events whose records are gone
		want   Unreadable
	}{
		{"zeros inside one line", func(b []byte, line []int) []byte {
			return overwrite(b, line[4]+10, garbage)
		}, []int{3}, Unreadable{Lines: 1, Segments: 1}},
		// The fields of the line before are intact: its event is still
		// listed, without its payload.
		{"zeros over the newline between two lines", func(b []byte, line []int) []byte {
			return overwrite(b, line[6]-20, garbage)
		}, []int{5}, Unreadable{Lines: 1, Segments: 1}},
		{"the newline before an intact line", func(b []byte, line []int) []byte {
			return overwrite(b, line[8]-3, "XYZ")
		}, nil, Unreadable{Lines: 1, Segments: 1}},
		{"random text over two whole lines", func(b []byte, line []int) []byte {
			return overwrite(b, line[2], strings.Repeat("lorem ipsum ", (line[4]-line[2])/12+1))
		}, []int{1, 2, 3}, Unreadable{Lines: 1, Segments: 1}},
		{"the first line", func(b []byte, line []int) []byte {
			return overwrite(b, 0, "{{{{")
		}, nil, Unreadable{Lines: 1, Segments: 1}}, // the session record: the index still has it
		{"the end of the segment", func(b []byte, line []int) []byte {
			return overwrite(b, len(b)-5, "@@@@@")
		}, []int{n - 1}, Unreadable{Lines: 1, Segments: 1}},
		{"two places", func(b []byte, line []int) []byte {
			b = overwrite(b, line[2]+30, `""`)
			return overwrite(b, line[10]+1, "!")
		}, []int{1, 9}, Unreadable{Lines: 2, Segments: 1}},
		{"a payload", func(b []byte, line []int) []byte {
			i := bytes.Index(b[line[5]:], []byte(`"params"`))
			return overwrite(b, line[5]+i, "#")
		}, nil, Unreadable{Payloads: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s, evs, logs := damagedStore(t, n, c.damage)
			var want []string
			for i, e := range evs {
				if !slices.Contains(c.lost, i) {
					want = append(want, e.ID)
				}
			}
			slices.Sort(want)

			page, err := s.Activity(ctx, activity.Query{Limit: activity.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range page.Events {
				got = append(got, e.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("activity lists %d events, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
			}
			st, err := s.Stats(ctx, stats.Query{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if st.Totals.Events != int64(len(want)) {
				t.Errorf("stats count %d events, want %d", st.Totals.Events, len(want))
			}
			claim, err := s.Claim(ctx, 100, 0)
			if err != nil || claim == nil {
				t.Fatalf("claim: %v, %v", claim, err)
			}
			got = got[:0]
			for _, e := range claim.Events() {
				got = append(got, e.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("claim takes %d events, want %d", len(got), len(want))
			}
			if err := claim.Ack(ctx); err != nil {
				t.Fatal(err)
			}

			u := s.Unreadable()
			if u.Lines != c.want.Lines || u.Segments != c.want.Segments || u.Payloads != c.want.Payloads || u.IndexesRebuilt != 0 ||
				u.Events != int64(len(c.lost)) ||
				(u.Lines > 0) != (u.Bytes > 0) {
				t.Errorf("unreadable = %#v, want %#v", u, c.want)
			}
			var stderr bytes.Buffer
			s.ReportUnreadable(&stderr)
			s.ReportUnreadable(&stderr)
			if strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "the local store is damaged") {
				t.Errorf("report:\n%s", stderr.String())
			}
			if logs.Len() > 0 {
				t.Errorf("the store logged:\n%s", logs.String())
			}
		})
	}
}

// TestDamagedIndexIsRebuilt: a segment index that cannot be read is
// rebuilt from its segment when the store is opened, said once, logged
// nowhere, and not rebuilt again.
func TestDamagedIndexIsRebuilt(t *testing.T) {
	for name, damage := range map[string]string{
		"garbage":  "\x00\x01 not json",
		"cut":      `{"id":"`,
		"empty":    "",
		"not meta": `[1,2,3]`,
	} {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			s := mustOpen(t, home, Options{})
			sid := testID("index")
			evs := eventsAt(sid, "idx", 30, baseTime)
			writeSegment(t, s, sid, evs)
			segs, err := s.segments()
			if err != nil || len(segs) != 1 || segs[0].meta == nil {
				t.Fatalf("segments %+v, %v", segs, err)
			}
			before := *segs[0].meta
			if err := os.WriteFile(s.path(before.ID, ".meta"), []byte(damage), 0o600); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			s = mustOpen(t, home, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if u := s.Unreadable(); u != (Unreadable{IndexesRebuilt: 1}) {
				t.Errorf("unreadable = %#v", u)
			}
			if n := countEvents(t, s); n != len(evs) {
				t.Errorf("%d events listed, want %d", n, len(evs))
			}
			var stderr bytes.Buffer
			s.ReportUnreadable(&stderr)
			if !strings.Contains(stderr.String(), "1 damaged segment index could not be read and was rebuilt") {
				t.Errorf("report: %q", stderr.String())
			}
			if logs.Len() > 0 {
				t.Errorf("the store logged:\n%s", logs.String())
			}
			after, err := s.readMeta(before.ID)
			if err != nil {
				t.Fatalf("index not rebuilt: %v", err)
			}
			if after.Events != before.Events || !after.MinTS.Equal(before.MinTS) || !after.MaxTS.Equal(before.MaxTS) ||
				after.Bytes != before.Bytes || after.SessionID != before.SessionID || len(after.Sessions) != len(before.Sessions) {
				t.Errorf("rebuilt index %+v, was %+v", after, before)
			}
			if s = mustOpen(t, home, Options{}); !s.Unreadable().IsZero() {
				t.Errorf("after the rebuild: %#v", s.Unreadable())
			}
		})
	}
}

// A damaged shipping offset log falls back to the last offset it holds:
// what was shipped after it goes again (the API counts duplicates), and
// nothing is skipped.
func TestDamagedAckedLog(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{Spool: true})
	sid := testID("acked")
	writeSegment(t, s, sid, eventsAt(sid, "ack", 10, baseTime))
	c, err := s.Claim(ctx, 4, 0)
	if err != nil || c == nil {
		t.Fatal(c, err)
	}
	if err := c.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	id := c.parts[0].seg
	f, err := os.OpenFile(s.path(id, ".acked"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("12\x0034\n")
	f.Close()

	s = mustOpen(t, home, Options{Spool: true})
	p, err := s.Pending(ctx)
	if err != nil || p.Events != 6 {
		t.Fatalf("pending %+v, %v", p, err)
	}
	c, err = s.Claim(ctx, 100, 0)
	if err != nil || c == nil || len(c.Events()) != 6 || c.Events()[0].ID != testID("ack4") {
		t.Fatalf("claim after the damage: %+v, %v", c, err)
	}
	c.Release()
	if u := s.Unreadable(); u.Lines != 1 {
		t.Errorf("unreadable = %#v", u)
	}
}

// The segment of a writer that died is recovered with its lines read
// whole: a record after a damaged region is indexed and read, and the
// damage counted.
func TestRecoveredSegmentWithDamage(t *testing.T) {
	const n = 12
	s, evs, _ := damagedStore(t, n, func(b []byte, line []int) []byte {
		return overwrite(b, line[8]-3, "XYZ")
	})
	segs, err := s.segments()
	if err != nil || len(segs) != 1 {
		t.Fatal(segs, err)
	}
	if err := os.Remove(s.path(segs[0].id, ".meta")); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, s.home, Options{})
	m, err := s.readMeta(segs[0].id)
	if err != nil || !m.Recovered || m.Events != n {
		t.Fatalf("recovered index %+v, %v", m, err)
	}
	if got := countEvents(t, s); got != len(evs) {
		t.Errorf("%d events listed, want %d", got, len(evs))
	}
	if u := s.Unreadable(); u.Lines != 1 || u.IndexesRebuilt != 0 {
		t.Errorf("unreadable = %#v", u)
	}
}

// damageCase overwrites n bytes of a segment at off with bytes from fill.
type damageCase struct {
	off, n int
	fill   []byte
}

// checkDamage damages a copy of a sealed segment and checks the class
// invariants: reading never fails; every event whose line (and the newline
// before it) the damage left alone is listed, counted and claimed; an event
// that is not listed is accounted for in Unreadable; activity and claims
// agree.
func checkDamage(t *testing.T, seg []byte, meta []byte, evs []event.Event, lineStart []int, dc damageCase) {
	t.Helper()
	ctx := context.Background()
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	id := newSegmentID(baseTime)
	b := bytes.Clone(seg)
	if dc.off >= len(b) {
		dc.off = len(b) - 1
	}
	for i := 0; i < dc.n && dc.off+i < len(b); i++ {
		b[dc.off+i] = dc.fill[i%len(dc.fill)]
	}
	if err := os.WriteFile(s.path(id, ".jsonl"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var m segMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		t.Fatal(err)
	}
	m.ID = id
	if err := s.writeMeta(&m); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, home, Options{})

	page, err := s.Activity(ctx, activity.Query{Limit: activity.MaxLimit})
	if err != nil {
		t.Fatalf("activity after damage %+v: %v", dc, err)
	}
	listed := map[string]bool{}
	for _, e := range page.Events {
		listed[e.ID] = true
	}
	end := dc.off + dc.n
	for i, e := range evs {
		from, to := lineStart[i+1]-1, len(seg) // the newline before the line, and the line
		if i+2 < len(lineStart) {
			to = lineStart[i+2]
		}
		untouched := end <= from || dc.off >= to
		if untouched && !listed[e.ID] {
			t.Errorf("damage %+v hid event %d, whose line it left alone", dc, i)
		}
	}
	u := s.Unreadable()
	if len(page.Events) < len(evs) && u.Events < int64(len(evs)-len(page.Events)) {
		t.Errorf("damage %+v: %d of %d events listed, and nothing said", dc, len(page.Events), len(evs))
	}
	if _, err := s.Stats(ctx, stats.Query{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(time.Hour)}); err != nil {
		t.Errorf("stats after damage %+v: %v", dc, err)
	}
	c, err := s.Claim(ctx, 1000, 0)
	if err != nil {
		t.Fatalf("claim after damage %+v: %v", dc, err)
	}
	var claimed int
	if c != nil {
		for _, e := range c.Events() {
			if !listed[e.ID] {
				t.Errorf("damage %+v: claimed %s, not listed", dc, e.ID)
			}
			claimed++
		}
		c.Release()
	}
	if claimed != len(page.Events) {
		t.Errorf("damage %+v: %d events claimed, %d listed", dc, claimed, len(page.Events))
	}
	// Shipping alone, as a background shipper does, says so too.
	s = mustOpen(t, home, Options{})
	if c, err = s.Claim(ctx, 1000, 0); err != nil {
		t.Fatalf("claim after damage %+v: %v", dc, err)
	}
	claimed = 0
	if c != nil {
		claimed = len(c.Events())
		c.Release()
	}
	if u := s.Unreadable(); claimed < len(evs) && u.Lines == 0 && u.Events < int64(len(evs)-claimed) {
		t.Errorf("damage %+v: a claim took %d of %d events, and nothing said: %#v", dc, claimed, len(evs), u)
	}
}

// sealedSegment is the bytes and index of a sealed segment of n events,
// and where its lines start.
func sealedSegment(t testing.TB, n int) (seg, meta []byte, evs []event.Event, lineStart []int) {
	home := t.TempDir()
	s := mustOpen(t, home, Options{})
	sid := testID("fuzz")
	evs = eventsAt(sid, "fz", n, baseTime)
	for i := range evs {
		evs[i].TS = baseTime.Add(time.Duration(i) * time.Second)
	}
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
	segs, err := s.segments()
	if err != nil || len(segs) != 1 {
		t.Fatal(segs, err)
	}
	if seg, err = os.ReadFile(s.path(segs[0].id, ".jsonl")); err != nil {
		t.Fatal(err)
	}
	if meta, err = os.ReadFile(s.path(segs[0].id, ".meta")); err != nil {
		t.Fatal(err)
	}
	lineStart = []int{0}
	for i, c := range seg {
		if c == '\n' && i+1 < len(seg) {
			lineStart = append(lineStart, i+1)
		}
	}
	return seg, meta, evs, lineStart
}

// TestRandomDamage: regions of every size, anywhere, filled with zeros,
// text, JSON punctuation or newlines.
func TestRandomDamage(t *testing.T) {
	seg, meta, evs, lineStart := sealedSegment(t, 10)
	rng := rand.New(rand.NewPCG(7, 8))
	fills := [][]byte{{0}, []byte("lorem ipsum "), []byte(`{"e":`), []byte("}\n"), []byte(`"`), []byte("\xff\xfe")}
	for range 300 {
		dc := damageCase{off: rng.IntN(len(seg)), n: 1 + rng.IntN(300), fill: fills[rng.IntN(len(fills))]}
		checkDamage(t, seg, meta, evs, lineStart, dc)
	}
}

func FuzzDamage(f *testing.F) {
	f.Add(100, 10, []byte{0})
	f.Add(500, 3, []byte("XYZ"))
	f.Add(0, 4, []byte("{{{{"))
	seg, meta, evs, lineStart := sealedSegment(f, 6)
	f.Fuzz(func(t *testing.T, off, n int, fill []byte) {
		if off < 0 || n <= 0 || n > 4096 || len(fill) == 0 {
			return
		}
		checkDamage(t, seg, meta, evs, lineStart, damageCase{off % len(seg), n, fill})
	})
}
