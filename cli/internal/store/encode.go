package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"

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
	if compactString(payload) {
		// What json.Compact would write, byte for byte, at a fraction of
		// its cost: the payload of a large or unframed message is a string
		// the monitor encoded, tens of KiB that Compact walked byte by
		// byte through its state machine.
		buf.Write(payload)
		return
	}
	n := buf.Len()
	if err := json.Compact(buf, payload); err != nil {
		// Not JSON after all: keep it, as a JSON string, so the line
		// stays one valid line.
		buf.Truncate(n)
		buf.Write(event.AppendJSONString(buf.AvailableBuffer(), string(payload)))
	}
}

// compactString reports whether p is exactly one JSON string, as
// encoding/json's scanner accepts it (no control bytes, only its escapes;
// other bytes pass as they are) with nothing around it: then json.Compact
// would copy it unchanged.
func compactString(p []byte) bool {
	if len(p) < 2 || p[0] != '"' {
		return false
	}
	for i := 1; i < len(p); {
		if i+8 <= len(p) {
			// Eight bytes at once while none is a quote, a backslash or a
			// control byte: the classic zero-byte test on w xor each,
			// and on w minus 0x20 for the bytes below it.
			// The lowest flag is exact, so the bytes below it are skipped.
			w := binary.LittleEndian.Uint64(p[i:])
			q, b := w^(ones*'"'), w^(ones*'\\')
			flags := ((q-ones)&^q | (b-ones)&^b | (w-ones*0x20)&^w) & highs
			if flags == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(flags) / 8
		}
		switch c := p[i]; {
		case c == '"':
			return i == len(p)-1
		case c < 0x20:
			return false
		case c == '\\':
			if i+1 >= len(p) {
				return false
			}
			switch p[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(p) || !isHex4(p[i+2:i+6]) {
					return false
				}
				i += 6
			default:
				return false
			}
		default:
			i++
		}
	}
	return false
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

func isHex4(h []byte) bool {
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// appendEventMeta appends `{"e":` and e's fields but the payload, as
// json.Marshal encodes them. It reports false, having appended nothing
// useful, for values json.Marshal fails on.
func appendEventMeta(b []byte, e *event.Event) ([]byte, bool) {
	return event.AppendJSON(append(b, prefixEvent...), e)
}
