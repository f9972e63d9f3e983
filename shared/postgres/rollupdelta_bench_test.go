package postgres

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// benchBatch is a batch of 500 events, the CLI's batch, with a payload
// of a few hundred bytes on each.
func benchBatch(b *testing.B) []event.Event {
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	session := uuid.Must(uuid.NewV7()).String()
	methods := []string{"tools/call", "tools/call", "resources/read", "tools/list", "notifications/progress"}
	events := make([]event.Event, 500)
	for i := range events {
		e := event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: session, Seq: int64(i),
			TS: base.Add(time.Duration(i) * 100 * time.Millisecond), Kind: event.KindRequest, Direction: event.ClientToServer,
			Server: "fs", Method: methods[i/2%len(methods)], RPCID: strconv.Itoa(i / 2), Size: 300, Tokens: 75,
			Risk:    &event.Risk{Score: i % 100, Level: event.LevelLow, Reasons: []string{"reads a file"}},
			Payload: []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(i/2) + `,"params":{"name":"read_file","arguments":{"path":"/home/user/project/src/main.go"}},"result":{"content":[{"type":"text","text":"package main\n\nfunc main() {}\n"}]}}`)}
		if e.Method == "tools/call" {
			e.Tool = []string{"read_file", "write_file", "search"}[i%3]
		}
		if i%2 == 1 {
			l := float64(i%97) + 0.5
			e.Kind, e.Direction, e.LatencyMS = event.KindResponse, event.ServerToClient, &l
		}
		events[i] = e
	}
	return events
}

// BenchmarkBatchDeltas times the rollup deltas of a batch of 500 events,
// the CLI's batch, as Ingest computes them.
func BenchmarkBatchDeltas(b *testing.B) {
	events := benchBatch(b)
	cols, err := newBatchColumns(events)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		newBatchDeltas(cols, events)
	}
}
