package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofrs/flock"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// The events in the store are also the spool of what is to be shipped. Each
// segment remembers how far it was shipped (the .acked log of byte offsets);
// a claim takes a segment's flock-held .claim lock, so one process at a time
// ships a given segment, and moves its offset forward on Ack. A crash between
// shipping and Ack ships the same events again: the API dedups by event id.

// DefaultClaimEvents bounds a claim when the caller gives no limit: a
// shipping batch.
const DefaultClaimEvents = config.DefaultBatchSize

// A Cursor names one destination's delivery state in the spool. The API's
// is the zero Cursor (files <id>.claim and <id>.acked); any other
// destination, such as an OTLP endpoint, keeps its own claim lock and
// offset log (<id>.<cursor>.claim, <id>.<cursor>.acked), so each
// destination gets every event once, whatever the others do.
type Cursor string

// APICursor is the Kilometers API's delivery state.
const APICursor Cursor = ""

// ext is the file suffix of the cursor's file of a kind (".claim", ".acked").
func (c Cursor) ext(kind string) string {
	if c == APICursor {
		return kind
	}
	return "." + string(c) + kind
}

// validCursor keeps cursor names to what is safe in a file name and cannot
// be mistaken for another of the store's files.
func validCursor(c Cursor) error {
	if c == APICursor {
		return nil
	}
	if len(c) > 32 {
		return fmt.Errorf("cursor name %q: too long", string(c))
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("cursor name %q: only a-z, 0-9 and -", string(c))
		}
	}
	switch c {
	case "claim", "acked", "meta", "jsonl", "lock":
		return fmt.Errorf("cursor name %q: reserved", string(c))
	}
	return nil
}

// Claim is a batch of unshipped events held exclusively by this process
// until Ack, SetAside or Release.
type Claim struct {
	s        *Store
	cursor   Cursor
	parts    []claimPart
	events   []event.Event
	sessions []event.Session
	// arena holds the events' payloads: one allocation for many.
	arena []byte
	done  bool
}

// claimPart is the claimed byte range [from, to) of one segment.
type claimPart struct {
	seg      string
	lock     *flock.Flock
	from, to int64
}

// Events are the claimed events, oldest segment first, in recorded order.
func (c *Claim) Events() []event.Event { return c.events }

// Sessions are the latest records of the claimed events' sessions, and of
// sessions whose record changed within the claimed range. A claim may hold
// sessions and no events (a session's last update).
func (c *Claim) Sessions() []event.Session { return c.sessions }

// Claim takes the next unshipped events not claimed by another process: at
// most maxEvents (DefaultClaimEvents when <= 0) and about maxBytes of
// encoded lines (no bound when <= 0; one event is always taken). It returns
// nil, nil when nothing is pending.
func (s *Store) Claim(ctx context.Context, maxEvents int, maxBytes int) (*Claim, error) {
	return s.ClaimFor(ctx, APICursor, maxEvents, maxBytes)
}

// ClaimFor is Claim for the destination whose delivery state is cursor:
// the events that destination has not had yet, whatever other cursors did.
// It walks the segments oldest first, taking what is pending in each one
// no other claim holds (claimSegment) until the claim is full.
func (s *Store) ClaimFor(ctx context.Context, cursor Cursor, maxEvents int, maxBytes int) (*Claim, error) {
	if err := validCursor(cursor); err != nil {
		return nil, err
	}
	if maxEvents <= 0 {
		maxEvents = DefaultClaimEvents
	}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	c := &Claim{s: s, cursor: cursor}
	t := &taking{maxEvents: maxEvents, maxBytes: maxBytes, sessions: event.SessionFold{}}
	for _, sg := range segs {
		if t.full {
			break
		}
		err := ctx.Err()
		if err == nil {
			err = c.claimSegment(ctx, t, sg)
		}
		if err != nil {
			c.Release()
			return nil, err
		}
	}
	if len(c.parts) == 0 {
		return nil, nil
	}
	if len(c.events) == 0 && len(t.order) == 0 {
		// Only damaged lines were pending: nothing to ship, ever.
		return nil, c.Ack(ctx)
	}
	for _, id := range t.order {
		c.sessions = append(c.sessions, t.sessions[id])
	}
	return c, nil
}

// taking is what a claim has taken so far, across segments.
type taking struct {
	maxEvents, maxBytes int
	bytes               int  // encoded size of the event lines taken
	full                bool // no more events fit
	// sessions folds the records of the claimed events' sessions; order
	// is the order they were first met, the order the claim lists them.
	sessions event.SessionFold
	order    []string
}

func (t *taking) addSession(sess event.Session) {
	if _, ok := t.sessions[sess.ID]; !ok {
		t.order = append(t.order, sess.ID)
	}
	t.sessions.Add(sess)
}

// fits reports whether one more event line fits in the claim; the first
// always does.
func (t *taking) fits(c *Claim, line []byte) bool {
	if len(c.events) >= t.maxEvents {
		return false
	}
	return t.maxBytes <= 0 || t.bytes+len(line) <= t.maxBytes || len(c.events) == 0
}

// claimSegment adds to c what is pending in sg for c's cursor, unless
// another claim holds sg.
func (c *Claim) claimSegment(ctx context.Context, t *taking, sg segment) error {
	s := c.s
	acked, err := s.readCursor(sg.id, c.cursor)
	if err != nil || acked >= sg.size {
		return err
	}
	lock := flock.New(s.path(sg.id, c.cursor.ext(".claim")), flock.SetPermissions(filePerm))
	ok, err := lock.TryLock()
	if err != nil {
		return fmt.Errorf("claim segment %s: %w", sg.id, err)
	}
	if !ok {
		return nil // another process is shipping it
	}
	// Read the offset again under the lock: the previous holder may
	// have moved it.
	if acked, err = s.readCursor(sg.id, c.cursor); err != nil {
		lock.Unlock()
		return err
	}
	c.reserve(t, sg.size-acked)
	// This segment's events go straight into c.events, from start;
	// they are cut off again if the segment ends up not claimed.
	start := len(c.events)
	end, recs, err := c.readPending(ctx, t, sg, acked)
	if errors.Is(err, fs.ErrNotExist) || err == nil && end <= acked {
		c.events = c.events[:start]
		lock.Unlock()
		return nil // deleted by retention meanwhile, or nothing to take
	}
	if err != nil {
		lock.Unlock()
		return err
	}
	c.parts = append(c.parts, claimPart{seg: sg.id, lock: lock, from: acked, to: end})
	// The session records that precede the range: a sealed segment's
	// index has them; a live one is read up to the range.
	if needSessions(c.events[start:], t.sessions, recs) {
		if sg.meta != nil {
			for _, rec := range sg.meta.Sessions {
				t.addSession(rec)
			}
		} else if acked > 0 {
			if err := s.sessionsBefore(ctx, sg, acked, t.addSession); err != nil {
				return err
			}
		}
	}
	for _, rec := range recs {
		t.addSession(rec)
	}
	return nil
}

// reserve makes room for the first claimed segment's pending bytes.
func (c *Claim) reserve(t *taking, pending int64) {
	if c.arena == nil {
		// Payloads are most of a claim's bytes: room for all of
		// them at once, not a doubling series of copies.
		if t.maxBytes > 0 {
			pending = min(pending, int64(t.maxBytes))
		}
		c.arena = make([]byte, 0, min(pending, 16<<20))
	}
	if c.events == nil {
		c.events = make([]event.Event, 0, min(t.maxEvents, 1024))
	}
}

// readPending reads sg's lines from offset acked while the claim has room:
// the events go to c.events, the session records among them are returned.
// end is the offset the claimed range ends at.
//
// Damaged lines are skipped, counted, and acked with the rest: nothing
// would ever read them better. In a suspect segment an event whose fields
// read well but whose line is not whole JSON goes without its payload, and
// the record its line ends with, if any, goes too.
func (c *Claim) readPending(ctx context.Context, t *taking, sg segment, acked int64) (end int64, recs []event.Session, err error) {
	careful, err := c.s.suspect(ctx, sg)
	if err != nil {
		return acked, nil, err
	}
	var recOffs []int64
	lastEvent := acked // end of the last event line taken
	end, err = c.s.scanRecords(ctx, sg.id, acked, func(off int64, line []byte) (bool, error) {
		switch kindOf(line) {
		case lineEvent:
			if !t.fits(c, line) {
				t.full = true
				return true, errStop
			}
			if !fieldsIntact(line) {
				return false, nil
			}
			e, err := c.decode(line)
			if err != nil {
				return false, nil
			}
			whole := !careful || lineIntact(line)
			if !whole {
				e.Payload, e.PayloadTruncated = nil, true
			}
			lastEvent = off + int64(len(line)) + 1
			t.bytes += len(line)
			c.events = append(c.events, e)
			return whole, nil
		case lineSession:
			rec, err := decodeSession(line)
			if err != nil || !utf8.Valid(line) {
				return false, nil
			}
			recs = append(recs, rec)
			recOffs = append(recOffs, off)
			return true, nil
		}
		return false, nil
	})
	if t.full {
		// Session records after the last event taken wait for the
		// claim that takes the events they precede.
		end = lastEvent
		for len(recOffs) > 0 && recOffs[len(recOffs)-1] >= end {
			recOffs = recOffs[:len(recOffs)-1]
			recs = recs[:len(recs)-1]
		}
	}
	return end, recs, err
}

// decode decodes a claimed event line: its fields, with the payload kept
// as it was written (copied out of the scan buffer into the claim's
// arena); a line whose fields do not decode alone goes through
// decodeEvent whole. The payload is not validated here: shipping checks
// it as it prepares it for the wire.
func (c *Claim) decode(line []byte) (event.Event, error) {
	var e event.Event
	if decodeEventMeta(line, &e) != nil {
		return decodeEvent(line)
	}
	if p := eventPayload(line); len(p) > 0 {
		if cap(c.arena)-len(c.arena) < len(p) {
			// Earlier payloads keep the old array alive; only new ones
			// go to the new one.
			c.arena = make([]byte, 0, max(2*cap(c.arena), len(p), 64<<10))
		}
		n := len(c.arena)
		c.arena = append(c.arena, p...)
		e.Payload = c.arena[n:len(c.arena):len(c.arena)]
	}
	return e, nil
}

// needSessions reports whether some event's session has no record yet.
func needSessions(evs []event.Event, have event.SessionFold, inRange []event.Session) bool {
	for i := range evs {
		id := evs[i].SessionID
		if _, ok := have[id]; ok {
			continue
		}
		found := false
		for _, rec := range inRange {
			if rec.ID == id {
				found = true
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}

// sessionsBefore passes the session records of sg's first n bytes to add.
func (s *Store) sessionsBefore(ctx context.Context, sg segment, n int64, add func(event.Session)) error {
	_, err := scanLines(ctx, s.path(sg.id, ".jsonl"), 0, func(off int64, line []byte) error {
		if off >= n {
			return errStop
		}
		if kindOf(line) == lineSession {
			if rec, err := decodeSession(line); err == nil {
				add(rec)
			}
		}
		return nil
	})
	return err
}

// Ack durably marks the claimed events shipped and releases the claim.
func (c *Claim) Ack(ctx context.Context) error {
	if c.done {
		return errors.New("claim already settled")
	}
	var err error
	for _, p := range c.parts {
		if err = ctx.Err(); err != nil {
			break
		}
		if err = c.s.appendCursor(p.seg, c.cursor, p.to); err != nil {
			break
		}
	}
	return errors.Join(err, c.Release())
}

// SetAside keeps sessions and events of the claim (those the API refused)
// in <home>/rejected with the API's reason, for the user to see, durably.
// It does not settle the claim: the Ack that follows takes them out of the
// spool with the rest, so they are never retried automatically. The file
// is named after the first event's id (or the session record), so setting
// the same items aside again (a crash came between this and the Ack) keeps
// one copy. The
// records of the events' sessions go with them, for context.
func (c *Claim) SetAside(ctx context.Context, reason string, sessions []event.Session, events []event.Event) error {
	if c.done {
		return errors.New("claim already settled")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var key string
	switch {
	case len(events) > 0:
		key = fileSafe(events[0].ID)
	case len(sessions) > 0:
		// A session has several records over its life; each is kept.
		b, err := json.Marshal(&sessions[0])
		if err != nil {
			return fmt.Errorf("set aside: %w", err)
		}
		sum := sha256.Sum256(b)
		key = "session-" + fileSafe(sessions[0].ID) + "-" + hex.EncodeToString(sum[:6])
	default:
		return nil
	}
	dir := c.s.rejectedDir()
	if existing, _ := filepath.Glob(filepath.Join(dir, "*-"+key+".json")); len(existing) > 0 {
		return nil
	}
	kept := sessions
	for _, sess := range c.sessions {
		if slices.ContainsFunc(events, func(e event.Event) bool { return e.SessionID == sess.ID }) &&
			!slices.ContainsFunc(kept, func(s event.Session) bool { return s.ID == sess.ID }) {
			kept = append(slices.Clip(kept), sess)
		}
	}
	now := c.s.now().UTC()
	rec := rejectedBatch{
		Reason:     reason,
		RejectedAt: now,
		Events:     len(events),
		Sessions:   len(sessions),
		Batch:      event.Batch{Sessions: kept, Events: events},
	}
	b, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("set aside: %w", err)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("set aside: %w", err)
	}
	name := fmt.Sprintf("%s-%s.json", now.Format("20060102T150405.000000000Z"), key)
	if err := writeFileAtomic(filepath.Join(dir, name), b); err != nil {
		return fmt.Errorf("set aside: %w", err)
	}
	return nil
}

// fileSafe is id as a part of a file name: ids come from the store's
// lines, which anything may have written.
func fileSafe(id string) string {
	b := []byte(id)
	for i, ch := range b {
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || ch == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 80 {
		b = b[:80]
	}
	if len(b) == 0 {
		return randomHex(4)
	}
	return string(b)
}

// Release gives the claim back unshipped: another claim will take the same
// events again.
func (c *Claim) Release() error {
	if c.done {
		return nil
	}
	c.done = true
	var errs []error
	for _, p := range c.parts {
		if err := p.lock.Unlock(); err != nil {
			errs = append(errs, fmt.Errorf("release segment %s: %w", p.seg, err))
		}
	}
	return errors.Join(errs...)
}

// rejectedBatch is the file SetAside writes.
type rejectedBatch struct {
	Reason     string      `json:"reason"`
	RejectedAt time.Time   `json:"rejected_at"`
	Events     int         `json:"events"`
	Sessions   int         `json:"sessions,omitempty"`
	Batch      event.Batch `json:"batch"`
}

func (s *Store) rejectedDir() string { return filepath.Join(s.home, "rejected") }

// readAcked returns how many bytes of a segment were shipped: the last
// whole line of its .acked log.
func (s *Store) readAcked(id string) (int64, error) { return s.readCursor(id, APICursor) }

// readCursor is readAcked for a cursor's offset log.
func (s *Store) readCursor(id string, cursor Cursor) (int64, error) {
	b, err := os.ReadFile(s.path(id, cursor.ext(".acked")))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read shipped offset: %w", err)
	}
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return 0, nil
	}
	// The last whole line that is an offset wins. Lines after it can only
	// be damage: from the offset before, what was shipped since goes
	// again, and the API counts it as duplicates.
	for b = b[:end]; ; {
		start := bytes.LastIndexByte(b, '\n') + 1
		n, err := strconv.ParseInt(string(b[start:]), 10, 64)
		if err == nil && n >= 0 {
			return n, nil
		}
		s.damage.line(id, -1, int64(len(b)-start+1))
		if start == 0 {
			return 0, nil
		}
		b = b[:start-1]
	}
}

// appendCursor records durably that a segment was delivered up to offset
// to the cursor's destination.
func (s *Store) appendCursor(id string, cursor Cursor, offset int64) error {
	line := strconv.AppendInt(nil, offset, 10)
	if err := appendSynced(s.path(id, cursor.ext(".acked")), append(line, '\n')); err != nil {
		return fmt.Errorf("record shipped offset: %w", err)
	}
	return nil
}

// PendingInfo describes what is waiting to be shipped.
type PendingInfo struct {
	// Events and Bytes count unshipped events and their encoded size.
	Events int64 `json:"events"`
	Bytes  int64 `json:"bytes"`
	// Segments counts segments with something unshipped.
	Segments int `json:"segments"`
	// Oldest is the creation time of the oldest segment with something
	// unshipped.
	Oldest *time.Time `json:"oldest,omitempty"`
	// Lost counts unshipped events that retention deleted to respect
	// RetentionBytes.
	Lost int64 `json:"lost"`
	// SetAside lists the batches the API refused, oldest first.
	SetAside []SetAsideBatch `json:"set_aside"`
}

// SetAsideBatch is what the API refused once, kept in <home>/rejected: a
// single event or session record (or, from older versions, a whole batch).
type SetAsideBatch struct {
	Path       string    `json:"path"`
	Reason     string    `json:"reason"`
	RejectedAt time.Time `json:"rejected_at"`
	Events     int       `json:"events"`
	// Sessions counts refused session records (not those kept for context).
	Sessions int `json:"sessions,omitempty"`
	// IDs are the refused events' ids, or the refused sessions' ids.
	IDs []string `json:"ids,omitempty"`
}

// Pending counts unshipped events and lists set-aside batches.
func (s *Store) Pending(ctx context.Context) (PendingInfo, error) {
	info := PendingInfo{SetAside: []SetAsideBatch{}}
	segs, err := s.segments()
	if err != nil {
		return info, err
	}
	for _, sg := range segs {
		acked, err := s.readAcked(sg.id)
		if err != nil {
			return info, err
		}
		if acked >= sg.size {
			continue
		}
		var n, b int64
		_, err = scanLines(ctx, s.path(sg.id, ".jsonl"), acked, func(off int64, line []byte) error {
			if kindOf(line) == lineEvent {
				n++
				b += int64(len(line))
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return info, err
		}
		if n == 0 {
			continue
		}
		info.Events += n
		info.Bytes += b
		info.Segments++
		if info.Oldest == nil {
			if ns, _, ok := parseSegmentID(sg.id); ok {
				t := time.Unix(0, ns).UTC()
				info.Oldest = &t
			}
		}
	}
	if info.Lost, err = s.readLost(); err != nil {
		return info, err
	}
	entries, err := os.ReadDir(s.rejectedDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return info, fmt.Errorf("list set-aside batches: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(s.rejectedDir(), e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return info, fmt.Errorf("read set-aside batch: %w", err)
		}
		var rec rejectedBatch
		if err := json.Unmarshal(b, &rec); err != nil {
			// Listed all the same, for the user to see and deal with.
			info.SetAside = append(info.SetAside, SetAsideBatch{Path: path, Reason: "the file cannot be read: " + err.Error()})
			continue
		}
		sa := SetAsideBatch{Path: path, Reason: rec.Reason, RejectedAt: rec.RejectedAt, Events: rec.Events, Sessions: rec.Sessions}
		for _, e := range rec.Batch.Events {
			sa.IDs = append(sa.IDs, e.ID)
		}
		if len(rec.Batch.Events) == 0 {
			for _, s := range rec.Batch.Sessions {
				sa.IDs = append(sa.IDs, s.ID)
			}
		}
		info.SetAside = append(info.SetAside, sa)
	}
	sort.Slice(info.SetAside, func(i, j int) bool { return info.SetAside[i].Path < info.SetAside[j].Path })
	return info, nil
}

// ErrShippingBusy is LockShipping's answer, when told not to wait, while
// another background shipper holds the store.
var ErrShippingBusy = errors.New("another shipper is at work on this store")

// LockShipping makes the caller the one background shipper of this store
// and returns the function that lets the next one in. With wait it waits
// until ctx ends; without, it fails at once with ErrShippingBusy when
// another holds the lock. Claims already keep two processes from shipping
// the same events; this keeps the shippers that monitors launch from
// running side by side for nothing.
func (s *Store) LockShipping(ctx context.Context, wait bool) (unlock func() error, err error) {
	lock := flock.New(filepath.Join(s.dir, "ship.lock"), flock.SetPermissions(filePerm))
	var ok bool
	if wait {
		ok, err = lock.TryLockContext(ctx, 50*time.Millisecond)
	} else {
		ok, err = lock.TryLock()
	}
	if err != nil {
		return nil, fmt.Errorf("take the shipping lock: %w", err)
	}
	if !ok {
		return nil, ErrShippingBusy
	}
	return lock.Unlock, nil
}

// ReadCursorState returns the small state a destination keeps beside its
// cursor (what it must remember from one batch to the next); nil when it
// has none yet.
func (s *Store) ReadCursorState(c Cursor) ([]byte, error) {
	if err := stateCursor(c); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.cursorStatePath(c))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cursor state: %w", err)
	}
	return b, nil
}

// WriteCursorState replaces a destination's state atomically and durably.
// Write it before the Ack of the claim it follows from: a crash between
// the two sends that claim again with the state already past it, which a
// destination must tolerate (it would send the claim again anyway).
func (s *Store) WriteCursorState(c Cursor, b []byte) error {
	if err := stateCursor(c); err != nil {
		return err
	}
	return writeFileAtomic(s.cursorStatePath(c), b)
}

func (s *Store) cursorStatePath(c Cursor) string {
	return filepath.Join(s.dir, "cursor-"+string(c)+".state")
}

// stateCursor checks a cursor that keeps state: the API's keeps none.
func stateCursor(c Cursor) error {
	if c == APICursor {
		return errors.New("cursor state: the API cursor keeps none")
	}
	return validCursor(c)
}
