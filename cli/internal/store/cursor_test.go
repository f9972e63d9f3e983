package store

import (
	"context"
	"testing"
)

// Each cursor gets every event once, whatever the others did: acking,
// holding a claim, or never claiming at all.
func TestCursorsAreIndependent(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), Options{})
	sid := testID("cur")
	writeSegment(t, s, sid, eventsAt(sid, "c", 10, baseTime))

	api, err := s.Claim(ctx, 100, 0)
	if err != nil || api == nil || len(api.Events()) != 10 {
		t.Fatalf("API claim = %v, %v", api, err)
	}
	// The API's claim is held: another cursor still claims the same events.
	otlp, err := s.ClaimFor(ctx, "otlp-traces", 4, 0)
	if err != nil || otlp == nil || len(otlp.Events()) != 4 {
		t.Fatalf("otlp claim while the API holds its own = %v, %v", otlp, err)
	}
	if err := api.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := otlp.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Claim(ctx, 100, 0); err != nil || c != nil {
		t.Fatalf("API claim after its ack = %v, %v; want nothing", c, err)
	}
	rest, err := s.ClaimFor(ctx, "otlp-traces", 100, 0)
	if err != nil || rest == nil || len(rest.Events()) != 6 || rest.Events()[0].ID != testID("c4") {
		t.Fatalf("otlp claim after acking 4 = %v, %v; want the other 6", rest, err)
	}
	rest.Release()
	// A cursor that never claimed sees everything.
	other, err := s.ClaimFor(ctx, "otlp-metrics", 100, 0)
	if err != nil || other == nil || len(other.Events()) != 10 {
		t.Fatalf("fresh cursor claim = %v, %v; want all 10", other, err)
	}
	other.Release()
}

func TestCursorNames(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	for _, bad := range []Cursor{"../x", "A", "acked", "claim", "a.b", "this-name-is-far-too-long-for-a-cursor"} {
		if _, err := s.ClaimFor(context.Background(), bad, 1, 0); err == nil {
			t.Errorf("ClaimFor(%q) accepted", bad)
		}
	}
}

func TestCursorState(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	if b, err := s.ReadCursorState("otlp-traces"); err != nil || b != nil {
		t.Fatalf("state before any = %q, %v", b, err)
	}
	if err := s.WriteCursorState("otlp-traces", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadCursorState("otlp-traces"); err != nil || string(b) != `{"a":1}` {
		t.Fatalf("state = %q, %v", b, err)
	}
	if err := s.WriteCursorState(APICursor, nil); err == nil {
		t.Error("the API cursor got a state")
	}
	if _, err := s.ReadCursorState("../x"); err == nil {
		t.Error("a bad cursor name was read")
	}
}
