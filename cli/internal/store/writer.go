package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gofrs/flock"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// ErrClosed is returned by a Writer used after Close.
var ErrClosed = errors.New("store writer closed")

// Writer appends one session's events to segments it alone owns. It is safe
// for concurrent use. Its memory is a small fixed buffer.
type Writer struct {
	s         *Store
	sessionID string

	mu     sync.Mutex
	seg    *liveSegment
	latest event.SessionFold // what is known of each session, copied into new segments
	buf    bytes.Buffer
	timer  *time.Timer
	closed bool
	err    error // a failed background sync or seal, reported by the next call
	// The fsyncs run outside mu, so that Record never waits on the disk:
	// idle is signalled (under mu) whenever one of them ends. syncing is
	// the segment the timer's fsync is on, if any; seals counts segments
	// being sealed in the background.
	idle    *sync.Cond
	syncing *liveSegment
	seals   int
	// durable counts the events in the segment files.
	durable atomic.Int64
}

// maxSeals is how many rotated segments may be sealing at once before a
// rotation waits for one: a segment holds an open file and a lock until
// it is sealed, and on a disk too slow for even this many the store must
// slow the writer rather than pile up work.
const maxSeals = 2

// Durable is how many of the events recorded so far are in the segment
// files, where a shipper in another process can read them.
func (w *Writer) Durable() int64 { return w.durable.Load() }

// liveSegment is the segment a Writer is appending to.
type liveSegment struct {
	meta  segMeta
	lock  *flock.Flock
	f     *os.File
	w     *bufio.Writer
	dirty bool // written since the last sync
	// buffered counts the events appended since the last sync began.
	buffered int64
	// dirSync is set until the directory holding the segment has been
	// synced: its events count as durable only once their file's entry
	// is, and that sync is left to the first fsync of the file, off the
	// path of the Record that created it.
	dirSync bool
}

// NewWriter starts a segment for sessionID's events. It recovers dead
// writers' segments and applies retention first.
func (s *Store) NewWriter(ctx context.Context, sessionID string) (*Writer, error) {
	if err := s.maintain(ctx); err != nil {
		return nil, err
	}
	w := &Writer{s: s, sessionID: sessionID, latest: event.SessionFold{}}
	w.idle = sync.NewCond(&w.mu)
	seg, err := s.createSegment(sessionID)
	if err != nil {
		return nil, err
	}
	w.seg = seg
	return w, nil
}

// createSegment makes a new segment, locked by the caller.
func (s *Store) createSegment(sessionID string) (*liveSegment, error) {
	now := s.now().UTC()
	id := newSegmentID(now)
	// The lock exists and is held before the data file appears, so no
	// reader ever takes a live segment for a dead one.
	lock := flock.New(s.path(id, ".lock"), flock.SetPermissions(filePerm))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock new segment: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("lock new segment %s: already locked", id)
	}
	f, err := os.OpenFile(s.path(id, ".jsonl"), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, filePerm)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("create segment: %w", err)
	}
	return &liveSegment{
		meta:    segMeta{ID: id, SessionID: sessionID, Created: now},
		lock:    lock,
		f:       f,
		w:       bufio.NewWriterSize(f, 32<<10),
		dirSync: true,
	}, nil
}

// Record appends events. They are written to disk within
// Options.SyncInterval and are durable once Close returns.
func (w *Writer) Record(ctx context.Context, evs []event.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	for i := range evs {
		if err := w.writeEvent(&evs[i]); err != nil {
			return partial(i, err)
		}
		m := &w.seg.meta
		ts := evs[i].TS
		if m.Events == 0 || ts.Before(m.MinTS) {
			m.MinTS = ts
		}
		if m.Events == 0 || ts.After(m.MaxTS) {
			m.MaxTS = ts
		}
		m.Events++
		w.seg.buffered++
		if err := w.maybeRotate(); err != nil {
			// The event's line is in the old segment already.
			return partial(i+1, err)
		}
	}
	w.shrinkBuf()
	w.scheduleFlush()
	return nil
}

// PartialError is what Record returns when it failed part-way: the first
// Written events were recorded, the rest were not.
type PartialError struct {
	Written int
	Err     error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("recorded %d events, then: %v", e.Written, e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// RecordedEvents says how many events the failed Record did record.
func (e *PartialError) RecordedEvents() int { return e.Written }

func partial(written int, err error) error {
	if written == 0 {
		return err
	}
	return &PartialError{Written: written, Err: err}
}

// RecordSession records the session's current state; readers fold a
// session's records by event.MergeSession.
func (w *Writer) RecordSession(ctx context.Context, sess event.Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.buf.Reset()
	if err := appendSessionLine(&w.buf, &sess); err != nil {
		return err
	}
	if err := w.write(); err != nil {
		return err
	}
	w.latest.Add(sess)
	if err := w.maybeRotate(); err != nil {
		return err
	}
	w.scheduleFlush()
	return nil
}

// Flush writes buffered lines and syncs them to disk. It waits for the
// segments sealing in the background and reports their errors.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.waitIdle()
	if w.closed {
		return ErrClosed // closed while it waited
	}
	if err := w.usable(); err != nil {
		return err
	}
	return w.syncSeg(w.seg)
}

// Close flushes, syncs and seals the segment, once the segments sealing in
// the background are sealed: after it returns every recorded event is
// durable.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		// A Close still sealing releases mu for the disk's work; this one
		// too returns once every event is durable.
		w.waitIdle()
		return nil
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.waitIdle()
	w.seals++ // counted, so that a concurrent Close waits for it
	err := w.sealSeg(w.seg, w.sessions())
	w.seals--
	w.idle.Broadcast()
	w.seg = nil
	return errors.Join(w.err, err)
}

// waitIdle waits, with mu held but released meanwhile, until no fsync or
// seal runs in the background.
func (w *Writer) waitIdle() {
	for w.syncing != nil || w.seals > 0 {
		w.idle.Wait()
	}
}

func (w *Writer) usable() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		err := w.err
		w.err = nil
		return err
	}
	return nil
}

// maxKeptBuf is the most line buffer a Writer keeps between calls.
const maxKeptBuf = 64 << 10

// shrinkBuf lets go of a line buffer that one large event grew: kept, it
// would count as live heap for the rest of the session and raise the
// heap size at which the next collection starts.
func (w *Writer) shrinkBuf() {
	if w.buf.Cap() > maxKeptBuf {
		w.buf = bytes.Buffer{}
	}
}

// write appends w.buf, one whole line, to the segment.
func (w *Writer) write() error {
	return w.writeLine(w.buf.Bytes(), nil, "")
}

// writeLine appends one whole line, given in pieces, to the segment.
func (w *Writer) writeLine(head, payload []byte, end string) error {
	_, err := w.seg.w.Write(head)
	if err == nil && len(payload) > 0 {
		_, err = w.seg.w.Write(payload)
	}
	if err == nil && end != "" {
		_, err = w.seg.w.WriteString(end)
	}
	if err != nil {
		return fmt.Errorf("write segment %s: %w", w.seg.meta.ID, err)
	}
	w.seg.meta.Bytes += int64(len(head) + len(payload) + len(end))
	w.seg.dirty = true
	return nil
}

// directPayload is the payload size from which an event's line is written
// in three pieces (its fields, the payload as it is, the end) when the
// payload needs no compacting, instead of being assembled in w.buf first.
// The monitor's payload of a large result is a 64 KiB JSON string: copied
// into w.buf it grew the buffer past maxKeptBuf on every such event, so
// the buffer was reallocated for each (30% of the bytes the monitor
// allocated on 1 MiB results) and the payload copied once more.
const directPayload = 4 << 10

// writeEvent appends e's line to the segment.
func (w *Writer) writeEvent(e *event.Event) error {
	w.buf.Reset()
	if len(e.Payload) >= directPayload && compactString(e.Payload) {
		if head, ok := appendEventMeta(w.buf.AvailableBuffer(), e); ok {
			w.buf.Write(head) // kept: the next event's fields fit without allocating
			w.buf.WriteString(`,"p":`)
			return w.writeLine(w.buf.Bytes(), e.Payload, "}\n")
		}
	}
	if err := appendEventLine(&w.buf, e); err != nil {
		return err
	}
	return w.write()
}

// syncSeg flushes seg's buffered lines and syncs them to disk, with mu
// held throughout: for Flush, whose caller asked to wait, and seals.
func (w *Writer) syncSeg(seg *liveSegment) error {
	if !seg.dirty {
		return nil
	}
	if err := seg.w.Flush(); err != nil {
		return fmt.Errorf("flush segment %s: %w", seg.meta.ID, err)
	}
	if err := w.s.fsyncSegment(seg, seg.dirSync); err != nil {
		return err
	}
	seg.dirSync = false
	seg.dirty = false
	w.durable.Add(seg.buffered)
	seg.buffered = 0
	return nil
}

// fsyncSegment syncs a segment's file, and first its directory when the
// file's entry may not be on disk yet.
func (s *Store) fsyncSegment(seg *liveSegment, dir bool) error {
	if s.syncHook != nil {
		if err := s.syncHook(seg.meta.ID); err != nil {
			return fmt.Errorf("sync segment %s: %w", seg.meta.ID, err)
		}
	}
	if dir {
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", seg.meta.ID, err)
	}
	return nil
}

// scheduleFlush makes sure buffered lines reach the disk within the flush
// interval.
func (w *Writer) scheduleFlush() {
	if w.timer != nil || !w.seg.dirty {
		return
	}
	w.timer = time.AfterFunc(w.s.opts.SyncInterval, w.timedSync)
}

// timedSync is the timer's sync. It flushes the buffered lines under mu but
// fsyncs outside it: an fsync on a busy disk takes tens of milliseconds,
// and a Record waiting that long fills the monitor's capture queue. Lines
// appended during the fsync are not counted durable by it (their events
// stay in seg.buffered); the timer stays set until it ends, so that only
// one such sync runs at a time, and is set again for those lines.
func (w *Writer) timedSync() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.timer = nil
		return
	}
	seg := w.seg
	err := w.syncOutside(seg)
	w.timer = nil
	if err != nil {
		w.s.log.Warn("store: background flush", "segment", seg.meta.ID, "err", err)
		w.err = errors.Join(w.err, err)
		return
	}
	if !w.closed && w.seg != nil {
		w.scheduleFlush()
	}
}

// syncOutside flushes seg's lines and fsyncs them with mu released; it is
// called and returns with mu held.
func (w *Writer) syncOutside(seg *liveSegment) error {
	if !seg.dirty {
		return nil
	}
	if err := seg.w.Flush(); err != nil {
		return fmt.Errorf("flush segment %s: %w", seg.meta.ID, err)
	}
	n, dir := seg.buffered, seg.dirSync
	seg.buffered, seg.dirty = 0, false
	w.syncing = seg // a seal of seg waits: it closes the file
	w.mu.Unlock()
	err := w.s.fsyncSegment(seg, dir)
	w.mu.Lock()
	w.syncing = nil
	w.idle.Broadcast()
	if err != nil {
		// Still to be synced, by the next sync or the seal.
		seg.buffered += n
		seg.dirty = true
		return err
	}
	if dir {
		seg.dirSync = false
	}
	w.durable.Add(n)
	return nil
}

func (w *Writer) maybeRotate() error {
	if w.seg.meta.Bytes < w.s.opts.SegmentBytes {
		return nil
	}
	for w.seals >= maxSeals {
		w.idle.Wait()
		if w.closed {
			return ErrClosed // Close sealed the segment meanwhile
		}
	}
	if w.seg.meta.Bytes < w.s.opts.SegmentBytes {
		return nil // another call rotated while this one waited
	}
	old := w.seg
	// The old segment is sealed in the background: its fsyncs (the file's,
	// its index's and the directory's) took tens of milliseconds under a
	// busy disk, on the path of the Record that rotated. Its lines are
	// flushed here, so that nothing touches its buffer after this.
	err := old.w.Flush()
	if err != nil {
		err = fmt.Errorf("flush segment %s: %w", old.meta.ID, err)
	}
	var seg *liveSegment
	if err == nil {
		seg, err = w.s.createSegment(w.sessionID)
	}
	if err != nil {
		// Nothing left to write to: the old segment is sealed here, as
		// Close would.
		w.closed = true
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
		w.waitIdle()
		return errors.Join(err, w.sealSeg(old, w.sessions()))
	}
	w.seg = seg
	w.seals++
	go w.sealBackground(old, w.sessions())
	// Each segment carries its sessions' latest records, so retention
	// never leaves events without their session.
	for _, sess := range w.latest {
		w.buf.Reset()
		if err := appendSessionLine(&w.buf, &sess); err != nil {
			return err
		}
		if err := w.write(); err != nil {
			return err
		}
	}
	return nil
}

// sessions is the sessions' latest records, for a segment's index.
func (w *Writer) sessions() []event.Session {
	out := make([]event.Session, 0, len(w.latest))
	for _, sess := range w.latest {
		out = append(out, sess)
	}
	return out
}

// sealBackground seals a rotated segment; a failure is reported by the
// writer's next call, as a failed timer sync is.
func (w *Writer) sealBackground(seg *liveSegment, sessions []event.Session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.sealSeg(seg, sessions)
	w.seals--
	w.idle.Broadcast()
	if err != nil {
		w.s.log.Warn("store: seal segment", "segment", seg.meta.ID, "err", err)
		w.err = errors.Join(w.err, err)
	}
}

// sealSeg syncs seg, writes its index and releases its lock, with mu
// released for the disk's work (seg is no longer the writer's, or the
// writer is closed). A segment that holds nothing is removed instead. It
// is called and returns with mu held.
func (w *Writer) sealSeg(seg *liveSegment, sessions []event.Session) error {
	for w.syncing == seg {
		w.idle.Wait() // the timer's fsync of seg ends before seg's file is closed
	}
	var err error
	if seg.dirty {
		err = seg.w.Flush()
		if err != nil {
			err = fmt.Errorf("flush segment %s: %w", seg.meta.ID, err)
		}
	}
	n, dir := seg.buffered, seg.dirSync
	seg.buffered, seg.dirty = 0, false
	meta := seg.meta
	w.mu.Unlock()
	defer w.mu.Lock()
	if err == nil {
		err = w.s.fsyncSegment(seg, dir)
	}
	if err == nil {
		w.durable.Add(n)
	}
	if cerr := seg.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close segment %s: %w", meta.ID, cerr)
	}
	if err == nil && w.s.sealHook != nil {
		err = w.s.sealHook(meta.ID)
	}
	if err == nil {
		if meta.Bytes == 0 {
			os.Remove(w.s.path(meta.ID, ".jsonl"))
		} else {
			meta.Sealed = w.s.now().UTC()
			meta.Sessions = append(meta.Sessions, sessions...)
			err = w.s.writeMeta(&meta)
		}
	}
	if uerr := seg.lock.Unlock(); err == nil && uerr != nil {
		err = fmt.Errorf("unlock segment %s: %w", meta.ID, uerr)
	}
	return err
}

// recoverSegment seals a segment whose writer died: it cuts a torn last
// line, then writes the index from what the segment holds. A sealed
// segment whose index cannot be read gets its index rebuilt the same way,
// with nothing cut: its last line can only be torn by damage, and the
// damage is counted. It does nothing when the writer is alive or the
// segment is sealed with a readable index.
func (s *Store) recoverSegment(ctx context.Context, sg segment) error {
	lock := flock.New(s.path(sg.id, ".lock"), flock.SetPermissions(filePerm))
	ok, err := lock.TryLock()
	if err != nil || !ok {
		return err
	}
	defer lock.Unlock()
	sealed := false
	if _, err := os.Stat(s.path(sg.id, ".meta")); err == nil {
		if _, err := s.readMeta(sg.id); err == nil {
			return nil // sealed meanwhile
		}
		sealed = true
	}
	data := s.path(sg.id, ".jsonl")
	m := segMeta{ID: sg.id, Recovered: true, Sealed: s.now().UTC()}
	if ns, _, ok := parseSegmentID(sg.id); ok {
		m.Created = time.Unix(0, ns).UTC()
	}
	sessions := event.SessionFold{}
	var order []string
	var ev event.Event
	end, err := s.scanRecords(ctx, sg.id, 0, func(off int64, line []byte) (bool, error) {
		switch kindOf(line) {
		case lineEvent:
			if !fieldsIntact(line) || decodeEventMeta(line, &ev) != nil {
				return false, nil // a damaged line is skipped by every reader
			}
			if m.Events == 0 || ev.TS.Before(m.MinTS) {
				m.MinTS = ev.TS
			}
			if m.Events == 0 || ev.TS.After(m.MaxTS) {
				m.MaxTS = ev.TS
			}
			m.Events++
			if m.SessionID == "" {
				m.SessionID = ev.SessionID
			}
			// Recovery is rare: the line is checked whole, so that a
			// record after a damaged region is indexed too.
			return lineIntact(line), nil
		case lineSession:
			sess, err := decodeSession(line)
			if err != nil || !utf8.Valid(line) {
				return false, nil
			}
			if _, ok := sessions[sess.ID]; !ok {
				order = append(order, sess.ID)
			}
			sessions.Add(sess)
		default:
			return false, nil
		}
		return true, nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	m.Bytes = end
	if sealed {
		fi, err := os.Stat(data)
		if err != nil {
			return fmt.Errorf("rebuild segment index: %w", err)
		}
		if fi.Size() > end {
			s.damage.line(sg.id, end, fi.Size()-end)
		}
		m.Bytes = fi.Size()
	} else if err := os.Truncate(data, end); err != nil {
		return fmt.Errorf("cut torn line: %w", err)
	}
	for _, id := range order {
		m.Sessions = append(m.Sessions, sessions[id])
	}
	if m.SessionID == "" && len(order) > 0 {
		m.SessionID = order[0]
	}
	if err := s.writeMeta(&m); err != nil {
		return err
	}
	if sealed {
		s.damage.index(sg.id)
		s.log.Debug("store: rebuilt a damaged segment index", "segment", sg.id, "events", m.Events)
		return nil
	}
	s.log.Info("store: recovered the segment of a writer that stopped without closing", "segment", sg.id, "events", m.Events)
	return nil
}

// parseSegmentID returns the creation time in nanoseconds of a segment id.
func parseSegmentID(id string) (int64, string, bool) {
	var ns int64
	var rest string
	if len(id) < 21 || id[19] != '-' {
		return 0, "", false
	}
	if _, err := fmt.Sscanf(id[:19], "%d", &ns); err != nil {
		return 0, "", false
	}
	rest = id[20:]
	return ns, rest, true
}
