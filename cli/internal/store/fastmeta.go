package store

import (
	"bytes"
	"strconv"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// metaDecoder decodes the event objects this package writes (json.Marshal
// of event.Event without its payload) about five times faster than
// encoding/json, which matters when stats read every event of a window.
// Anything it does not expect (an escape in a string, an unknown field)
// makes it give up, and the caller falls back to encoding/json, so it is
// never wrong, only sometimes not faster. It interns repeated strings
// (servers, methods, tools), so it is not safe for concurrent use.
type metaDecoder struct {
	b      []byte
	i      int
	intern map[string]string
}

func newMetaDecoder() *metaDecoder { return &metaDecoder{intern: map[string]string{}} }

// decode fills e (reset first) from an event line; false means use
// encoding/json instead.
func (d *metaDecoder) decode(line []byte, e *event.Event) bool {
	meta, ok := eventMeta(line)
	if !ok {
		return false
	}
	*e = event.Event{}
	d.b, d.i = meta, 0
	return d.object(func(key []byte) bool { return d.eventField(key, e) }) && d.i == len(d.b)
}

func (d *metaDecoder) eventField(key []byte, e *event.Event) bool {
	var ok bool
	switch string(key) {
	case "id":
		e.ID, ok = d.str(false)
	case "session_id":
		e.SessionID, ok = d.str(true)
	case "seq":
		e.Seq, ok = d.int()
	case "ts":
		var s []byte
		if s, ok = d.rawStr(); ok {
			var err error
			e.TS, err = time.Parse(time.RFC3339Nano, string(s))
			ok = err == nil
		}
	case "direction":
		var s string
		s, ok = d.str(true)
		e.Direction = event.Direction(s)
	case "kind":
		var s string
		s, ok = d.str(true)
		e.Kind = event.Kind(s)
	case "server":
		e.Server, ok = d.str(true)
	case "rpc_id":
		e.RPCID, ok = d.str(false)
	case "method":
		e.Method, ok = d.str(true)
	case "tool":
		e.Tool, ok = d.str(true)
	case "prompt":
		e.Prompt, ok = d.str(true)
	case "resource_uri":
		e.ResourceURI, ok = d.str(false)
	case "retry":
		e.Retry, ok = d.bool()
	case "error_message":
		e.ErrorMessage, ok = d.str(false)
	case "latency_ms":
		var f float64
		if f, ok = d.float(); ok {
			e.LatencyMS = &f
		}
	case "error_code":
		var n int64
		if n, ok = d.int(); ok {
			c := int(n)
			e.ErrorCode = &c
		}
	case "is_error":
		var v bool
		if v, ok = d.bool(); ok {
			e.IsError = &v
		}
	case "size":
		e.Size, ok = d.int()
	case "cost_usd":
		e.CostUSD, ok = d.float()
	case "tokens":
		e.Tokens, ok = d.int()
	case "payload_truncated":
		e.PayloadTruncated, ok = d.bool()
	case "risk":
		r := &event.Risk{}
		ok = d.object(func(key []byte) bool {
			var ok bool
			switch string(key) {
			case "score":
				var n int64
				n, ok = d.int()
				r.Score = int(n)
			case "level":
				var s string
				s, ok = d.str(true)
				r.Level = event.Level(s)
			case "reasons":
				ok = d.strings(&r.Reasons)
			}
			return ok
		})
		e.Risk = r
	}
	return ok
}

// object reads {"key":value,...}, calling field after each key to read the
// value.
func (d *metaDecoder) object(field func(key []byte) bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	for {
		key, ok := d.rawStr()
		if !ok || !d.eat(':') || !field(key) {
			return false
		}
		if d.eat(',') {
			continue
		}
		return d.eat('}')
	}
}

func (d *metaDecoder) strings(out *[]string) bool {
	if !d.eat('[') {
		return false
	}
	if d.eat(']') {
		return true
	}
	for {
		s, ok := d.str(true)
		if !ok {
			return false
		}
		*out = append(*out, s)
		if d.eat(',') {
			continue
		}
		return d.eat(']')
	}
}

func (d *metaDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// rawStr reads a string with no escapes and returns its bytes.
func (d *metaDecoder) rawStr() ([]byte, bool) {
	if !d.eat('"') {
		return nil, false
	}
	j := bytes.IndexByte(d.b[d.i:], '"')
	if j < 0 {
		return nil, false
	}
	s := d.b[d.i : d.i+j]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	d.i += j + 1
	return s, true
}

func (d *metaDecoder) str(intern bool) (string, bool) {
	b, ok := d.rawStr()
	if !ok {
		return "", false
	}
	if !intern {
		return string(b), true
	}
	if s, ok := d.intern[string(b)]; ok {
		return s, true
	}
	s := string(b)
	if len(d.intern) < 4096 {
		d.intern[s] = s
	}
	return s, true
}

func (d *metaDecoder) number() []byte {
	j := d.i
	for j < len(d.b) {
		switch c := d.b[j]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			j++
			continue
		}
		break
	}
	n := d.b[d.i:j]
	d.i = j
	return n
}

func (d *metaDecoder) int() (int64, bool) {
	n, err := strconv.ParseInt(string(d.number()), 10, 64)
	return n, err == nil
}

func (d *metaDecoder) float() (float64, bool) {
	f, err := strconv.ParseFloat(string(d.number()), 64)
	return f, err == nil
}

func (d *metaDecoder) bool() (bool, bool) {
	switch {
	case bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += 4
		return true, true
	case bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += 5
		return false, true
	}
	return false, false
}
