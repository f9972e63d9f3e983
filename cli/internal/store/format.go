package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	segjson "github.com/segmentio/encoding/json"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// A segment line is one JSON object on one line:
//
//	{"s":<session>}
//	{"e":<event without its payload>}
//	{"e":<event without its payload>,"p":<payload>}
//
// The payload comes last and apart so that readers that do not need it
// (stats, filtering) decode the event's fields alone: the first `},"p":` of
// a line can only be the end of the event object, because a quote inside a
// JSON string is always escaped and no event field is named "p".
var (
	prefixEvent   = []byte(`{"e":`)
	prefixSession = []byte(`{"s":`)
	payloadSep    = []byte(`},"p":`)
)

// lineKind is the type of a segment line.
type lineKind byte

const (
	lineUnknown lineKind = iota
	lineEvent
	lineSession
)

func kindOf(line []byte) lineKind {
	switch {
	case bytes.HasPrefix(line, prefixEvent):
		return lineEvent
	case bytes.HasPrefix(line, prefixSession):
		return lineSession
	}
	return lineUnknown
}

// appendSessionLine encodes s as a line (with its newline) onto buf.
func appendSessionLine(buf *bytes.Buffer, s *event.Session) error {
	b, ok := event.AppendSessionJSON(append(buf.AvailableBuffer(), prefixSession...), s)
	if !ok {
		_, err := json.Marshal(s)
		return fmt.Errorf("encode session %s: %w", s.ID, err)
	}
	buf.Write(append(b, "}\n"...))
	return nil
}

// eventMeta returns the event object of an event line, without the payload.
func eventMeta(line []byte) ([]byte, bool) {
	if !bytes.HasPrefix(line, prefixEvent) || len(line) < len(prefixEvent)+2 || line[len(line)-1] != '}' {
		return nil, false
	}
	if i := bytes.Index(line, payloadSep); i >= 0 {
		return line[len(prefixEvent) : i+1], true
	}
	return line[len(prefixEvent) : len(line)-1], true
}

// eventPayload returns the payload of an event line as written, nil when it
// has none.
func eventPayload(line []byte) []byte {
	i := bytes.Index(line, payloadSep)
	if i < 0 || line[len(line)-1] != '}' {
		return nil
	}
	return line[i+len(payloadSep) : len(line)-1]
}

// decodeEventMeta decodes an event line's fields except the payload into e,
// which it resets first. Readers that go through every event (a first
// read of a segment, shipping) spend most of their time here, so it is
// segmentio's decoder: it reads what encoding/json reads, several times
// faster (see the package doc). The fields must be valid UTF-8
// (fieldsIntact), which encoding/json would mend and segmentio keeps.
func decodeEventMeta(line []byte, e *event.Event) error {
	meta, ok := eventMeta(line)
	if !ok {
		return errors.New("not an event line")
	}
	*e = event.Event{}
	return segjson.Unmarshal(meta, e)
}

// decodeEvent decodes a whole event line, payload included.
func decodeEvent(line []byte) (event.Event, error) {
	var rec struct {
		E event.Event     `json:"e"`
		P json.RawMessage `json:"p"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return event.Event{}, err
	}
	if len(rec.P) > 0 {
		rec.E.Payload = rec.P
	}
	return rec.E, nil
}

// decodeSession decodes a session line.
func decodeSession(line []byte) (event.Session, error) {
	var rec struct {
		S event.Session `json:"s"`
	}
	err := json.Unmarshal(line, &rec)
	return rec.S, err
}

// scanBufSize is scanLines' read buffer.
const scanBufSize = 64 << 10

// errStop ends a scan early without error.
var errStop = errors.New("stop scan")

// scanLines calls fn with each complete line (without its newline) of the
// file at path, starting at byte offset from, and its offset. A last line
// with no newline is torn (its writer died, or is still writing it) and is
// not passed. The line is only valid during the call. scanLines returns the
// offset just past the last line passed; fn returning errStop ends the scan
// there (the line it was given is not counted).
func scanLines(ctx context.Context, path string, from int64, fn func(off int64, line []byte) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return from, err
	}
	defer f.Close()
	if from > 0 {
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return from, fmt.Errorf("seek %s: %w", path, err)
		}
	}
	// 64 KiB: the shipping monitor scans the spool for every batch it
	// claims, and a bigger buffer per scan is garbage that raises its peak
	// RSS; lines longer than the buffer are still read whole, below.
	br := bufio.NewReaderSize(f, scanBufSize)
	off := from
	var long []byte
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return off, err
			}
		}
		chunk, err := br.ReadSlice('\n')
		line := chunk
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], chunk...)
			for errors.Is(err, bufio.ErrBufferFull) {
				chunk, err = br.ReadSlice('\n')
				long = append(long, chunk...)
			}
			line = long
		}
		if err == io.EOF {
			return off, nil // nothing more, or a torn last line
		}
		if err != nil {
			return off, fmt.Errorf("read %s: %w", path, err)
		}
		if err := fn(off, line[:len(line)-1]); err != nil {
			if errors.Is(err, errStop) {
				return off, nil
			}
			return off, err
		}
		off += int64(len(line))
	}
}
