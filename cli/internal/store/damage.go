package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// Damage. The store's files are only ever appended to or replaced whole,
// so a line that is not a record, or a record that does not decode, was
// damaged from outside: a disk error, another program writing into the
// file, a copy cut short. Readers skip what they cannot read and go on at
// the next line; a damaged region that swallowed the newline before an
// intact record leaves that record at the end of the damaged line, and it
// is read from there (salvage). What was skipped is counted, each region
// once however many times it is read, and commands report the count once
// (ReportUnreadable). A segment index (.meta) that cannot be read is
// rebuilt from its segment when the store is opened.

// Unreadable counts what a Store could not read since it was opened.
type Unreadable struct {
	// Lines counts damaged lines skipped: lines that are no record, or
	// whose record does not decode, and torn ends of sealed segments.
	// The records of a damaged line are lost; its neighbours are not.
	Lines int64 `json:"lines"`
	// Bytes is their size.
	Bytes int64 `json:"bytes"`
	// Segments counts the segments that hold them.
	Segments int `json:"segments"`
	// Events counts the events lost: those that sealed segments' indexes
	// count and that could not be read (a live segment has no count, so
	// this is a floor).
	Events int64 `json:"events"`
	// Payloads counts events whose metadata was read but whose payload
	// was damaged: they are shown without it.
	Payloads int64 `json:"payloads"`
	// IndexesRebuilt counts segment indexes (.meta) that could not be read
	// and were rebuilt from their segments.
	IndexesRebuilt int `json:"indexes_rebuilt"`
}

// IsZero reports whether nothing was unreadable.
func (u Unreadable) IsZero() bool { return u == Unreadable{} }

// String says it in plain words, for people.
func (u Unreadable) String() string {
	verb := func(n int64, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	var parts []string
	if u.Lines > 0 {
		parts = append(parts, fmt.Sprintf("%s (%s) in %s could not be read and %s skipped",
			plural(u.Lines, "damaged line"), byteSize(u.Bytes), plural(int64(u.Segments), "segment"), verb(u.Lines, "was", "were")))
	}
	if u.Events > 0 {
		parts = append(parts, fmt.Sprintf("%s recorded there %s lost", plural(u.Events, "event"), verb(u.Events, "is", "are")))
	}
	if u.Payloads > 0 {
		parts = append(parts, fmt.Sprintf("%s could not be read (%s shown without %s)",
			plural(u.Payloads, "event payload"), verb(u.Payloads, "its event is", "their events are"), verb(u.Payloads, "it", "them")))
	}
	if u.IndexesRebuilt > 0 {
		n := int64(u.IndexesRebuilt)
		parts = append(parts, fmt.Sprintf("%s could not be read and %s rebuilt", plural(n, "damaged segment index"), verb(n, "was", "were")))
	}
	if len(parts) == 0 {
		return "the local store is intact"
	}
	return "the local store is damaged: " + strings.Join(parts, "; ") + "; everything else was read"
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return plural(n, "byte")
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// damage is what a Store found unreadable. Regions are keyed by segment
// and offset, so that reading a segment twice (stats, then the page of
// activity, then a claim) counts its damage once.
type damage struct {
	mu       sync.Mutex
	regions  map[damageKey]int64 // bytes
	payloads map[damageKey]bool
	rebuilt  map[string]bool
	missing  map[string]int64 // events of a sealed segment that could not be read
	// suspect caches Store.suspect's answers.
	suspect  map[string]bool
	reported Unreadable
}

type damageKey struct {
	seg string
	off int64
}

func (d *damage) line(seg string, off, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.regions == nil {
		d.regions = map[damageKey]int64{}
	}
	d.regions[damageKey{seg, off}] = n
}

func (d *damage) payload(seg string, off int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.payloads == nil {
		d.payloads = map[damageKey]bool{}
	}
	d.payloads[damageKey{seg, off}] = true
}

// lost notes that n events that seg's index counts could not be read.
func (d *damage) lost(seg string, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.missing == nil {
		d.missing = map[string]int64{}
	}
	d.missing[seg] = max(d.missing[seg], n)
}

func (d *damage) index(seg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rebuilt == nil {
		d.rebuilt = map[string]bool{}
	}
	d.rebuilt[seg] = true
}

// found reports whether any damage of seg was noted.
func (d *damage) found(seg string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rebuilt[seg] || d.missing[seg] > 0 {
		return true
	}
	for k := range d.regions {
		if k.seg == seg {
			return true
		}
	}
	for k := range d.payloads {
		if k.seg == seg {
			return true
		}
	}
	return false
}

func (d *damage) count() Unreadable {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.countLocked()
}

func (d *damage) countLocked() Unreadable {
	u := Unreadable{IndexesRebuilt: len(d.rebuilt)}
	for k := range d.payloads {
		if _, ok := d.regions[k]; !ok { // a damaged line is counted as such
			u.Payloads++
		}
	}
	segs := map[string]bool{}
	for k, n := range d.regions {
		u.Lines++
		u.Bytes += n
		segs[k.seg] = true
	}
	for seg, n := range d.missing {
		u.Events += n
		segs[seg] = true
	}
	u.Segments = len(segs)
	return u
}

// Unreadable counts what this Store could not read since it was opened.
func (s *Store) Unreadable() Unreadable { return s.damage.count() }

// ReportUnreadable writes to w, in one line of plain words, what this
// Store could not read that was not reported yet, if anything: commands
// call it once, at their end.
func (s *Store) ReportUnreadable(w io.Writer) {
	s.damage.mu.Lock()
	u := s.damage.countLocked()
	if u == s.damage.reported || u.IsZero() {
		s.damage.mu.Unlock()
		return
	}
	s.damage.reported = u
	s.damage.mu.Unlock()
	fmt.Fprintf(w, "kilometers: %s.\n", u)
}

// The writer writes valid UTF-8 and valid JSON on every line; a line that
// is not both was damaged. Readers that read the fields alone check them
// (fieldsIntact); whole lines are checked where damage is suspected
// (lineIntact).

// fieldsIntact reports whether the fields of an event line, without the
// payload, are valid UTF-8: encoding/json would replace invalid bytes in
// an id and the faster decoder keep them, and both would be wrong.
func fieldsIntact(line []byte) bool {
	meta, ok := eventMeta(line)
	return ok && utf8.Valid(meta)
}

// lineIntact reports whether a line is whole, valid JSON in valid UTF-8.
func lineIntact(line []byte) bool { return utf8.Valid(line) && json.Valid(line) }

// salvage returns the record a damaged line ends with, if any: from the
// first record prefix after the line's start from which the rest of the
// line is valid JSON. A prefix inside a payload does not qualify: the
// payload's end is followed by the braces that close its line. Bounded
// work: a damaged line is rare, but may be long.
func salvage(line []byte) []byte {
	for i, tries := 1, 0; i < len(line) && tries < 64; tries++ {
		j := bytes.Index(line[i:], []byte(`{"`))
		if j < 0 {
			return nil
		}
		cand := line[i+j:]
		if kindOf(cand) != lineUnknown && lineIntact(cand) {
			return cand
		}
		i += j + 1
	}
	return nil
}

// scanRecords calls fn with each record of segment seg from offset from,
// like scanLines; fn says whether it could read the record. A line it
// could not read is noted as damage, and the record the line ends with, if
// any, is given to fn in its stead, with its own offset.
func (s *Store) scanRecords(ctx context.Context, seg string, from int64, fn func(off int64, rec []byte) (bool, error)) (int64, error) {
	return scanLines(ctx, s.path(seg, ".jsonl"), from, func(off int64, line []byte) error {
		ok, err := fn(off, line)
		if ok || err != nil {
			return err
		}
		s.damage.line(seg, off, int64(len(line))+1)
		if rec := salvage(line); rec != nil {
			s.log.Debug("store: read a record after a damaged region", "segment", seg, "offset", off)
			_, err = fn(off+int64(len(line)-len(rec)), rec)
		} else {
			s.log.Debug("store: skip damaged line", "segment", seg, "offset", off)
		}
		return err
	})
}

// suspect reports whether the sealed segment sg holds fewer record lines
// than its index says it holds events: a damaged region swallowed a
// newline, and lines whose fields read well may still be damaged, which
// only reading them whole shows. Counting lines is cheap; the answer is
// kept for the Store's life.
func (s *Store) suspect(ctx context.Context, sg segment) (bool, error) {
	if sg.meta == nil {
		return false, nil
	}
	s.damage.mu.Lock()
	v, ok := s.damage.suspect[sg.id]
	s.damage.mu.Unlock()
	if ok {
		return v, nil
	}
	var lines int64
	_, err := scanLines(ctx, s.path(sg.id, ".jsonl"), 0, func(_ int64, line []byte) error {
		if kindOf(line) == lineEvent {
			lines++
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	v = lines < sg.meta.Events
	if v {
		// Read it as readers do, for what is lost to be counted.
		if _, err := s.scanSegment(ctx, sg, 0, func(*event.Event, int64, int) error { return nil }, nil); err != nil {
			return false, err
		}
	}
	s.damage.mu.Lock()
	if s.damage.suspect == nil {
		s.damage.suspect = map[string]bool{}
	}
	s.damage.suspect[sg.id] = v
	s.damage.mu.Unlock()
	return v, nil
}
