package store

import (
	"context"
	"fmt"
	"sort"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Sessions answers a sessions query: the latest record of each matching
// session, newest start first, with its calls and failed replies counted
// from its events, and a cursor when more remain.
func (s *Store) Sessions(ctx context.Context, q activity.SessionQuery) (activity.SessionPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)
	segs, err := s.segments()
	if err != nil {
		return activity.SessionPage{}, err
	}
	fold, err := s.foldSessions(ctx, segs)
	if err != nil {
		return activity.SessionPage{}, err
	}
	var after *event.Session // the previous page's last session
	if q.Cursor != nil {
		after = &event.Session{StartedAt: q.Cursor.TS, ID: q.Cursor.ID}
	}
	matched := make([]event.Session, 0, len(fold))
	for _, sess := range fold {
		if q.Match(&sess) && (after == nil || activity.SessionLess(after, &sess)) {
			matched = append(matched, sess)
		}
	}
	sort.Slice(matched, func(i, j int) bool { return activity.SessionLess(&matched[i], &matched[j]) })
	page := activity.SessionPage{Sessions: []activity.SessionRow{}}
	if len(matched) > limit {
		matched = matched[:limit]
		page.NextCursor = activity.SessionCursor(&matched[limit-1]).Encode()
	}
	rows := make(map[string]*activity.SessionRow, len(matched))
	page.Sessions = make([]activity.SessionRow, len(matched))
	for i, sess := range matched {
		page.Sessions[i].Session = sess
		rows[sess.ID] = &page.Sessions[i]
	}
	if len(rows) == 0 {
		return page, nil
	}
	counts := make(map[string]*sessionCount, len(rows))
	for id := range rows {
		counts[id] = &sessionCount{}
	}
	count := func(e *event.Event, _ int64, _ int) error {
		if c := counts[e.SessionID]; c != nil {
			c.add(e)
		}
		return nil
	}
	for _, sg := range segs {
		if sg.meta != nil && rows[sg.meta.SessionID] == nil {
			continue // a segment holds one session's events
		}
		if sum := s.readSummary(sg, false); sum != nil {
			for id, c := range sum.Sessions {
				if mine := counts[id]; mine != nil {
					mine.Calls += c.Calls
					mine.Failed += c.Failed
				}
			}
			continue
		}
		if _, err := s.scanSummarized(ctx, sg, count); err != nil {
			return activity.SessionPage{}, err
		}
	}
	for id, c := range counts {
		rows[id].Calls, rows[id].Failed = c.Calls, c.Failed
	}
	return page, nil
}

// Call returns the call that the event with this id is half of: the
// request and its reply, paired by activity.Pairer. An unknown id is
// activity.ErrNotFound.
func (s *Store) Call(ctx context.Context, id string) (activity.Call, error) {
	segs, err := s.segments()
	if err != nil {
		return activity.Call{}, err
	}
	var target *hit
	for _, sg := range segs {
		_, err := s.scanSegment(ctx, sg, 0, func(e *event.Event, off int64, n int) error {
			if e.ID != id {
				return nil
			}
			target = &hit{ev: *e, seg: sg.id, off: off, n: n}
			return errStop
		}, nil)
		if err != nil {
			return activity.Call{}, err
		}
		if target != nil {
			break
		}
	}
	if target == nil {
		return activity.Call{}, fmt.Errorf("event %s: %w", id, activity.ErrNotFound)
	}
	p := activity.NewPairer(target.ev)
	var other *hit
	for _, sg := range segs {
		if sg.meta != nil && sg.meta.SessionID != p.SessionID() {
			continue
		}
		if _, err := s.scanSegment(ctx, sg, 0, func(e *event.Event, off int64, n int) error {
			if p.Wants(e) {
				p.Offer(*e)
				other = &hit{ev: *e, seg: sg.id, off: off, n: n}
			}
			return nil
		}, nil); err != nil {
			return activity.Call{}, err
		}
	}
	hits := []hit{*target}
	if other != nil {
		hits = append(hits, *other)
	}
	full, err := s.loadEvents(hits)
	if err != nil {
		return activity.Call{}, err
	}
	p = activity.NewPairer(full[0])
	if len(full) > 1 {
		p.Offer(full[1])
	}
	return p.Call(), nil
}
