package httpapi

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	segjson "github.com/segmentio/encoding/json"

	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// maxPooledBody bounds the buffers kept for reuse, so one huge body does
// not pin its memory in a warm process: a batch of the CLI's default 500
// events inflates to a few hundred KiB.
const maxPooledBody = 4 << 20

// bodyPools keep what reading a body allocates (the inflate state of a gzip
// reader is about 40 KiB, the body buffer a few hundred) for the next
// request of a warm process.
type bodyPools struct {
	gzip   sync.Pool // *gzip.Reader
	buf    sync.Pool // *bytes.Buffer
	events sync.Pool // *[]event.Event, every element zero
}

// maxPooledEvents bounds the events slices kept for reuse (the decoder
// grows a slice by doubling from 10: 640 elements hold the CLI's 500).
const maxPooledEvents = 1280

// getEvents returns an empty slice to decode a batch's events into, with
// the capacity of an earlier batch's when there is one; every element up
// to its capacity is zero (putEvents cleared it), so the decoder, which
// decodes into the elements in place, leaves nothing of an earlier
// request in a new one.
func (p *bodyPools) getEvents() []event.Event {
	if s, _ := p.events.Get().(*[]event.Event); s != nil {
		return (*s)[:0]
	}
	return nil
}

// putEvents keeps events for a later request once nothing refers to them
// any more (the store has returned). It clears them first: the pool
// neither keeps a tenant's data alive nor hands it to the next request.
func (p *bodyPools) putEvents(events []event.Event) {
	if cap(events) == 0 || cap(events) > maxPooledEvents {
		return
	}
	events = events[:cap(events)]
	clear(events)
	events = events[:0]
	p.events.Put(&events)
}

// readBody reads a request body of at most backend.MaxBodyBytes, inflating
// it when Content-Encoding is gzip. Both the bytes on the wire and the
// inflated bytes are bounded: inflation stops one byte past the limit, so a
// gzip bomb costs at most MaxBodyBytes of memory before it is refused.
// The body lives in a pooled buffer: call release once nothing refers to
// it any more (decoding copies what it keeps).
func (p *bodyPools) readBody(r *http.Request) (body []byte, release func(), err error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, nil, backend.Errorf(backend.EUNSUPPORTED, "Content-Type must be application/json, got %q", ct)
		}
	}
	if r.ContentLength > backend.MaxBodyBytes {
		return nil, nil, tooLarge()
	}
	var src io.Reader = http.MaxBytesReader(nil, r.Body, backend.MaxBodyBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, _ := p.gzip.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		if err := zr.Reset(src); err != nil {
			return nil, nil, backend.Errorf(backend.EINVALID, "body is not valid gzip")
		}
		// The reader goes back to the pool once the body is read; a
		// reader left in a failed state is fine, Reset clears it.
		defer p.gzip.Put(zr)
		src = zr
	default:
		return nil, nil, backend.Errorf(backend.EUNSUPPORTED, "Content-Encoding must be gzip or identity, got %q", enc)
	}
	buf, _ := p.buf.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	release = func() {
		if buf.Cap() <= maxPooledBody {
			p.buf.Put(buf)
		}
	}
	if _, err := buf.ReadFrom(io.LimitReader(src, backend.MaxBodyBytes+1)); err != nil {
		release()
		var maxErr *http.MaxBytesError
		var corrupt flate.CorruptInputError
		switch {
		case errors.As(err, &maxErr):
			return nil, nil, tooLarge()
		case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader),
			errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &corrupt):
			return nil, nil, backend.Errorf(backend.EINVALID, "body is not valid gzip (truncated or corrupt)")
		default:
			return nil, nil, fmt.Errorf("read body: %w", err)
		}
	}
	if buf.Len() > backend.MaxBodyBytes {
		release()
		return nil, nil, tooLarge()
	}
	return buf.Bytes(), release, nil
}

func tooLarge() error {
	return backend.Errorf(backend.ETOOLARGE, "body larger than %d bytes (limit applies after gzip inflation)", backend.MaxBodyBytes)
}

// decodeJSON decodes one JSON value from body into v. Unknown fields are
// ignored (newer clients may send fields this server does not know yet);
// anything after the value, truncated JSON and wrong types are refused with
// a message naming the problem.
//
// encoding/json is the reference for what is accepted and how a refusal
// is worded, but it spends most of a batch's CPU in reflection; the
// segmentio decoder takes the same struct tags, copies every string and
// RawMessage out of body (ZeroCopy is off, so body can be reused), and is
// several times faster. It decodes first; only bodies it refuses are
// decoded again by encoding/json, which then decides and words the error.
// FuzzDecodeMatchesStdlib checks that both accept the same bodies (invalid
// UTF-8 included: both replace it with U+FFFD) into the same values.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return backend.Errorf(backend.EINVALID, "body is empty; want a JSON object")
	}
	if err := checkShape(body, v); err != nil {
		return err
	}
	rest, err := segjson.Parse(body, v, 0)
	if err == nil {
		if len(bytes.TrimSpace(rest)) != 0 {
			return errTrailingData()
		}
		return nil
	}
	// A refused body may have been decoded in part.
	reflect.ValueOf(v).Elem().SetZero()
	return decodeJSONStd(body, v)
}

// checkShape bounds the nesting and the arrays of a body before any of it
// is decoded (event.CheckBatchShape): no decoder then recurses deeper than
// a few hundred frames, and what decoding allocates stays a small multiple
// of the body whatever the body holds.
func checkShape(body []byte, v any) error {
	var err error
	switch v.(type) {
	case *event.Batch:
		err = event.CheckBatchShape(body, backend.MaxBatchEvents)
	case *event.Event:
		err = event.CheckEventShape(body)
	default:
		if event.PayloadTooDeep(body) {
			return backend.Errorf(backend.EINVALID, "body nests deeper than %d levels", event.MaxPayloadDepth)
		}
	}
	var se *event.ShapeError
	if errors.As(err, &se) {
		if se.TooMany {
			return backend.Errorf(backend.ETOOLARGE, "%s", se.Error())
		}
		return backend.Errorf(backend.EINVALID, "%s", se.Error())
	}
	return err
}

// decodeJSONStd is decodeJSON with encoding/json alone.
func decodeJSONStd(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailingData()
	}
	return nil
}

func errTrailingData() error {
	return backend.Errorf(backend.EINVALID, "body has data after the JSON value")
}

func jsonError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var timeErr *time.ParseError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return backend.Errorf(backend.EINVALID, "body is truncated JSON")
	case errors.As(err, &syntaxErr):
		return backend.Errorf(backend.EINVALID, "body is not valid JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return backend.Errorf(backend.EINVALID, "body must be a JSON object, got %s", typeErr.Value)
		}
		return backend.Errorf(backend.EINVALID, "%s: want %s, got %s", field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &timeErr):
		return backend.Errorf(backend.EINVALID, "a timestamp is not RFC 3339: %q", timeErr.Value)
	default:
		// Other decoding errors come from json.Unmarshaler implementations
		// (time.Time, json.RawMessage); their text names the bad value.
		return backend.Errorf(backend.EINVALID, "body does not match the expected JSON: %s", err.Error())
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value"
	}
	return kind
}

// DecodeBatch turns a request body (already inflated) into a cleaned
// (event.Batch.Clean), valid batch, or
// an *backend.Error saying what is wrong: malformed JSON is EINVALID, too
// many events ETOOLARGE, an invalid event or session EINVALID naming it.
// Nothing is stored unless DecodeBatch succeeds, so a bad batch leaves
// nothing partial behind.
func DecodeBatch(body []byte, now time.Time) (event.Batch, error) {
	return decodeBatchInto(body, now, nil)
}

// decodeBatchInto is DecodeBatch decoding the events into the capacity of
// events, which must be zero up to its capacity (bodyPools.getEvents).
func decodeBatchInto(body []byte, now time.Time, events []event.Event) (event.Batch, error) {
	b := event.Batch{Events: events}
	if err := decodeJSON(body, &b); err != nil {
		return event.Batch{}, err
	}
	return b, checkBatch(&b, now)
}

// DecodeEvent is DecodeBatch for the body of POST /api/events: one event.
func DecodeEvent(body []byte, now time.Time) (event.Batch, error) {
	var e event.Event
	if err := decodeJSON(body, &e); err != nil {
		return event.Batch{}, err
	}
	e.Clean()
	b := event.Batch{Events: []event.Event{e}}
	if err := e.Validate(now); err != nil {
		return event.Batch{}, backend.Errorf(backend.EINVALID, "%s", err.Error())
	}
	return b, nil
}

func checkBatch(b *event.Batch, now time.Time) error {
	if len(b.Events) > backend.MaxBatchEvents {
		return backend.Errorf(backend.ETOOLARGE, "batch has %d events; at most %d are allowed", len(b.Events), backend.MaxBatchEvents)
	}
	if len(b.Sessions) > backend.MaxBatchEvents {
		return backend.Errorf(backend.ETOOLARGE, "batch has %d sessions; at most %d are allowed", len(b.Sessions), backend.MaxBatchEvents)
	}
	if len(b.Events) == 0 && len(b.Sessions) == 0 {
		return backend.Errorf(backend.EINVALID, `batch has no "events" and no "sessions"`)
	}
	b.Clean()
	if err := b.Validate(now); err != nil {
		return backend.Errorf(backend.EINVALID, "%s", err.Error())
	}
	return nil
}
