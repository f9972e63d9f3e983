package ship

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/redact"
)

// Prepare returns the batch as it may leave the machine under a capture
// mode: full keeps payloads, redacted (and any unknown mode) redacts them,
// metadata drops them; a payload that is not valid JSON never leaves.
// Session command lines are redacted unless the mode is full. Everything
// then goes through event.Clean, the rule the API applies to what it
// stores. The inputs are not modified.
//
// Shipping itself streams the same batch onto the wire (writeBatch)
// without building it; Prepare is the rule both follow, and what tests
// compare the stream with.
func Prepare(sessions []event.Session, events []event.Event, mode string) event.Batch {
	b := event.Batch{Events: make([]event.Event, len(events)), Sessions: outgoingSessions(sessions, mode)}
	for i := range events {
		b.Events[i] = events[i]
		b.Events[i].Payload, b.Events[i].PayloadTruncated = outgoing(&events[i], mode)
		b.Events[i].Clean()
	}
	return b
}

// outgoing is e's payload as it may leave the machine under mode, and its
// payload_truncated flag. Unchanged payloads are returned as they are, not
// copied.
func outgoing(e *event.Event, mode string) (json.RawMessage, bool) {
	if mode == config.CaptureMetadata || len(e.Payload) == 0 {
		return nil, false
	}
	if mode == config.CaptureFull {
		if !json.Valid(e.Payload) {
			return nil, true
		}
		return e.Payload, e.PayloadTruncated
	}
	out, _, err := redact.JSON(e.Payload)
	if err != nil {
		// Not JSON (a capped payload cut mid-value, a damaged line): no
		// way to redact it reliably, so it does not leave the machine.
		return nil, true
	}
	return out, e.PayloadTruncated
}

func outgoingSessions(sessions []event.Session, mode string) []event.Session {
	if len(sessions) == 0 {
		return nil
	}
	out := make([]event.Session, len(sessions))
	copy(out, sessions)
	for i := range out {
		if mode != config.CaptureFull {
			out[i].Command = redact.Args(out[i].Command)
		}
		out[i].Clean()
	}
	return out
}

// errBodyTooBig is writeBatch giving up on a body over its limit.
var errBodyTooBig = errors.New("batch body over the limit")

// writeBatch writes the JSON of Prepare(sessions, events, mode) and a
// newline to w, event by event: neither the prepared batch nor its encoding
// is ever whole in memory, and payloads with nothing to redact are written
// as they were stored. It fails with errBodyTooBig as soon as the JSON
// would exceed limit bytes. Fields come in json.Marshal's order except the
// payload, which comes last; the API decodes JSON, not bytes.
func writeBatch(w io.Writer, sessions []event.Session, events []event.Event, mode string, limit int) error {
	bw := &limitWriter{w: w, left: limit}
	buf := make([]byte, 0, 1024)
	buf = append(buf, '{')
	if out := outgoingSessions(sessions, mode); len(out) > 0 {
		enc, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode sessions: %w", err)
		}
		buf = append(buf, `"sessions":`...)
		buf = append(buf, enc...)
		buf = append(buf, ',')
	}
	buf = append(buf, `"events":[`...)
	for i := range events {
		if i > 0 {
			buf = append(buf, ',')
		}
		e := events[i] // a copy: the flag may change, the payload goes apart
		e.Payload, e.PayloadTruncated = outgoing(&e, mode)
		e.Clean() // the API's rule for what is storable, applied before sending
		payload := e.Payload
		e.Payload = nil
		var ok bool
		if buf, ok = event.AppendJSON(buf, &e); !ok {
			// json.Marshal has the error for what AppendJSON cannot
			// encode.
			_, err := json.Marshal(&e)
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		if len(payload) > 0 {
			buf = append(buf[:len(buf)-1], `,"payload":`...)
			buf = append(buf, payload...)
			buf = append(buf, '}')
		}
		if len(buf) >= 32<<10 || i == len(events)-1 {
			if err := bw.write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, "]}\n"...)
	return bw.write(buf)
}

// limitWriter fails with errBodyTooBig instead of writing past its limit.
// It also yields the processor after each piece (writeBatch hands it about
// 32 KiB at a time, a few hundred microseconds of redaction and
// compression): in a monitor the relay's goroutines share the processors
// with the shipper, and one of them woken by new bytes on the pipe would
// otherwise wait in the run queue until the scheduler preempts the
// shipper, up to 10 ms later, while the other processor is busy.
type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) write(p []byte) error {
	if len(p) > l.left {
		return errBodyTooBig
	}
	l.left -= len(p)
	_, err := l.w.Write(p)
	runtime.Gosched()
	return err
}

// gzipBatch compresses what writeBatch writes, with the shipper's reused
// gzip writer, into a new buffer (an HTTP transport may still read a
// request body after the response came back). The caller holds gzMu.
func (s *Shipper) gzipBatch(sessions []event.Session, events []event.Event, limit int, sizeHint int) ([]byte, error) {
	out := bytes.NewBuffer(make([]byte, 0, sizeHint/4+512))
	if s.gz == nil {
		zw, err := newGzipWriter(out)
		if err != nil {
			return nil, err
		}
		s.gz = zw
	} else {
		s.gz.Reset(out)
	}
	if err := writeBatch(s.gz, sessions, events, s.opts.CaptureMode, limit); err != nil {
		return nil, err
	}
	if err := s.gz.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return out.Bytes(), nil
}
