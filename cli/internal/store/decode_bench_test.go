package store

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// BenchmarkDecodeEventMeta is the figure behind decodeEventMeta's choice
// of decoder (see the package doc): one typical event line's fields.
func BenchmarkDecodeEventMeta(b *testing.B) {
	var buf bytes.Buffer
	e := testEvent(testID("bench"), "bench-meta", 1, baseTime)
	if err := appendEventLine(&buf, &e); err != nil {
		b.Fatal(err)
	}
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	meta, _ := eventMeta(line)
	b.Run("encoding-json", func(b *testing.B) {
		var ev event.Event
		for b.Loop() {
			ev = event.Event{}
			if err := json.Unmarshal(meta, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("segmentio", func(b *testing.B) {
		var ev event.Event
		for b.Loop() {
			if err := decodeEventMeta(line, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
