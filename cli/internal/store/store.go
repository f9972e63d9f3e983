// Package store is the CLI's durable local store of events and sessions, and
// the spool that shipping reads from.
//
// There is no database: every writer (one monitor session) appends JSON lines
// to segment files that it alone owns, so writers running side by side never
// contend. A segment is locked by its writer while it is live; when the
// writer closes it (or rotates to a new one at Options.SegmentBytes) it is
// sealed: a small .meta file beside it records its time range, counts and
// the latest session records, so readers can skip it without opening it.
// A segment whose writer died (lock free, never sealed) is recovered by the
// next Open: a torn last line is cut off and the segment is sealed.
//
// Files in <home>/store, for a segment id:
//
//	<id>.jsonl   the lines: {"s":<session>} or {"e":<event without payload>,"p":<payload>}
//	<id>.lock    held (flock) by the live writer
//	<id>.meta    written once, when the segment is sealed
//	<id>.sum     its summary, written by the first reader that reads it whole (summary.go)
//	<id>.claim   held (flock) by a shipping claim
//	<id>.acked   append-only log of byte offsets shipped so far; the last whole line wins
//	<id>.<cursor>.claim, <id>.<cursor>.acked   the same for another destination (Cursor)
//
// Ids start with the creation time in nanoseconds, so name order is age order.
// Batches the API refused are kept in <home>/rejected.
//
// Event lines are decoded by segmentio's JSON decoder (decodeEventMeta).
// The store had a hand-written decoder of its own for them; measured on
// the lines of a 1M-event store (2 CPUs, loaded), it took 1.4-2.2 µs a line
// against segmentio's 1.8-3.1 µs and encoding/json's 10-14 µs
// (BenchmarkDecodeEventMeta). Once segment summaries answered stats and
// filters, a line is decoded on a segment's first whole read and when it
// is shipped, and that margin no longer paid for 244 lines of decoder.
package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Defaults for Options fields left zero.
const (
	DefaultSegmentBytes = 8 << 20
	DefaultSyncInterval = time.Second
)

// File permissions: the store may hold full payloads, so only the user may
// read it.
const (
	dirPerm  fs.FileMode = 0o700
	filePerm fs.FileMode = 0o600
)

// Options tune a Store. Zero values mean the defaults.
type Options struct {
	// RetentionDays deletes sealed segments whose newest event is older;
	// 0 keeps them forever.
	RetentionDays int
	// RetentionBytes bounds the total size of the store; 0 means no bound.
	// It is a hard limit: when nothing else is left to delete, unshipped
	// segments go too, and their events are counted as lost.
	RetentionBytes int64
	// Spool keeps segments with unshipped events past RetentionDays (set it
	// when an API is configured, see OptionsFromConfig).
	Spool bool
	// SegmentBytes is the size at which a writer seals its segment and
	// starts a new one.
	SegmentBytes int64
	// SyncInterval bounds how long a recorded event may sit in a writer's
	// buffer before it is written and synced to disk.
	SyncInterval time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives warnings (slog.Default when nil).
	Logger *slog.Logger
}

// OptionsFromConfig returns the options the configuration asks for.
func OptionsFromConfig(c *config.Config) Options {
	days, bytes := c.Retention()
	return Options{
		RetentionDays:  days,
		RetentionBytes: bytes,
		Spool:          c.APIURL != "",
	}
}

// OpenConfig opens the store in the configuration's home with the options
// it asks for.
func OpenConfig(ctx context.Context, c *config.Config) (*Store, error) {
	return Open(ctx, c.Home, OptionsFromConfig(c))
}

// Store is the local store in one directory. It holds no open files; every
// method may be called from several goroutines and processes at once.
type Store struct {
	home string
	dir  string
	opts Options
	log  *slog.Logger
	// damage counts what could not be read (damage.go).
	damage damage
	// sealHook, set by tests before any writer starts, runs as a segment
	// is sealed, after its file is synced and closed and before its index
	// is written; an error fails the seal there.
	sealHook func(id string) error
	// syncHook, the same, runs before each fsync of a segment's file.
	syncHook func(id string) error
}

// Open opens (creating if needed) the store in home, recovers segments of
// writers that died and applies retention.
func Open(ctx context.Context, home string, opts Options) (*Store, error) {
	if home == "" {
		return nil, errors.New("open store: no home directory")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{home: home, dir: filepath.Join(home, "store"), opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, d := range []string{home, s.dir} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if err := s.maintain(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the directory that holds the segments.
func (s *Store) Dir() string { return s.dir }

func (s *Store) now() time.Time { return s.opts.Now() }

// maintain seals the segments of dead writers, rebuilds damaged segment
// indexes and applies retention.
func (s *Store) maintain(ctx context.Context) error {
	segs, err := s.segments()
	if err != nil {
		return err
	}
	for _, sg := range segs {
		if sg.meta != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.recoverSegment(ctx, sg); err != nil {
			s.log.Warn("store: recover segment", "segment", sg.id, "err", err)
		}
	}
	return s.applyRetention(ctx)
}

// segment is what a reader knows of one segment file.
type segment struct {
	id   string
	size int64 // size of the data file when listed
	// modified is the data file's modification time when listed.
	modified time.Time
	meta     *segMeta // nil while the segment is live (or its writer died)
}

// segMeta describes a sealed segment.
type segMeta struct {
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	Created   time.Time `json:"created"`
	Sealed    time.Time `json:"sealed"`
	// MinTS and MaxTS bound the events' timestamps (zero when Events is 0).
	MinTS    time.Time       `json:"min_ts"`
	MaxTS    time.Time       `json:"max_ts"`
	Events   int64           `json:"events"`
	Bytes    int64           `json:"bytes"`
	Sessions []event.Session `json:"sessions,omitempty"`
	// Recovered is set when the writer died and Open sealed the segment.
	Recovered bool `json:"recovered,omitempty"`
}

// overlaps reports whether the segment may hold events in [since, until);
// zero bounds are open.
func (m *segMeta) overlaps(since, until time.Time) bool {
	if m.Events == 0 {
		return false
	}
	if !since.IsZero() && m.MaxTS.Before(since) {
		return false
	}
	if !until.IsZero() && !m.MinTS.Before(until) {
		return false
	}
	return true
}

func (s *Store) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

// segments lists the segments, oldest first.
func (s *Store) segments() ([]segment, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list store: %w", err)
	}
	metas := map[string]bool{}
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".meta"); ok {
			metas[id] = true
		}
	}
	var segs []segment
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if !ok || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by retention meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list store: %w", err)
		}
		sg := segment{id: id, size: info.Size(), modified: info.ModTime()}
		if metas[id] {
			m, err := s.readMeta(id)
			if err != nil {
				// Open rebuilds it (recoverSegment); until then the
				// segment is read as if it were live.
				s.log.Debug("store: unreadable segment index, reading the segment instead", "segment", id, "err", err)
			} else {
				sg.meta = m
			}
		}
		segs = append(segs, sg)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].id < segs[j].id })
	return segs, nil
}

func (s *Store) readMeta(id string) (*segMeta, error) {
	b, err := os.ReadFile(s.path(id, ".meta"))
	if err != nil {
		return nil, err
	}
	var m segMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode %s.meta: %w", id, err)
	}
	return &m, nil
}

// writeMeta writes a segment's index atomically.
func (s *Store) writeMeta(m *segMeta) error {
	b, ok := appendMeta(nil, m)
	if !ok {
		_, err := json.Marshal(m)
		return fmt.Errorf("encode segment index: %w", err)
	}
	return writeFileAtomic(s.path(m.ID, ".meta"), b)
}

// appendMeta appends m as json.Marshal writes it, and reports false where
// json.Marshal fails. An index is written as each segment is sealed, in
// the monitor's process: through json.Marshal, reflection's code and type
// data and the deeper stack it grew were most of the binary that a seal
// made resident (docs/performance.md, "The monitor's resident binary").
func appendMeta(b []byte, m *segMeta) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = event.AppendJSONString(b, m.ID)
	b = append(b, `,"session_id":`...)
	b = event.AppendJSONString(b, m.SessionID)
	ok := true
	for _, f := range [...]struct {
		key string
		t   time.Time
	}{{`,"created":`, m.Created}, {`,"sealed":`, m.Sealed}, {`,"min_ts":`, m.MinTS}, {`,"max_ts":`, m.MaxTS}} {
		b = append(b, f.key...)
		if b, ok = event.AppendJSONTime(b, f.t); !ok {
			return b, false
		}
	}
	b = append(b, `,"events":`...)
	b = strconv.AppendInt(b, m.Events, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, m.Bytes, 10)
	if len(m.Sessions) > 0 {
		b = append(b, `,"sessions":[`...)
		for i := range m.Sessions {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = event.AppendSessionJSON(b, &m.Sessions[i]); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	if m.Recovered {
		b = append(b, `,"recovered":true`...)
	}
	return append(b, '}'), true
}

// writeFileAtomic writes a new file through a temporary one, synced, so a
// reader sees all of it or nothing.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp-" + randomHex(4)
	err := writeSynced(tmp, os.O_EXCL, b)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return syncDir(filepath.Dir(path))
}

// appendSynced appends b to the file at path, creating it if needed, and
// syncs it; a file it created is synced into its directory too, so the
// append survives a crash either way.
func appendSynced(path string, b []byte) error {
	_, statErr := os.Stat(path)
	if err := writeSynced(path, os.O_APPEND, b); err != nil {
		return err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// writeSynced writes b to the file at path, opened with flag besides
// create and write-only, and syncs it before it returns: the one way the
// store makes a write durable, but for the segments' buffered writers.
func writeSynced(path string, flag int, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag, filePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newSegmentID names a segment so that names sort by creation time: the
// time in nanoseconds, zero-padded to 19 digits, and 12 random hex digits.
func newSegmentID(now time.Time) string {
	ns := now.UnixNano()
	if ns < 0 {
		ns = 0 // a clock before 1970 names the oldest segment possible
	}
	var b [32]byte
	digits := strconv.AppendInt(b[:0], ns, 10)
	id := make([]byte, 0, 19+1+12)
	for range 19 - len(digits) {
		id = append(id, '0')
	}
	id = append(append(id, digits...), '-')
	return string(appendRandomHex(id, 6))
}

func randomHex(n int) string { return string(appendRandomHex(nil, n)) }

// appendRandomHex appends n random bytes in hex. They come from the
// runtime's generator (ChaCha8, seeded from the operating system in each
// process), which keeps the names of concurrent writers apart as
// crypto/rand did, without crypto/rand's code on the path of each
// segment's rotation in the monitor (docs/performance.md, "The monitor's
// resident binary").
func appendRandomHex(dst []byte, n int) []byte {
	var b [8]byte
	for n > 0 {
		binary.LittleEndian.PutUint64(b[:], rand.Uint64())
		k := min(n, len(b))
		dst = hex.AppendEncode(dst, b[:k])
		n -= k
	}
	return dst
}
