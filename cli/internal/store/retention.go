package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// orphanAge is how old a leftover file (a lock or index with no segment)
// must be before it is removed: younger ones may belong to a writer that is
// creating its segment right now.
const orphanAge = time.Hour

// applyRetention deletes sealed segments, oldest first: those older than
// RetentionDays (unless they hold unshipped events and Spool is set), then
// as many as needed to bring the store under RetentionBytes, shipped ones
// before unshipped ones. A live writer's segment and one being shipped are
// never deleted.
func (s *Store) applyRetention(ctx context.Context) error {
	days, limit := s.opts.RetentionDays, s.opts.RetentionBytes
	if days <= 0 && limit <= 0 {
		return nil
	}
	segs, err := s.segments()
	if err != nil {
		return err
	}
	var total int64
	for _, sg := range segs {
		total += sg.size
	}
	deleted := make([]bool, len(segs))
	remove := func(i int, lost int64) {
		ok, err := s.deleteSegment(segs[i], lost)
		if err != nil {
			s.log.Warn("store: retention", "segment", segs[i].id, "err", err)
		}
		if ok {
			deleted[i] = true
			total -= segs[i].size
		}
	}
	if days > 0 {
		cutoff := s.now().Add(-time.Duration(days) * 24 * time.Hour)
		for i, sg := range segs {
			if err := ctx.Err(); err != nil {
				return err
			}
			m := sg.meta
			if m == nil {
				continue
			}
			newest := m.MaxTS
			if m.Events == 0 {
				newest = m.Created
			}
			if !newest.Before(cutoff) {
				continue
			}
			if s.opts.Spool {
				if pending, err := s.unshipped(ctx, sg); err != nil || pending > 0 {
					continue
				}
			}
			remove(i, 0)
		}
	}
	if limit > 0 && total > limit {
		// First what is shipped (or needs no shipping), then the rest.
		for pass := 0; pass < 2 && total > limit; pass++ {
			for i, sg := range segs {
				if total <= limit {
					break
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				if deleted[i] || sg.meta == nil {
					continue
				}
				var lost int64
				if s.opts.Spool {
					pending, err := s.unshipped(ctx, sg)
					if err != nil {
						continue
					}
					if pending > 0 && pass == 0 {
						continue
					}
					lost = pending
				}
				remove(i, lost)
			}
		}
		if total > limit {
			s.log.Warn("store: over its size limit, but what is left is live or being shipped", "bytes", total, "limit", limit)
		}
	}
	s.removeOrphans()
	return nil
}

// unshipped counts the events of a segment not shipped yet.
func (s *Store) unshipped(ctx context.Context, sg segment) (int64, error) {
	acked, err := s.readAcked(sg.id)
	if err != nil {
		return 0, err
	}
	if sg.meta != nil && acked >= sg.meta.Bytes {
		return 0, nil
	}
	if acked == 0 && sg.meta != nil {
		return sg.meta.Events, nil
	}
	var n int64
	_, err = scanLines(ctx, s.path(sg.id, ".jsonl"), acked, func(_ int64, line []byte) error {
		if kindOf(line) == lineEvent {
			n++
		}
		return nil
	})
	return n, err
}

// deleteSegment removes a sealed segment unless a writer or a claim holds
// it; lost unshipped events are counted. It reports whether it removed it.
func (s *Store) deleteSegment(sg segment, lost int64) (bool, error) {
	wl := flock.New(s.path(sg.id, ".lock"), flock.SetPermissions(filePerm))
	if ok, err := wl.TryLock(); err != nil || !ok {
		return false, err
	}
	defer wl.Unlock()
	cl := flock.New(s.path(sg.id, ".claim"), flock.SetPermissions(filePerm))
	if ok, err := cl.TryLock(); err != nil || !ok {
		return false, err
	}
	defer cl.Unlock()
	if lost > 0 {
		if err := s.recordLost(sg.id, lost); err != nil {
			return false, err
		}
		s.log.Warn("store: deleted unshipped events to stay under the size limit", "segment", sg.id, "events", lost)
	}
	// The index goes first: a segment left without one is recovered, never
	// mistaken for a sealed one.
	for _, ext := range []string{".meta", ".sum", ".jsonl", ".acked"} {
		if err := os.Remove(s.path(sg.id, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("delete segment: %w", err)
		}
	}
	// Lock files go last, while held; a process that opened one before it
	// went finds no segment behind it. Windows refuses: removeOrphans
	// retries later.
	os.Remove(s.path(sg.id, ".claim"))
	os.Remove(s.path(sg.id, ".lock"))
	return true, nil
}

// removeOrphans removes old leftovers that belong to no segment.
func (s *Store) removeOrphans() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	segs := map[string]bool{}
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok {
			segs[id] = true
		}
	}
	cutoff := s.now().Add(-orphanAge)
	for _, e := range entries {
		name := e.Name()
		id, _, ok := strings.Cut(name, ".")
		if !ok || segs[id] || name == lostFile {
			continue
		}
		if _, _, isSeg := parseSegmentID(id); !isSeg {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		os.Remove(filepath.Join(s.dir, name))
	}
}

// lostFile logs unshipped events deleted by retention, one JSON line each.
const lostFile = "lost.log"

type lostRecord struct {
	At      time.Time `json:"at"`
	Segment string    `json:"segment"`
	Events  int64     `json:"events"`
}

func (s *Store) recordLost(seg string, n int64) error {
	b, err := json.Marshal(lostRecord{At: s.now().UTC(), Segment: seg, Events: n})
	if err != nil {
		return err
	}
	if err := appendSynced(filepath.Join(s.dir, lostFile), append(b, '\n')); err != nil {
		return fmt.Errorf("record lost events: %w", err)
	}
	return nil
}

func (s *Store) readLost() (int64, error) {
	f, err := os.Open(filepath.Join(s.dir, lostFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read lost events: %w", err)
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec lostRecord
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			n += rec.Events
		}
	}
	return n, sc.Err()
}
