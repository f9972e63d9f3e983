package postgres_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// genSessionRecords makes n records of one session as shipping may
// deliver them: out of order, some fields missing, ends and counts that go
// back and forth, equal ends with other exit codes.
func genSessionRecords(r *rand.Rand, id string, n int) []event.Session {
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	recs := make([]event.Session, n)
	for i := range recs {
		s := event.Session{ID: id, Server: pick("", "fs", "git"), ServerName: pick("", "files"),
			ServerVersion: pick("", "1.0", "1.1"), ClientName: pick("", "claude"), ClientVersion: pick("", "2"),
			ProtocolVersion: pick("", "2025-06-18"), Host: pick("", "h1", "h2"),
			StartedAt: base.Add(time.Duration(r.IntN(3)) * time.Second), DroppedEvents: int64(r.IntN(4))}
		if r.IntN(2) == 0 {
			s.Command = []string{"npx", pick("a", "b")}
		}
		if r.IntN(3) == 0 {
			s.Warnings = []string{pick("w1", "w2")}
		}
		if r.IntN(2) == 0 {
			end := base.Add(time.Duration(1+r.IntN(3)) * time.Minute)
			s.EndedAt = &end
			if r.IntN(3) > 0 {
				c := r.IntN(3)
				s.ExitCode = &c
			}
		}
		recs[i] = s
	}
	return recs
}

// TestSessionUpsertIsMergeSession holds the backend's session upsert to
// event.MergeSession, the rule the local store folds records by: each
// record of a sequence goes in its own batch, and the stored session is
// the fold of the sequence.
func TestSessionUpsertIsMergeSession(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	tenant := mustTenant(t, db, "acme")
	r := rand.New(rand.NewPCG(5, 6))
	want := map[string]event.Session{}
	for range 12 {
		id := newID(t)
		fold := event.SessionFold{}
		for _, rec := range genSessionRecords(r, id, 2+r.IntN(5)) {
			ingest(t, db, tenant, event.Batch{Sessions: []event.Session{rec}})
			fold.Add(rec)
		}
		want[id] = fold[id]
	}
	got := allSessions(t, db, tenant, activity.SessionQuery{})
	if len(got) != len(want) {
		t.Fatalf("%d sessions stored, want %d", len(got), len(want))
	}
	for _, row := range got {
		if w := want[row.Session.ID]; !reflect.DeepEqual(row.Session, w) {
			g, _ := json.Marshal(row.Session)
			wj, _ := json.Marshal(w)
			t.Errorf("session %s:\n got %s\nwant %s", row.Session.ID, g, wj)
		}
	}
}
