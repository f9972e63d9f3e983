package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	segjson "github.com/segmentio/encoding/json"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Summaries. A sealed segment never changes, so what readers learn from
// reading it whole can be kept: <id>.sum holds the stats of its events per
// server (stats.NewPartial) and the values its events hold in the fields
// activity filters on. Stats over a window then merge the summaries of the
// segments inside it, and a filter skips the segments that cannot match,
// instead of reading every event. The first reader to read a sealed
// segment whole writes its summary, so writers pay nothing for it; a
// segment in which damage was found gets none, and is read (and its damage
// counted) by every command, as before.

// summaryVersion changes when the file's meaning does; other versions are
// ignored and written anew.
const summaryVersion = 1

// maxSummaryValues bounds each set of values a summary lists; past it the
// set is left out, and the segment may match any value of that field.
const maxSummaryValues = 256

// segSummary is the <id>.sum file.
type segSummary struct {
	Version int `json:"version"`
	// Bytes and Modified are the size and modification time of the
	// segment it describes: a segment changed since (damage from outside)
	// is read again.
	Bytes    int64     `json:"bytes"`
	Modified time.Time `json:"modified"`
	// Sessions are the counts of each session's events.
	Sessions map[string]*sessionCount `json:"sessions"`
	Servers  values                   `json:"servers"`
	Methods  values                   `json:"methods"`
	Tools    values                   `json:"tools"`
	Kinds    values                   `json:"kinds"`
	// Failed says whether some event failed (event.Event.Failed).
	Failed bool `json:"failed,omitempty"`
	// MaxRisk is the highest activity.LevelRank of its events.
	MaxRisk int `json:"max_risk,omitempty"`
	// Stats are the stats of its events, by server. They are the bulk
	// of the file, on a line of their own after the rest, so that readers
	// that do not need them do not decode them.
	Stats map[string]*stats.Aggregator `json:"-"`
}

// sessionCount is what a session's events add up to in a
// activity.SessionRow: its calls and failed replies.
type sessionCount struct {
	Calls  int64 `json:"calls,omitempty"`
	Failed int64 `json:"failed,omitempty"`
}

// add counts e by activity.SessionRow's rule.
func (c *sessionCount) add(e *event.Event) {
	switch {
	case stats.NewCall(e):
		c.Calls++
	case e.Failed():
		c.Failed++
	}
}

// values is a set of the values of a field; nil is unknown (too many).
type values []string

func (v *values) add(s string, full *bool) {
	if *full || slices.Contains(*v, s) {
		return
	}
	if len(*v) >= maxSummaryValues {
		*v, *full = nil, true
		return
	}
	*v = append(*v, s)
}

// lacks reports whether want, a filter's value, is surely not in the set.
func (v values) lacks(want string) bool {
	return want != "" && v != nil && !slices.Contains(v, want)
}

// mayMatch reports whether some event of the segment may match q's fields
// (its window is the index's business).
func (m *segSummary) mayMatch(q *activity.Query) bool {
	switch {
	case q.SessionID != "" && m.Sessions[q.SessionID] == nil, m.Servers.lacks(q.Server), m.Methods.lacks(q.Method),
		m.Tools.lacks(q.Tool), m.Kinds.lacks(string(q.Kind)),
		q.Failed && !m.Failed,
		q.MinRisk != "" && activity.LevelRank(q.MinRisk) > m.MaxRisk:
		return false
	}
	return true
}

// summaryBuilder makes a segment's summary from its events.
type summaryBuilder struct {
	sum  segSummary
	full [4]bool // which value sets overflowed
}

func newSummaryBuilder(sg segment) *summaryBuilder {
	return &summaryBuilder{sum: segSummary{
		Version: summaryVersion, Bytes: sg.size, Modified: sg.modified,
		Sessions: map[string]*sessionCount{}, Servers: values{}, Methods: values{}, Tools: values{}, Kinds: values{},
		Stats: map[string]*stats.Aggregator{},
	}}
}

func (b *summaryBuilder) add(e *event.Event) {
	m := &b.sum
	c := m.Sessions[e.SessionID]
	if c == nil {
		c = &sessionCount{}
		m.Sessions[e.SessionID] = c
	}
	c.add(e)
	m.Servers.add(e.Server, &b.full[0])
	m.Methods.add(e.Method, &b.full[1])
	m.Tools.add(e.Tool, &b.full[2])
	m.Kinds.add(string(e.Kind), &b.full[3])
	if e.Failed() {
		m.Failed = true
	}
	m.MaxRisk = max(m.MaxRisk, activity.LevelRank(e.RiskLevel()))
	p := m.Stats[e.Server]
	if p == nil {
		p = stats.NewPartial()
		m.Stats[e.Server] = p
	}
	p.Add(e)
}

// readSummary returns sg's summary, nil when it has none that fits; its
// Stats only when withStats.
func (s *Store) readSummary(sg segment, withStats bool) *segSummary {
	if sg.meta == nil {
		return nil
	}
	b, err := os.ReadFile(s.path(sg.id, ".sum"))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Debug("store: unreadable segment summary, reading the segment instead", "segment", sg.id, "err", err)
		}
		return nil
	}
	head, rest, _ := bytes.Cut(b, []byte("\n"))
	var m segSummary
	err = segjson.Unmarshal(head, &m)
	if err == nil && withStats {
		err = segjson.Unmarshal(rest, &m.Stats)
	}
	if err != nil || m.Version != summaryVersion || m.Bytes != sg.size || !m.Modified.Equal(sg.modified) {
		s.log.Debug("store: segment summary does not fit, reading the segment instead", "segment", sg.id, "err", err)
		return nil
	}
	return &m
}

// scanSummarized is scanSegment of sg whole for its events (onEvent may
// be nil), which makes the summary of a sealed segment as it goes and
// writes it. onEvent must not end the scan early. It returns the summary,
// or nil when sg is live or damage was found in it.
func (s *Store) scanSummarized(ctx context.Context, sg segment, onEvent func(e *event.Event, off int64, n int) error) (*segSummary, error) {
	if sg.meta == nil || s.damage.found(sg.id) {
		return s.scanWhole(ctx, sg, onEvent)
	}
	b := newSummaryBuilder(sg)
	_, err := s.scanSegment(ctx, sg, 0, func(e *event.Event, off int64, n int) error {
		b.add(e)
		if onEvent == nil {
			return nil
		}
		return onEvent(e, off, n)
	}, nil)
	if err != nil || s.damage.found(sg.id) {
		return nil, err
	}
	if err := s.writeSummary(sg.id, &b.sum); err != nil {
		// A read-only store, say: readers go on reading the segment.
		s.log.Debug("store: write segment summary", "segment", sg.id, "err", err)
	}
	return &b.sum, nil
}

// scanWhole is scanSegment of sg whole for its events, with
// scanSummarized's signature; onEvent may be nil.
func (s *Store) scanWhole(ctx context.Context, sg segment, onEvent func(e *event.Event, off int64, n int) error) (*segSummary, error) {
	if onEvent == nil {
		onEvent = func(*event.Event, int64, int) error { return nil }
	}
	_, err := s.scanSegment(ctx, sg, 0, onEvent, nil)
	return nil, err
}

func (s *Store) writeSummary(id string, m *segSummary) error {
	head, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode segment summary: %w", err)
	}
	st, err := json.Marshal(m.Stats)
	if err != nil {
		return fmt.Errorf("encode segment summary: %w", err)
	}
	b := append(append(head, '\n'), st...)
	if _, err := os.Stat(s.path(id, ".jsonl")); err != nil {
		return err // deleted by retention meanwhile: nothing to describe
	}
	return writeFileAtomic(s.path(id, ".sum"), b)
}
