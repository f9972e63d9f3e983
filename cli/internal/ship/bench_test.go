package ship

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// discardSender takes every batch and answers that all of it was new.
type discardSender struct{ bytes int }

func (d *discardSender) IngestEncoded(_ context.Context, gz []byte) (backend.IngestResult, error) {
	d.bytes += len(gz)
	return backend.IngestResult{}, nil
}

// BenchmarkShipBatch is the monitor's shipping work for one batch of the
// monitor benchmark's traffic (256 B tools/call requests and their 256 B
// results, analysed as the monitor records them): claim from the local
// store, prepare for the wire (redacted), encode, gzip. The claim is
// released, not acked, so every iteration ships the same batch.
func BenchmarkShipBatch(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	sid := uuid.Must(uuid.NewV7()).String()
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.RecordSession(ctx, event.Session{ID: sid, StartedAt: time.Now(), Command: []string{"echoserver", "256"}}); err != nil {
		b.Fatal(err)
	}
	const n = config.DefaultBatchSize
	evs := make([]event.Event, 0, n)
	ts := time.Now().Add(-time.Minute)
	for i := range n / 2 {
		pad := strings.Repeat("x", 160)
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}`, i, pad)
		res := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"%s"}],"isError":false}}`, i, pad)
		lat, isErr := 0.12, false
		risk := &event.Risk{Score: 0, Level: event.LevelLow}
		evs = append(evs,
			event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sid, Seq: int64(2*i + 1), TS: ts, Direction: event.ClientToServer,
				Kind: event.KindRequest, Server: "bench-echo", RPCID: fmt.Sprint(i), Method: "tools/call", Tool: "echo",
				Size: int64(len(req)), Risk: risk, CostUSD: 0.00025, Payload: []byte(req)},
			event.Event{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sid, Seq: int64(2*i + 2), TS: ts, Direction: event.ServerToClient,
				Kind: event.KindResponse, Server: "bench-echo", RPCID: fmt.Sprint(i), Method: "tools/call", Tool: "echo",
				LatencyMS: &lat, IsError: &isErr, Size: int64(len(res)), Risk: risk, CostUSD: 0.00025, Payload: []byte(res)})
	}
	if err := w.Record(ctx, evs); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	snd := &discardSender{}
	s := New(FromStore(st), snd, Options{})
	b.ReportAllocs()
	for b.Loop() {
		c, err := s.spool.Claim(ctx, n, BackgroundMaxBytes)
		if err != nil || c == nil {
			b.Fatalf("claim: %v, %v", c, err)
		}
		if len(c.Events()) != n {
			b.Fatalf("claimed %d events, want %d", len(c.Events()), n)
		}
		if _, _, err := s.deliver(ctx, part{sessions: c.Sessions(), events: c.Events()}); err != nil {
			b.Fatal(err)
		}
		if err := c.Release(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/event")
}
