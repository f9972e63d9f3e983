package redact

import (
	"testing"

	segjson "github.com/segmentio/encoding/json"
)

// segmentioFirstPass is the least a redactor built on segmentio/encoding's
// tokenizer would do to decide that a document needs no change: walk every
// token, and decode and scan every string that is not a key. It checks
// neither keys nor containers and writes nothing, so it bounds such a
// redactor's cost from below on the payloads that almost all shipped
// events are (nothing to redact).
func segmentioFirstPass(raw []byte) ([]byte, bool, error) {
	t := segjson.NewTokenizer(raw)
	changed := false
	for t.Next() {
		if t.IsKey || t.Kind().Class() != segjson.String {
			continue
		}
		if _, ch := redactString(string(t.String())); ch {
			changed = true
		}
	}
	return raw, changed, t.Err
}

// BenchmarkJSONSegmentioBound runs segmentioFirstPass on the payloads of
// BenchmarkJSON*, to set beside them.
func BenchmarkJSONSegmentioBound(b *testing.B) {
	for name, in := range map[string][]byte{
		"Large": largePayload(), "ToolsCallRequest": toolsCallRequest(),
		"ToolsCallResult": toolsCallResult(), "ToolsList": []byte(toolsListResult),
	} {
		b.Run(name, func(b *testing.B) { benchJSON(b, segmentioFirstPass, in) })
	}
}
