package store

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// scanSegment calls onEvent with the decoded fields (not the payload) of
// every event line of sg from offset from, and onSession with every session
// line; either may be nil, and then those lines are not decoded. Damaged
// lines are skipped and counted (scanRecords), and so is the torn end of a
// sealed segment, which only damage can leave.
//
// Lines are read by their fields alone, for speed, so a damaged region that
// swallowed the newline after a record whose fields are intact goes
// unnoticed as such. It shows in the count: a sealed segment read whole
// that yields fewer events than its index holds is read again for lines
// that are not whole JSON; those are counted, and the records they end with
// passed on.
func (s *Store) scanSegment(ctx context.Context, sg segment, from int64,
	onEvent func(e *event.Event, off int64, n int) error,
	onSession func(sess event.Session) error,
) (int64, error) {
	var ev event.Event
	var events int64
	var failed map[int64]bool // lines found damaged by the first pass
	handle := func(off int64, rec []byte) (bool, error) {
		ok, err := true, error(nil)
		switch kindOf(rec) {
		case lineEvent:
			if onEvent == nil {
				break
			}
			if ok = fieldsIntact(rec) && decodeEventMeta(rec, &ev) == nil; ok {
				events++
				err = onEvent(&ev, off, len(rec))
			}
		case lineSession:
			if onSession == nil {
				break
			}
			var sess event.Session
			if sess, err = decodeSession(rec); err != nil || !utf8.Valid(rec) {
				ok, err = false, nil
			} else {
				err = onSession(sess)
			}
		default:
			ok = false
		}
		if !ok {
			if failed == nil {
				failed = map[int64]bool{}
			}
			failed[off] = true
		}
		return ok, err
	}
	end, err := s.scanRecords(ctx, sg.id, from, handle)
	if errors.Is(err, fs.ErrNotExist) {
		return end, nil // deleted by retention since it was listed
	}
	if err != nil || sg.meta == nil {
		return end, err
	}
	if end < sg.size {
		s.damage.line(sg.id, end, sg.size-end)
	}
	if from > 0 || onEvent == nil || events >= sg.meta.Events {
		return end, nil
	}
	_, err = scanLines(ctx, s.path(sg.id, ".jsonl"), 0, func(off int64, line []byte) error {
		if kindOf(line) == lineUnknown || failed[off] || lineIntact(line) {
			return nil // read, or found damaged, the first time
		}
		s.damage.line(sg.id, off, int64(len(line))+1)
		if rec := salvage(line); rec != nil {
			_, err := handle(off+int64(len(line)-len(rec)), rec)
			return err
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if events < sg.meta.Events {
		// Swallowed whole by damage that left its line valid JSON, or on
		// lines that could not be read: gone either way, and said so.
		s.damage.lost(sg.id, sg.meta.Events-events)
	}
	return end, err
}

// foldInto is fold.Add as a scanSegment callback. Every reader folds
// session records by event.MergeSession, in the order the segments (oldest
// first) and their lines hold them.
func foldInto(fold event.SessionFold) func(event.Session) error {
	return func(sess event.Session) error {
		fold.Add(sess)
		return nil
	}
}

// foldSessions reads every session record. Sealed segments answer from
// their index; live ones are read.
func (s *Store) foldSessions(ctx context.Context, segs []segment) (event.SessionFold, error) {
	fold := event.SessionFold{}
	for _, sg := range segs {
		if sg.meta != nil {
			for _, sess := range sg.meta.Sessions {
				fold.Add(sess)
			}
			continue
		}
		if _, err := s.scanSegment(ctx, sg, 0, nil, foldInto(fold)); err != nil {
			return nil, err
		}
	}
	return fold, nil
}

// SessionRecords returns the latest record of every session in the store,
// most recently started first.
func (s *Store) SessionRecords(ctx context.Context) ([]event.Session, error) {
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	fold, err := s.foldSessions(ctx, segs)
	if err != nil {
		return nil, err
	}
	out := make([]event.Session, 0, len(fold))
	for _, sess := range fold {
		out = append(out, sess)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// Stats answers a stats query from the store with the reference
// stats.Aggregator. Dropped events come from the sessions that overlap the
// window (and match the server filter). A query with a zero bound is aligned
// first (see stats.Query.Align).
func (s *Store) Stats(ctx context.Context, q stats.Query) (stats.Stats, error) {
	if q.Since.IsZero() || q.Until.IsZero() {
		q = q.Align(s.now())
	}
	segs, err := s.segments()
	if err != nil {
		return stats.Stats{}, err
	}
	agg := stats.NewAggregator(q.Since, q.Until, q.Server)
	fold := event.SessionFold{}
	add := func(e *event.Event, _ int64, _ int) error {
		agg.Add(e)
		return nil
	}
	for _, sg := range segs {
		if m := sg.meta; m != nil {
			for _, sess := range m.Sessions {
				fold.Add(sess)
			}
			if !m.overlaps(q.Since, q.Until) {
				continue
			}
			// A segment wholly in the (minute-aligned) window is
			// answered by its summary, made now if it has none.
			if !m.MinTS.Before(q.Since) && m.MaxTS.Before(q.Until) {
				sum := s.readSummary(sg, true)
				if sum == nil {
					if sum, err = s.scanSummarized(ctx, sg, nil); err != nil {
						return stats.Stats{}, err
					}
				}
				if sum != nil {
					for server, p := range sum.Stats {
						if q.Server == "" || server == q.Server {
							agg.Merge(p)
						}
					}
					continue
				}
			}
			if _, err := s.scanSummarized(ctx, sg, add); err != nil {
				return stats.Stats{}, err
			}
			continue
		}
		if _, err := s.scanSegment(ctx, sg, 0, add, foldInto(fold)); err != nil {
			return stats.Stats{}, err
		}
	}
	for _, sess := range fold {
		if sessionInWindow(&sess, q) {
			agg.AddDropped(sess.DroppedEvents)
		}
	}
	return agg.Result(), nil
}

// sessionInWindow reports whether a session ran during q's window on q's
// server.
func sessionInWindow(sess *event.Session, q stats.Query) bool {
	if q.Server != "" && sess.Server != q.Server {
		return false
	}
	if !sess.StartedAt.Before(q.Until) {
		return false
	}
	return sess.EndedAt == nil || !sess.EndedAt.Before(q.Since)
}

// Activity answers an activity query: matching events newest first by
// (ts, id), at most q.Limit of them, with a cursor when more remain.
func (s *Store) Activity(ctx context.Context, q activity.Query) (activity.Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	if limit > activity.MaxLimit {
		limit = activity.MaxLimit
	}
	segs, err := s.segments()
	if err != nil {
		return activity.Page{}, err
	}
	// Newest segments first, so the page fills early and older segments
	// are skipped by their time range; live segments (range unknown) lead.
	sort.SliceStable(segs, func(i, j int) bool {
		a, b := segs[i].meta, segs[j].meta
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		default:
			return a.MaxTS.After(b.MaxTS)
		}
	})
	until := q.Until
	if q.Cursor != nil && (until.IsZero() || q.Cursor.TS.Before(until)) {
		until = q.Cursor.TS.Add(time.Nanosecond) // the cursor's own instant may still hold later ids
	}
	h := &newest{}
	keep := limit + 1 // one more tells whether another page follows
	for _, sg := range segs {
		if m := sg.meta; m != nil {
			if !m.overlaps(q.Since, until) {
				continue
			}
			if h.Len() == keep && m.MaxTS.Before((*h)[0].ev.TS) {
				continue // nothing here is newer than what the page holds
			}
		}
		sum := s.readSummary(sg, false)
		if sum != nil && !sum.mayMatch(&q) {
			continue
		}
		scan := s.scanSummarized
		if sum != nil {
			scan = s.scanWhole
		}
		_, err := scan(ctx, sg, func(e *event.Event, off int64, n int) error {
			if !q.Match(e) {
				return nil
			}
			if h.Len() < keep {
				heap.Push(h, hit{ev: *e, seg: sg.id, off: off, n: n})
				return nil
			}
			if activity.Less(e, &(*h)[0].ev) {
				(*h)[0] = hit{ev: *e, seg: sg.id, off: off, n: n}
				heap.Fix(h, 0)
			}
			return nil
		})
		if err != nil {
			return activity.Page{}, err
		}
	}
	hits := []hit(*h)
	sort.Slice(hits, func(i, j int) bool { return activity.Less(&hits[i].ev, &hits[j].ev) })
	page := activity.Page{Events: []event.Event{}}
	if len(hits) > limit {
		hits = hits[:limit]
		last := hits[limit-1].ev
		page.NextCursor = activity.Cursor{TS: last.TS, ID: last.ID}.Encode()
	}
	events, err := s.loadEvents(hits)
	if err != nil {
		return activity.Page{}, err
	}
	page.Events = events
	return page, nil
}

// loadEvents reads the page's events in full, payloads included.
func (s *Store) loadEvents(hits []hit) ([]event.Event, error) {
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	out := make([]event.Event, 0, len(hits))
	var buf []byte
	for _, h := range hits {
		f := files[h.seg]
		if f == nil {
			var err error
			f, err = os.Open(s.path(h.seg, ".jsonl"))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					out = append(out, h.ev) // deleted meanwhile: keep what was read
					continue
				}
				return nil, fmt.Errorf("read event: %w", err)
			}
			files[h.seg] = f
		}
		if cap(buf) < h.n {
			buf = make([]byte, h.n)
		}
		buf = buf[:h.n]
		if _, err := f.ReadAt(buf, h.off); err != nil {
			return nil, fmt.Errorf("read event %s: %w", h.ev.ID, err)
		}
		e, err := decodeEvent(buf)
		if err != nil || !utf8.Valid(buf) {
			// The fields were read; the payload is damaged.
			s.damage.payload(h.seg, h.off)
			e = h.ev
		}
		out = append(out, e)
	}
	return out, nil
}

// hit is a matching event and where its line is.
type hit struct {
	ev  event.Event
	seg string
	off int64
	n   int
}

// newest is a heap of hits whose root is the oldest, so the newest N are
// kept by replacing the root.
type newest []hit

func (h newest) Len() int           { return len(h) }
func (h newest) Less(i, j int) bool { return activity.Less(&h[j].ev, &h[i].ev) }
func (h newest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *newest) Push(x any)        { *h = append(*h, x.(hit)) }
func (h *newest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
