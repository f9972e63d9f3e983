package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

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
		buf.Write(appendJSONString(buf.AvailableBuffer(), string(payload)))
	}
}

// appendEventMeta appends `{"e":` and e's fields but the payload, as
// json.Marshal encodes them. It reports false, having appended nothing
// useful, for values json.Marshal fails on.
func appendEventMeta(b []byte, e *event.Event) ([]byte, bool) {
	b = append(b, prefixEvent...)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"session_id":`...)
	b = appendJSONString(b, e.SessionID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"ts":"`...)
	var err error
	if b, err = e.TS.AppendText(b); err != nil {
		return b, false
	}
	b = append(b, `","direction":`...)
	b = appendJSONString(b, string(e.Direction))
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(e.Kind))
	if e.Server != "" {
		b = append(b, `,"server":`...)
		b = appendJSONString(b, e.Server)
	}
	if e.RPCID != "" {
		b = append(b, `,"rpc_id":`...)
		b = appendJSONString(b, e.RPCID)
	}
	if e.Method != "" {
		b = append(b, `,"method":`...)
		b = appendJSONString(b, e.Method)
	}
	if e.Tool != "" {
		b = append(b, `,"tool":`...)
		b = appendJSONString(b, e.Tool)
	}
	ok := true
	if e.LatencyMS != nil {
		b = append(b, `,"latency_ms":`...)
		if b, ok = appendJSONFloat(b, *e.LatencyMS); !ok {
			return b, false
		}
	}
	if e.ErrorCode != nil {
		b = append(b, `,"error_code":`...)
		b = strconv.AppendInt(b, int64(*e.ErrorCode), 10)
	}
	if e.IsError != nil {
		b = append(b, `,"is_error":`...)
		b = strconv.AppendBool(b, *e.IsError)
	}
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	if r := e.Risk; r != nil {
		b = append(b, `,"risk":{"score":`...)
		b = strconv.AppendInt(b, int64(r.Score), 10)
		b = append(b, `,"level":`...)
		b = appendJSONString(b, string(r.Level))
		if len(r.Reasons) > 0 {
			b = append(b, `,"reasons":[`...)
			for i, s := range r.Reasons {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, s)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if e.CostUSD != 0 {
		b = append(b, `,"cost_usd":`...)
		if b, ok = appendJSONFloat(b, e.CostUSD); !ok {
			return b, false
		}
	}
	if e.Tokens != 0 {
		b = append(b, `,"tokens":`...)
		b = strconv.AppendInt(b, e.Tokens, 10)
	}
	if e.PayloadTruncated {
		b = append(b, `,"payload_truncated":true`...)
	}
	b = append(b, '}')
	return b, true
}

// appendJSONFloat appends f as encoding/json formats a float64: the
// shortest representation, in exponent form only for very small or large
// magnitudes, with a one-digit negative exponent unpadded. NaN and the
// infinities have no JSON form.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendJSONString appends s as a JSON string the way encoding/json does by
// default: HTML-significant characters, U+2028 and U+2029 escaped, invalid
// UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
