package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// appendEventLine encodes e as a line (with its newline) onto buf.
//
// The event's fields are appended by hand rather than through json.Marshal:
// reflection was the largest single cost of recording an event. The bytes
// are exactly json.Marshal's (field order, omitempty, HTML-safe string
// escapes, float format), which the tests hold it to. Values json.Marshal
// would reject (a time outside years 0-9999, a NaN or infinite float) go
// through json.Marshal itself, so the error is the one it always was.
func appendEventLine(buf *bytes.Buffer, e *event.Event) error {
	b, ok := appendEventMeta(buf.AvailableBuffer(), e)
	if !ok {
		return appendEventLineReflect(buf, e)
	}
	buf.Write(b)
	appendPayload(buf, e.Payload)
	buf.WriteString("}\n")
	return nil
}

// appendEventLineReflect is appendEventLine through json.Marshal.
func appendEventLineReflect(buf *bytes.Buffer, e *event.Event) error {
	m := *e
	m.Payload = nil
	meta, err := json.Marshal(&m)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	buf.Write(prefixEvent)
	buf.Write(meta)
	appendPayload(buf, e.Payload)
	buf.WriteString("}\n")
	return nil
}

// appendPayload appends the `,"p":` member of an event line, if any.
func appendPayload(buf *bytes.Buffer, payload json.RawMessage) {
	if len(payload) == 0 {
		return
	}
	buf.WriteString(`,"p":`)
	n := buf.Len()
	if err := json.Compact(buf, payload); err != nil {
		// Not JSON after all: keep it, as a JSON string, so the line
		// stays one valid line.
		buf.Truncate(n)
		buf.Write(event.AppendJSONString(buf.AvailableBuffer(), string(payload)))
	}
}

// appendEventMeta appends `{"e":` and e's fields but the payload, as
// json.Marshal encodes them. It reports false, having appended nothing
// useful, for values json.Marshal fails on.
func appendEventMeta(b []byte, e *event.Event) ([]byte, bool) {
	return event.AppendJSON(append(b, prefixEvent...), e)
}
