package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// TestMetaDecoder holds the fast decoder to encoding/json on every shape of
// event, and checks that it gives up (so the caller falls back) rather than
// guess on what it does not know.
func TestMetaDecoder(t *testing.T) {
	var evs []event.Event
	for i := range 48 {
		evs = append(evs, testEvent(testID("s"), fmt.Sprint(i), i, baseTime.Add(time.Duration(i)*time.Nanosecond*1001)))
	}
	zero := 0.0
	tr := true
	evs = append(evs,
		event.Event{ID: "x", TS: baseTime, Server: `quo"ted`, Method: "tools/call"}, // escape: fallback
		event.Event{ID: "y", TS: baseTime.In(time.FixedZone("", 3600)), LatencyMS: &zero, IsError: &tr, PayloadTruncated: true, CostUSD: 1e-9, Risk: &event.Risk{}},
		event.Event{ID: "z", TS: baseTime, Server: "ünïcode ✓", Risk: &event.Risk{Score: 1, Level: event.LevelLow, Reasons: []string{"a", "b"}}},
	)
	dec := newMetaDecoder()
	for i := range evs {
		var buf bytes.Buffer
		if err := appendEventLine(&buf, &evs[i]); err != nil {
			t.Fatal(err)
		}
		line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		var want event.Event
		if err := decodeEventMeta(line, &want); err != nil {
			t.Fatal(err)
		}
		var got event.Event
		ok := dec.decode(line, &got)
		if evs[i].ID == "x" {
			if ok {
				t.Errorf("decoded an escaped string instead of falling back")
			}
			continue
		}
		if !ok {
			t.Errorf("event %d: gave up on %s", i, line)
			continue
		}
		if !reflect.DeepEqual(got, want) || !got.TS.Equal(want.TS) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("event %d:\n got %s\nwant %s", i, g, w)
		}
	}
	for _, bad := range []string{
		`{"e":{"id":"a","extra":1}}`,
		`{"e":{"id":"a","ts":"yesterday"}}`,
		`{"e":{"id":"a","size":1x}}`,
		`{"e":{"id":"a"`,
		`{"s":{"id":"a"}}`,
	} {
		var e event.Event
		if dec.decode([]byte(bad), &e) {
			t.Errorf("decoded %s", bad)
		}
	}
}
