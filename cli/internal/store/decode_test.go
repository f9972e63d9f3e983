package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/event/eventtest"
)

// TestMetaDecoder holds the fast decoder to encoding/json on every shape of
// event, and checks that it gives up (so the caller falls back) rather than
// guess on what it does not know.
func TestDecodeEventMeta(t *testing.T) {
	var evs []event.Event
	for i := range 48 {
		evs = append(evs, testEvent(testID("s"), fmt.Sprint(i), i, baseTime.Add(time.Duration(i)*time.Nanosecond*1001)))
	}
	zero := 0.0
	tr := true
	evs = append(evs,
		event.Event{ID: "x", TS: baseTime, Server: `quo"ted`, Method: "tools/call"},
		event.Event{ID: "y", TS: baseTime.In(time.FixedZone("", 3600)), LatencyMS: &zero, IsError: &tr, PayloadTruncated: true, CostUSD: 1e-9, Risk: &event.Risk{}},
		event.Event{ID: "z", TS: baseTime, Server: "ünïcode ✓", Risk: &event.Risk{Score: 1, Level: event.LevelLow, Reasons: []string{"a", "b"}}},
	)
	for i := range evs {
		var buf bytes.Buffer
		if err := appendEventLine(&buf, &evs[i]); err != nil {
			t.Fatal(err)
		}
		line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		meta, _ := eventMeta(line)
		var want event.Event
		if err := json.Unmarshal(meta, &want); err != nil {
			t.Fatal(err)
		}
		var got event.Event
		if err := decodeEventMeta(line, &got); err != nil {
			t.Errorf("event %d: %v on %s", i, err, line)
			continue
		}
		if !reflect.DeepEqual(got, want) || !got.TS.Equal(want.TS) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("event %d:\n got %s\nwant %s", i, g, w)
		}
	}
	for _, bad := range []string{
		`{"e":{"id":"a","ts":"yesterday"}}`,
		`{"e":{"id":"a","size":1x}}`,
		`{"e":{"id":"a"`,
		`{"s":{"id":"a"}}`,
	} {
		var e event.Event
		if err := decodeEventMeta([]byte(bad), &e); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
}

// TestEveryEventFieldRoundTrips fails when a field added to event.Event is
// left out by the hand-written encoder (event.AppendJSON, the store's and
// the wire's) or by the decoder: each field gets a non-zero value,
// and the event must encode as json.Marshal does and come back whole.
func TestEveryEventFieldRoundTrips(t *testing.T) {
	var e event.Event
	eventtest.FillNonZero(t, &e, time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC))

	checkEncodeSame(t, e)

	noPayload := e
	noPayload.Payload = nil
	got, ok := event.AppendJSON(nil, &noPayload)
	if !ok {
		t.Fatal("AppendJSON failed")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(got, &keys); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[event.Event]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if _, ok := keys[name]; !ok && name != "payload" {
			t.Errorf("AppendJSON leaves out %s (%s)", typ.Field(i).Name, name)
		}
	}

	var buf bytes.Buffer
	if err := appendEventLine(&buf, &e); err != nil {
		t.Fatal(err)
	}
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	var dec event.Event
	if err := decodeEventMeta(line, &dec); err != nil {
		t.Fatalf("decodeEventMeta: %v on %s", err, line)
	}
	if !reflect.DeepEqual(dec, noPayload) {
		g, _ := json.Marshal(dec)
		w, _ := json.Marshal(noPayload)
		t.Errorf("decodeEventMeta:\n got %s\nwant %s", g, w)
	}
	full, err := decodeEvent(line)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(full, e) {
		t.Errorf("decodeEvent:\n got %+v\nwant %+v", full, e)
	}
}
