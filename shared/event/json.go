package event

import (
	"math"
	"strconv"
	"time"

	"github.com/kilometers-ai/kilometers/shared/jsonstr"
)

// AppendJSON appends e as a JSON object without its payload, byte for byte
// what json.Marshal writes for e with a nil Payload (field order,
// omitempty, HTML-safe string escapes, float format), about three times
// faster and without allocating: it is how the CLI writes every event to its
// store and onto the wire. It reports false, having appended nothing
// useful, for values json.Marshal fails on (a time outside years 0-9999, a
// NaN or infinite float); use json.Marshal for its error then.
func AppendJSON(b []byte, e *Event) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, e.ID)
	b = append(b, `,"session_id":`...)
	b = AppendJSONString(b, e.SessionID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"ts":`...)
	var ok bool
	if b, ok = AppendJSONTime(b, e.TS); !ok {
		return b, false
	}
	b = append(b, `,"direction":`...)
	b = AppendJSONString(b, string(e.Direction))
	b = append(b, `,"kind":`...)
	b = AppendJSONString(b, string(e.Kind))
	if e.Server != "" {
		b = append(b, `,"server":`...)
		b = AppendJSONString(b, e.Server)
	}
	if e.RPCID != "" {
		b = append(b, `,"rpc_id":`...)
		b = AppendJSONString(b, e.RPCID)
	}
	if e.Method != "" {
		b = append(b, `,"method":`...)
		b = AppendJSONString(b, e.Method)
	}
	if e.Tool != "" {
		b = append(b, `,"tool":`...)
		b = AppendJSONString(b, e.Tool)
	}
	if e.Prompt != "" {
		b = append(b, `,"prompt":`...)
		b = AppendJSONString(b, e.Prompt)
	}
	if e.ResourceURI != "" {
		b = append(b, `,"resource_uri":`...)
		b = AppendJSONString(b, e.ResourceURI)
	}
	if e.Retry {
		b = append(b, `,"retry":true`...)
	}
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
	if e.ErrorMessage != "" {
		b = append(b, `,"error_message":`...)
		b = AppendJSONString(b, e.ErrorMessage)
	}
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	if r := e.Risk; r != nil {
		b = append(b, `,"risk":{"score":`...)
		b = strconv.AppendInt(b, int64(r.Score), 10)
		b = append(b, `,"level":`...)
		b = AppendJSONString(b, string(r.Level))
		if len(r.Reasons) > 0 {
			b = append(b, `,"reasons":`...)
			b = appendJSONStrings(b, r.Reasons)
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

// AppendSessionJSON appends s as a JSON object, byte for byte what
// json.Marshal writes for s, as AppendJSON does for an event. The store
// writes a segment's sessions with it each time the segment is sealed, on
// the monitor's side of the pipe, where reflection made the process touch
// hundreds of kilobytes of the binary it touched nowhere else. It reports
// false for a time json.Marshal fails on (outside years 0-9999).
func AppendSessionJSON(b []byte, s *Session) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, s.ID)
	for _, f := range [...]struct{ key, v string }{
		{`,"server":`, s.Server}, {`,"server_name":`, s.ServerName}, {`,"server_version":`, s.ServerVersion},
		{`,"client_name":`, s.ClientName}, {`,"client_version":`, s.ClientVersion},
		{`,"protocol_version":`, s.ProtocolVersion},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = AppendJSONString(b, f.v)
		}
	}
	if len(s.Command) > 0 {
		b = append(b, `,"command":`...)
		b = appendJSONStrings(b, s.Command)
	}
	if s.Host != "" {
		b = append(b, `,"host":`...)
		b = AppendJSONString(b, s.Host)
	}
	var ok bool
	b = append(b, `,"started_at":`...)
	if b, ok = AppendJSONTime(b, s.StartedAt); !ok {
		return b, false
	}
	if s.EndedAt != nil {
		b = append(b, `,"ended_at":`...)
		if b, ok = AppendJSONTime(b, *s.EndedAt); !ok {
			return b, false
		}
	}
	if s.ExitCode != nil {
		b = append(b, `,"exit_code":`...)
		b = strconv.AppendInt(b, int64(*s.ExitCode), 10)
	}
	if s.DroppedEvents != 0 {
		b = append(b, `,"dropped_events":`...)
		b = strconv.AppendInt(b, s.DroppedEvents, 10)
	}
	if len(s.Warnings) > 0 {
		b = append(b, `,"warnings":`...)
		b = appendJSONStrings(b, s.Warnings)
	}
	return append(b, '}'), true
}

// AppendJSONTime appends t as json.Marshal writes a time.Time, and reports
// false where json.Marshal fails (a year outside 0-9999).
func AppendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, false
	}
	return append(b, '"'), true
}

func appendJSONStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, s)
	}
	return append(b, ']')
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

// AppendJSONString appends s as a JSON string the way encoding/json does by
// default: HTML-significant characters, U+2028 and U+2029 escaped, invalid
// UTF-8 replaced by U+FFFD.
func AppendJSONString(b []byte, s string) []byte { return jsonstr.Append(b, s, true) }
