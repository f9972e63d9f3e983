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
	err    error // a failed background flush, reported by the next call
	// buffered counts events appended since the last sync; durable those
	// synced before.
	buffered int64
	durable  atomic.Int64
}

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
}

// NewWriter starts a segment for sessionID's events. It recovers dead
// writers' segments and applies retention first.
func (s *Store) NewWriter(ctx context.Context, sessionID string) (*Writer, error) {
	if err := s.maintain(ctx); err != nil {
		return nil, err
	}
	w := &Writer{s: s, sessionID: sessionID, latest: event.SessionFold{}}
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
	if err := syncDir(s.dir); err != nil {
		f.Close()
		lock.Unlock()
		return nil, err
	}
	return &liveSegment{
		meta: segMeta{ID: id, SessionID: sessionID, Created: now},
		lock: lock,
		f:    f,
		w:    bufio.NewWriterSize(f, 32<<10),
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
		w.buffered++
		if err := w.maybeRotate(); err != nil {
			// The event's line is in the sealed segment already.
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

// Flush writes buffered lines and syncs them to disk.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.sync()
}

// Close flushes, syncs and seals the segment: after it returns every
// recorded event is durable.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	err := w.seal()
	w.seg = nil
	return errors.Join(w.err, err)
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

func (w *Writer) sync() error {
	seg := w.seg
	if !seg.dirty {
		return nil
	}
	if err := seg.w.Flush(); err != nil {
		return fmt.Errorf("flush segment %s: %w", seg.meta.ID, err)
	}
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", seg.meta.ID, err)
	}
	seg.dirty = false
	w.durable.Add(w.buffered)
	w.buffered = 0
	return nil
}

// scheduleFlush makes sure buffered lines reach the disk within the flush
// interval.
func (w *Writer) scheduleFlush() {
	if w.timer != nil || !w.seg.dirty {
		return
	}
	w.timer = time.AfterFunc(w.s.opts.SyncInterval, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.timer = nil
		if w.closed {
			return
		}
		if err := w.sync(); err != nil {
			w.s.log.Warn("store: background flush", "segment", w.seg.meta.ID, "err", err)
			w.err = err
		}
	})
}

func (w *Writer) maybeRotate() error {
	if w.seg.meta.Bytes < w.s.opts.SegmentBytes {
		return nil
	}
	if err := w.seal(); err != nil {
		return err
	}
	seg, err := w.s.createSegment(w.sessionID)
	if err != nil {
		w.closed = true // nothing left to write to
		return err
	}
	w.seg = seg
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

// seal syncs the segment, writes its index and releases its lock. A segment
// that holds nothing is removed instead.
func (w *Writer) seal() error {
	seg := w.seg
	err := w.sync()
	if cerr := seg.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close segment %s: %w", seg.meta.ID, cerr)
	}
	if err == nil {
		if seg.meta.Bytes == 0 {
			os.Remove(w.s.path(seg.meta.ID, ".jsonl"))
		} else {
			seg.meta.Sealed = w.s.now().UTC()
			for _, sess := range w.latest {
				seg.meta.Sessions = append(seg.meta.Sessions, sess)
			}
			err = w.s.writeMeta(&seg.meta)
		}
	}
	if uerr := seg.lock.Unlock(); err == nil && uerr != nil {
		err = fmt.Errorf("unlock segment %s: %w", seg.meta.ID, uerr)
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
