package ship

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/redact"
)

// Outgoing is e as it may leave the machine under a capture mode: full
// keeps the payload, redacted (and any unknown mode) redacts it, metadata
// drops it; a payload that is not valid JSON never leaves. Then
// event.Clean, the rule the API applies to what it stores. Shipping and
// the OTLP export both follow it; e's payload is not modified (an
// unchanged one is shared, not copied).
func Outgoing(e event.Event, mode string) event.Event {
	e.Payload, e.PayloadTruncated = outgoing(&e, mode)
	e.Clean()
	return e
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
		// Not JSON (a damaged store line; the monitor keeps a message
		// over its cap as a JSON string): no way to redact it reliably,
		// so it does not leave the machine.
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

// writeBatch writes the batch of sessions and events as they may leave the
// machine under mode (Outgoing; command lines redacted unless the mode is
// full) as JSON and a newline to w, event by event: neither the prepared
// batch nor its encoding is ever whole in memory, and payloads with nothing
// to redact are written as they were stored. It fails with errBodyTooBig as soon as the JSON
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
		e := Outgoing(events[i], mode)
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
	return err
}

// encoder gzips what writeBatch writes, at BestSpeed as
// apiclient.EncodeBatch does. It keeps its gzip writer from batch to batch:
// a deflate writer allocates about 1 MiB, and narrowing a refused batch
// sends dozens of small requests.
type encoder struct {
	mu sync.Mutex
	zw *gzip.Writer
}

// encode returns the gzipped batch in a new buffer of about sizeHint/4
// bytes (an HTTP transport may still read a request body after the
// response came back).
func (c *encoder) encode(sessions []event.Session, events []event.Event, mode string, limit int, sizeHint int) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := bytes.NewBuffer(make([]byte, 0, sizeHint/4+512))
	if c.zw == nil {
		zw, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		c.zw = zw
	} else {
		c.zw.Reset(out)
	}
	if err := writeBatch(c.zw, sessions, events, mode, limit); err != nil {
		return nil, err
	}
	if err := c.zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return out.Bytes(), nil
}
