package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of migratedTo
	"github.com/pressly/goose/v3"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// base is the instant the generated events gather around, mid-hour so
// windows have partial hours at both edges, and three days back: within
// every retention and the partitions the database keeps (events older than
// the retention are hidden, and past every partition refused).
var base = time.Now().UTC().Truncate(time.Hour).Add(-72*time.Hour + 37*time.Minute)

func mustTenant(t *testing.T, db *postgres.DB, name string) string {
	t.Helper()
	tenant, _, err := db.CreateTenant(context.Background(), name)
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return tenant.ID
}

func newID(t testing.TB) string {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// genEvents makes n varied events between from and from+span: several
// servers, methods and tools, replies with latencies, failures, risk and
// cost, and timestamps that repeat so (ts, id) ordering is exercised.
func genEvents(tb testing.TB, r *rand.Rand, n int, from time.Time, span time.Duration, sessions []string, servers []string) []event.Event {
	methods := []string{"tools/call", "tools/call", "tools/call", "resources/read", "tools/list", "initialize", "notifications/initialized", "",
		"server/discover"}
	tools := []string{"read_file", "write_file", "run_shell", "search"}
	kinds := []event.Kind{event.KindRequest, event.KindResponse, event.KindError, event.KindNotification, event.KindInvalid}
	out := make([]event.Event, n)
	var last time.Time
	for i := range out {
		ts := from.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Microsecond)
		if i > 0 && r.IntN(10) == 0 {
			ts = last // same instant as the previous event
		}
		last = ts
		si := r.IntN(len(sessions))
		e := event.Event{
			ID: newID(tb), SessionID: sessions[si], Seq: int64(i), TS: ts,
			Direction: event.ClientToServer,
			Kind:      kinds[r.IntN(len(kinds))],
			Server:    servers[si%len(servers)],
			Method:    methods[r.IntN(len(methods))],
			Size:      r.Int64N(5000),
			RPCID:     fmt.Sprint(r.IntN(100)),
		}
		if e.Kind != event.KindRequest && e.Kind != event.KindNotification {
			e.Direction = event.ServerToClient
		}
		if e.Method == "tools/call" || r.IntN(8) == 0 {
			e.Tool = tools[r.IntN(len(tools))]
		}
		if e.Kind == event.KindResponse || e.Kind == event.KindError || r.IntN(20) == 0 {
			ms := r.ExpFloat64() * 80
			if r.IntN(30) == 0 {
				ms = 0
			}
			e.LatencyMS = &ms
		}
		if e.Kind == event.KindResponse && r.IntN(4) == 0 {
			b := r.IntN(2) == 0
			e.IsError = &b
		}
		if e.Kind == event.KindError {
			// A discover probe answered "method not found" is negotiation,
			// not failure: some are, some are not.
			c := []int{-32602, -32601}[r.IntN(2)]
			e.ErrorCode = &c
			e.ErrorMessage = fmt.Sprintf("error %d", i)
		}
		if e.Kind == event.KindRequest && r.IntN(5) == 0 {
			e.Retry = true // repeats a request answered input_required
		}
		if r.IntN(3) > 0 {
			score := r.IntN(101)
			lvl := event.LevelLow
			switch {
			case score >= 70:
				lvl = event.LevelHigh
			case score >= 40:
				lvl = event.LevelMedium
			}
			e.Risk = &event.Risk{Score: score, Level: lvl}
			if r.IntN(2) == 0 {
				e.Risk.Reasons = []string{"sensitive_path", "shell"}[:1+r.IntN(2)]
			}
			// Some name tools for riskiest_tools (an event without a
			// tool names none: "tool_poisoning:" alone is no alert).
			if i%7 == 0 {
				e.Risk.Reasons = append(e.Risk.Reasons, analysis.ReasonToolPoisoning+e.Tool)
			}
			if i%11 == 0 {
				e.Risk.Reasons = append(e.Risk.Reasons, analysis.ReasonDefinitionChanged+"echo", analysis.ReasonToolPoisoning+"echo")
			}
		}
		e.CostUSD = float64(r.IntN(1000)) * 1e-6
		e.Tokens = r.Int64N(300)
		if r.IntN(2) == 0 {
			e.Payload = json.RawMessage(fmt.Sprintf(`{"id":%d,"jsonrpc":"2.0"}`, i))
		}
		out[i] = e
	}
	return out
}

func newSessions(t testing.TB, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = newID(t)
	}
	return s
}

func ingest(t *testing.T, db *postgres.DB, tenant string, b event.Batch) backend.IngestResult {
	t.Helper()
	res, err := db.Ingest(context.Background(), tenant, b)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

// aggregate is the reference answer: stats.Aggregator over the events.
func aggregate(events []event.Event, q stats.Query) stats.Stats {
	a := stats.NewAggregator(q.Since, q.Until, q.Server)
	for i := range events {
		a.Add(&events[i])
	}
	return a.Result()
}

func allActivity(t *testing.T, db *postgres.DB, tenant string, q activity.Query) []event.Event {
	t.Helper()
	var out []event.Event
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
		p, err := db.Activity(context.Background(), tenant, q)
		if err != nil {
			t.Fatalf("Activity: %v", err)
		}
		out = append(out, p.Events...)
		if p.NextCursor == "" {
			return out
		}
		if q.Cursor, err = activity.DecodeCursor(p.NextCursor); err != nil {
			t.Fatalf("cursor: %v", err)
		}
	}
}

func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.MustCreateDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Errorf("Migrate on a migrated database: %v", err)
	}
	if _, _, err := db.CreateTenant(ctx, "after-migrate"); err != nil {
		t.Errorf("store unusable after concurrent migrations: %v", err)
	}
}

func TestTenantsAndKeys(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()

	if _, _, err := db.CreateTenant(ctx, "  "); backend.ErrorCode(err) != backend.EINVALID {
		t.Errorf("empty name: got %v, want EINVALID", err)
	}
	tenant, key, err := db.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if tenant.Name != "acme" || tenant.CreatedAt.IsZero() {
		t.Errorf("tenant = %+v", tenant)
	}
	got, err := db.Authenticate(ctx, key)
	if err != nil || got.TenantID != tenant.ID || !got.Allows(backend.ScopeIngest) || !got.Allows(backend.ScopeRead) || got.ReadLimit != 600 {
		t.Fatalf("Authenticate(first key) = %+v, %v; want tenant %q with both scopes and the default read limit", got, err, tenant.ID)
	}

	admin := backend.Actor{Admin: "test"}
	k2, key2, err := db.CreateKey(ctx, admin, tenant.ID, []backend.Scope{backend.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if k2.TenantID != tenant.ID || key2[:len(k2.Prefix)] != k2.Prefix || key2 == key || !slices.Equal(k2.Scopes, []backend.Scope{backend.ScopeRead}) {
		t.Errorf("CreateKey = %+v, %q", k2, key2)
	}
	if got, err := db.Authenticate(ctx, key2); err != nil || got.TenantID != tenant.ID || got.ID != k2.ID || got.Allows(backend.ScopeIngest) || !got.Allows(backend.ScopeRead) {
		t.Errorf("Authenticate(read-only key) = %+v, %v", got, err)
	}
	if _, err := db.RevokeKey(ctx, admin, k2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, key2); backend.ErrorCode(err) != backend.EUNAUTHORIZED {
		t.Errorf("revoked key: got %v, want EUNAUTHORIZED", err)
	}
	if got, err := db.Authenticate(ctx, key); err != nil || got.TenantID != tenant.ID {
		t.Errorf("first key after revoking the second = %+v, %v", got, err)
	}

	for _, bad := range []string{"", "km_live_", key[:len(key)-1] + "!", "Bearer " + key, key + "x"} {
		if _, err := db.Authenticate(ctx, bad); backend.ErrorCode(err) != backend.EUNAUTHORIZED {
			t.Errorf("Authenticate(%q): got %v, want EUNAUTHORIZED", bad, err)
		}
	}
	if _, _, err := db.CreateKey(ctx, admin, newID(t), nil); backend.ErrorCode(err) != backend.ENOTFOUND {
		t.Errorf("CreateKey(unknown): got %v, want ENOTFOUND", err)
	}
	if _, _, err := db.CreateKey(ctx, admin, "nope", nil); backend.ErrorCode(err) != backend.ENOTFOUND {
		t.Errorf("CreateKey(malformed): got %v, want ENOTFOUND", err)
	}
	if _, err := db.RevokeKey(ctx, admin, newID(t)); backend.ErrorCode(err) != backend.ENOTFOUND {
		t.Errorf("RevokeKey(unknown): got %v, want ENOTFOUND", err)
	}
}

func TestIngestIsIdempotent(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	r := rand.New(rand.NewPCG(1, 2))
	events := genEvents(t, r, 300, base, 3*time.Hour, newSessions(t, 4), []string{"fs", "git"})
	b := event.Batch{Events: events}

	if res := ingest(t, db, tenant, b); res != (backend.IngestResult{Accepted: 300}) {
		t.Fatalf("first ingest = %+v", res)
	}
	q := stats.Query{Since: base.Add(-time.Hour), Until: base.Add(4 * time.Hour)}
	before, err := db.Stats(ctx, tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	if res := ingest(t, db, tenant, b); res != (backend.IngestResult{Duplicates: 300}) {
		t.Fatalf("re-ingest = %+v, want all duplicates", res)
	}
	// A batch mixing old and new events stores only the new ones.
	extra := genEvents(t, r, 10, base, time.Hour, newSessions(t, 1), []string{"fs"})
	mixed := event.Batch{Events: append(append([]event.Event{}, events[:50]...), extra...)}
	if res := ingest(t, db, tenant, mixed); res != (backend.IngestResult{Accepted: 10, Duplicates: 50}) {
		t.Fatalf("mixed ingest = %+v", res)
	}
	all := append(append([]event.Event{}, events...), extra...)
	after, err := db.Stats(ctx, tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := aggregate(all, q); !reflect.DeepEqual(after, want) {
		t.Errorf("stats after duplicates differ from the reference:\n got %+v\nwant %+v", after, want)
	}
	if before.Totals.Events != 300 || after.Totals.Events != 310 {
		t.Errorf("events before/after = %d/%d, want 300/310", before.Totals.Events, after.Totals.Events)
	}
	if got := allActivity(t, db, tenant, activity.Query{Limit: 1000}); len(got) != 310 {
		t.Errorf("activity holds %d events, want 310", len(got))
	}
}

func TestIngestAllOrNothing(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	r := rand.New(rand.NewPCG(3, 4))
	sessions := newSessions(t, 2)
	events := genEvents(t, r, 100, base, time.Hour, sessions, []string{"fs"})
	// The last event carries a payload the database refuses, after the
	// sessions and 99 good events were sent.
	events[99].Payload = json.RawMessage(`{"broken":`)
	b := event.Batch{
		Sessions: []event.Session{{ID: sessions[0], Server: "fs", StartedAt: base}},
		Events:   events,
	}
	if _, err := db.Ingest(ctx, tenant, b); err == nil {
		t.Fatal("Ingest of a bad batch succeeded")
	}
	if got := allActivity(t, db, tenant, activity.Query{}); len(got) != 0 {
		t.Errorf("a failed batch left %d events", len(got))
	}
	q := stats.Query{Since: base.Add(-time.Hour), Until: base.Add(2 * time.Hour)}
	s, err := db.Stats(ctx, tenant, q)
	if err != nil {
		t.Fatal(err)
	}
	if want := aggregate(nil, q); !reflect.DeepEqual(s, want) {
		t.Errorf("a failed batch left rollups: %+v", s.Totals)
	}
	var sessionsLeft int
	if err := db.Pool().QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&sessionsLeft); err != nil {
		t.Fatal(err)
	}
	if sessionsLeft != 0 {
		t.Errorf("a failed batch left %d sessions", sessionsLeft)
	}
	// The same batch, fixed, goes in whole.
	events[99].Payload = json.RawMessage(`{"fixed":true}`)
	if res := ingest(t, db, tenant, b); res.Accepted != 100 {
		t.Errorf("fixed batch = %+v", res)
	}
}

func TestEventRoundTrip(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	tenant := mustTenant(t, db, "acme")
	lat, code, isErr := 12.481, -32602, false
	e := event.Event{
		ID: newID(t), SessionID: newID(t), Seq: 42, TS: base.Add(123456 * time.Microsecond),
		Direction: event.ServerToClient, Kind: event.KindError, Server: "fs", RPCID: "17",
		Method: "tools/call", Tool: "read_file", Prompt: "greet", ResourceURI: "file:///a%20b", LatencyMS: &lat, ErrorCode: &code,
		IsError: &isErr, ErrorMessage: "no such file: a\x00b", Retry: true, Size: 312, Risk: &event.Risk{Score: 75, Level: event.LevelHigh, Reasons: []string{"sensitive_path"}},
		CostUSD: 0.000305, Tokens: 77, Payload: json.RawMessage(`{"id": 17, "jsonrpc": "2.0", "nul": "a\u0000b"}`),
		PayloadTruncated: true,
	}
	plain := event.Event{ID: newID(t), SessionID: e.SessionID, TS: base, Direction: event.ClientToServer, Kind: event.KindInvalid, Payload: json.RawMessage(`"not json-rpc"`)}
	// Ingest takes cleaned batches, as the API decodes them.
	b := event.Batch{Events: []event.Event{e, plain}}
	b.Clean()
	ingest(t, db, tenant, b)
	got := allActivity(t, db, tenant, activity.Query{})
	if len(got) != 2 {
		t.Fatalf("got %d events", len(got))
	}
	// jsonb normalises spacing, and \u0000 (which jsonb cannot hold) was
	// cleaned to U+FFFD.
	want := e
	want.Payload = json.RawMessage(`{"id": 17, "nul": "a\ufffdb", "jsonrpc": "2.0"}`)
	// Text columns cannot hold NUL either.
	want.ErrorMessage = "no such file: a\uFFFDb"
	if !jsonEqual(t, got[0].Payload, want.Payload) {
		t.Errorf("payload = %s, want %s", got[0].Payload, want.Payload)
	}
	got[0].Payload, want.Payload = nil, nil
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got[0], want)
	}
	if !jsonEqual(t, got[1].Payload, plain.Payload) || got[1].Risk != nil || got[1].LatencyMS != nil || got[1].IsError != nil {
		t.Errorf("plain event came back as %+v", got[1])
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestSessionsUpsert(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	id := newID(t)
	end1, end2 := base.Add(time.Minute), base.Add(2*time.Minute)
	one, two := 1, 2
	warn := []string{"capture_mode: invalid value \"fulll\"; recorded with the default"}
	ingest(t, db, tenant, event.Batch{Sessions: []event.Session{{ID: id, Server: "fs", StartedAt: base, EndedAt: &end2, ExitCode: &two, DroppedEvents: 5, Warnings: warn}}})
	// An older, stale report changes nothing it knows less about.
	ingest(t, db, tenant, event.Batch{Sessions: []event.Session{{ID: id, StartedAt: base, EndedAt: &end1, ExitCode: &one, DroppedEvents: 3}}})
	var (
		server   string
		ended    time.Time
		code     int
		dropped  int64
		warnings []string
	)
	err := db.Pool().QueryRow(ctx, "SELECT server, ended_at, exit_code, dropped_events, warnings FROM sessions WHERE id = $1", id).Scan(&server, &ended, &code, &dropped, &warnings)
	if err != nil {
		t.Fatal(err)
	}
	if server != "fs" || !ended.Equal(end2) || code != 2 || dropped != 5 || !slices.Equal(warnings, warn) {
		t.Errorf("session = %q %v %d %d %q", server, ended, code, dropped, warnings)
	}
}

func TestActivityPaginationAndFilters(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	tenant := mustTenant(t, db, "acme")
	r := rand.New(rand.NewPCG(5, 6))
	sessions := newSessions(t, 3)
	events := genEvents(t, r, 257, base, 2*time.Hour, sessions, []string{"fs", "git", "web"})
	ingest(t, db, tenant, event.Batch{Events: events[:100]})
	ingest(t, db, tenant, event.Batch{Events: events[100:]})

	queries := []activity.Query{
		{Limit: 7},
		{Limit: 1},
		{Limit: 1000},
		{Limit: 10, Server: "git"},
		{Limit: 10, SessionID: sessions[1]},
		{Limit: 10, Method: "tools/call", Tool: "read_file"},
		{Limit: 10, Kind: event.KindError},
		{Limit: 10, Failed: true},
		{Limit: 3, Failed: true, Server: "web"},
		{Limit: 10, MinRisk: event.LevelMedium},
		{Limit: 10, MinRisk: event.LevelHigh, Server: "fs"},
		{Limit: 10, Since: base.Add(30 * time.Minute), Until: base.Add(80 * time.Minute)},
	}
	for _, q := range queries {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			var want []event.Event
			for i := range events {
				if q.Match(&events[i]) {
					want = append(want, events[i])
				}
			}
			sort.Slice(want, func(i, j int) bool { return activity.Less(&want[i], &want[j]) })
			got := allActivity(t, db, tenant, q)
			if len(got) != len(want) {
				t.Fatalf("got %d events, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].ID != want[i].ID {
					t.Fatalf("event %d: got %s (%v), want %s (%v)", i, got[i].ID, got[i].TS, want[i].ID, want[i].TS)
				}
			}
		})
	}
}

// TestStatsMatchesAggregator is the local == remote guarantee: random events
// ingested in several batches give, for every window and server filter,
// exactly the answer stats.Aggregator gives over the same events.
func TestStatsMatchesAggregator(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	other := mustTenant(t, db, "other")
	r := rand.New(rand.NewPCG(7, 8))
	servers := []string{"fs", "git", "web"}
	events := genEvents(t, r, 2000, base.Add(-26*time.Hour), 30*time.Hour, newSessions(t, 9), servers)
	for start := 0; start < len(events); {
		n := min(1+r.IntN(400), len(events)-start)
		ingest(t, db, tenant, event.Batch{Events: events[start : start+n]})
		start += n
	}
	// Another tenant's events in the same windows must not count.
	ingest(t, db, other, event.Batch{Events: genEvents(t, r, 300, base.Add(-26*time.Hour), 30*time.Hour, newSessions(t, 2), servers)})

	windows := []stats.Query{
		{Since: base.Add(-26 * time.Hour), Until: base.Add(4 * time.Hour)},                    // everything
		{Until: base.Add(time.Hour)},                                                          // default 24h
		{Since: base.Add(-90 * time.Minute), Until: base.Add(-13 * time.Minute)},              // partial hours
		{Since: base.Add(-3 * time.Minute), Until: base.Add(17 * time.Minute)},                // minutes only
		{Since: base.Add(-23 * time.Minute), Until: base.Add(2 * time.Hour)},                  // crosses hours
		{Since: base.Add(-50 * time.Hour), Until: base.Add(30 * time.Hour)},                   // hour-sized steps
		{Since: base.Truncate(time.Hour), Until: base.Truncate(time.Hour).Add(3 * time.Hour)}, // whole hours
		{Since: base.Add(-30 * 24 * time.Hour), Until: base.Add(10 * 24 * time.Hour)},         // 6h steps
	}
	for _, w := range windows {
		for _, server := range []string{"", "git", "nope"} {
			q := w
			q.Server = server
			q = q.Align(base.Add(7*time.Minute + 13*time.Second))
			t.Run(fmt.Sprintf("%s..%s/%s", q.Since.Format("02T15:04"), q.Until.Format("02T15:04"), server), func(t *testing.T) {
				got, err := db.Stats(ctx, tenant, q)
				if err != nil {
					t.Fatal(err)
				}
				want := aggregate(events, q)
				if !reflect.DeepEqual(got, want) {
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(want)
					t.Errorf("stats differ from the Aggregator:\n got %s\nwant %s", g, w)
				}
				if server == "" && q.Since.Equal(windows[0].Since) && got.Totals.Events != int64(len(events)) {
					t.Errorf("window covering everything counted %d of %d events", got.Totals.Events, len(events))
				}
			})
		}
	}
}

func TestTenantIsolation(t *testing.T) {
	db, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	a, b := mustTenant(t, db, "a"), mustTenant(t, db, "b")
	r := rand.New(rand.NewPCG(9, 10))
	sa, sb := newSessions(t, 2), newSessions(t, 2)
	ea := genEvents(t, r, 50, base, time.Hour, sa, []string{"fs"})
	eb := genEvents(t, r, 60, base, time.Hour, sb, []string{"secret-server"})
	ingest(t, db, a, event.Batch{Events: ea, Sessions: []event.Session{{ID: sa[0], StartedAt: base, DroppedEvents: 1}}})
	ingest(t, db, b, event.Batch{Events: eb, Sessions: []event.Session{{ID: sb[0], StartedAt: base, DroppedEvents: 1000}}})
	// The same event ids under another tenant are that tenant's own.
	if res := ingest(t, db, b, event.Batch{Events: ea[:5]}); res.Accepted != 5 {
		t.Errorf("tenant b re-using tenant a's ids: %+v, want 5 accepted", res)
	}

	// Crafted filters: b's session, b's server, a cursor from b's page.
	for _, q := range []activity.Query{{SessionID: sb[0]}, {Server: "secret-server"}} {
		if got := allActivity(t, db, a, q); len(got) != 0 {
			t.Errorf("tenant a sees %d of b's events through %+v", len(got), q)
		}
	}
	pb, err := db.Activity(ctx, b, activity.Query{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := activity.DecodeCursor(pb.NextCursor)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range allActivity(t, db, a, activity.Query{Cursor: cur}) {
		if e.Server != "fs" {
			t.Fatalf("tenant a got event %s of server %q through b's cursor", e.ID, e.Server)
		}
	}
	q := stats.Query{Since: base.Add(-time.Hour), Until: base.Add(2 * time.Hour), Server: "secret-server"}
	s, err := db.Stats(ctx, a, q)
	if err != nil {
		t.Fatal(err)
	}
	if s.Totals.Events != 0 || s.Totals.Sessions != 0 {
		t.Errorf("tenant a's stats for b's server: %+v", s.Totals)
	}
	q.Server = ""
	if s, err = db.Stats(ctx, a, q); err != nil {
		t.Fatal(err)
	}
	if want := aggregate(ea, q); s.Totals.Events != want.Totals.Events || s.Totals.DroppedEvents != 1 {
		t.Errorf("tenant a's totals = %+v, want %d events and 1 dropped", s.Totals, want.Totals.Events)
	}

	// The database itself refuses, whatever SQL the application runs: as
	// the application role with tenant a set, b's rows do not exist and
	// cannot be written.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	asTenant := func(tenant string, f func(tx pgx.Tx)) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE kilometers_app"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant_id', $1, true)", tenant); err != nil {
			t.Fatal(err)
		}
		f(tx)
	}
	count := func(tx pgx.Tx, sql string, args ...any) int {
		var n int
		if err := tx.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	asTenant(a, func(tx pgx.Tx) {
		// tenants is not readable by the app role at all (TestLeastPrivilege).
		for table, want := range map[string]int{"events": 50, "sessions": 1, "rollup_minute": -1, "session_hour": -1} {
			if n := count(tx, "SELECT count(*) FROM "+table+" WHERE tenant_id = $1", b); n != 0 {
				t.Errorf("%s: tenant a reads %d rows of tenant b", table, n)
			}
			if n := count(tx, "SELECT count(*) FROM "+table); want >= 0 && n != want {
				t.Errorf("%s: tenant a reads %d rows, want %d", table, n, want)
			}
		}
	})
	asTenant(a, func(tx pgx.Tx) {
		_, err := tx.Exec(ctx, "INSERT INTO sessions (tenant_id, id, started_at) VALUES ($1, $2, now())", b, newID(t))
		if err == nil {
			t.Error("tenant a wrote a row of tenant b")
		}
	})
	asTenant("", func(tx pgx.Tx) {
		if n := count(tx, "SELECT count(*) FROM events"); n != 0 {
			t.Errorf("no tenant set: reads %d events", n)
		}
	})
	asTenant(a, func(tx pgx.Tx) {
		if _, err := tx.Exec(ctx, "SELECT count(*) FROM api_keys"); err == nil {
			t.Error("the application role reads api_keys")
		}
	})
	// The application cannot switch the policies off for itself.
	asTenant(a, func(tx pgx.Tx) {
		if _, err := tx.Exec(ctx, "SET LOCAL row_security = off"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT count(*) FROM events"); err == nil {
			t.Error("the application role read events with row_security off")
		}
	})

	// The checks above pass only because of the policies: the same crafted
	// query without row-level security (as the owner, a superuser here)
	// does see tenant b's rows.
	var leaked int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM events WHERE tenant_id = $1", b).Scan(&leaked); err != nil || leaked == 0 {
		t.Fatalf("control: the owner sees %d of b's events (%v); the isolation checks prove nothing", leaked, err)
	}
	// And the policies bind the roles the store works as: enabled and
	// forced on every tenant table (partitions are reached only through
	// their parents, which TestLeastPrivilege checks, and km_partitioning
	// holds no tenant data and no role's grant), neither role owns a table, is a
	// superuser or bypasses row-level security.
	rows, err := conn.Query(ctx, `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner),
			EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
		FROM pg_class c
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND c.relname NOT IN ('goose_db_version', 'km_partitioning')`)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for rows.Next() {
		var name, owner string
		var enabled, forced, policy bool
		if err := rows.Scan(&name, &enabled, &forced, &owner, &policy); err != nil {
			t.Fatal(err)
		}
		tables[name] = true
		if !enabled || !forced || !policy {
			t.Errorf("table %s: row security enabled=%v forced=%v has policy=%v", name, enabled, forced, policy)
		}
		if owner == "kilometers_app" || owner == "kilometers_admin" {
			t.Errorf("table %s is owned by %s, which row-level security does not bind", name, owner)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tenants", "api_keys", "sessions", "events", "rollup_minute", "rollup_hour", "series_minute", "session_minute", "session_hour"} {
		if !tables[name] {
			t.Errorf("table %s not found", name)
		}
	}
	for _, role := range []string{"kilometers_app", "kilometers_admin"} {
		var super, bypass bool
		if err := conn.QueryRow(ctx, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", role).Scan(&super, &bypass); err != nil {
			t.Fatalf("role %s: %v", role, err)
		}
		if super || bypass {
			t.Errorf("role %s: superuser=%v bypassrls=%v", role, super, bypass)
		}
	}
}

// TestPingAndRecovery terminates every server process of a warm pool, as
// a database restart does, and checks that the next calls of each kind
// succeed on fresh connections without the store being reopened.
func TestPingAndRecovery(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant, key, err := db.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// Open every connection the pool may hold, so that any the store picks
	// next is one that was killed.
	var held []*pgxpool.Conn
	for range db.Pool().Config().MaxConns {
		c, err := db.Pool().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		c.Release()
	}
	admin, err := pgx.Connect(ctx, testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var name string
	if err := db.Pool().QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	var killed []int32
	// The pids are chosen first and terminated in the select list, so
	// nothing outside this test's database can be hit whatever order the
	// planner evaluates conditions in.
	if err := admin.QueryRow(ctx, `
		WITH mine AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid())
		SELECT coalesce(array_agg(pid) FILTER (WHERE ok), '{}')
		FROM (SELECT pid, pg_terminate_backend(pid) AS ok FROM mine) AS t`, name).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if len(killed) < len(held) {
		t.Fatalf("terminated %d backends of %s, want at least %d", len(killed), name, len(held))
	}

	events := genEvents(t, rand.New(rand.NewPCG(1, 1)), 10, base, time.Hour, newSessions(t, 1), []string{"fs"})
	if got, err := db.Authenticate(ctx, key); err != nil || got.TenantID != tenant.ID {
		t.Errorf("Authenticate after the backends were terminated: %+v, %v", got, err)
	}
	if res, err := db.Ingest(ctx, tenant.ID, event.Batch{Events: events}); err != nil || res.Accepted != len(events) {
		t.Errorf("Ingest after the backends were terminated: %+v, %v", res, err)
	}
	if _, err := db.Activity(ctx, tenant.ID, activity.Query{}); err != nil {
		t.Errorf("Activity after the backends were terminated: %v", err)
	}
	if _, err := db.Stats(ctx, tenant.ID, stats.Query{Since: base.Add(-time.Hour), Until: base.Add(time.Hour)}); err != nil {
		t.Errorf("Stats after the backends were terminated: %v", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping after the backends were terminated: %v", err)
	}
	// The pool now works on new server processes only.
	for range len(held) {
		var pid int32
		if err := db.Pool().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatalf("a pooled connection is still broken: %v", err)
		}
		if slices.Contains(killed, pid) {
			t.Errorf("backend %d was terminated but still serves the pool", pid)
		}
	}

	down, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatalf("Open must not need the database up: %v", err)
	}
	defer down.Close()
	if err := down.Ping(ctx); backend.ErrorCode(err) != backend.EUNAVAILABLE {
		t.Errorf("Ping of a database that is down: got %v, want EUNAVAILABLE", err)
	}
	if _, err := down.Authenticate(ctx, "km_live_"+fmt.Sprintf("%043d", 0)); backend.ErrorCode(err) != backend.EUNAVAILABLE {
		t.Errorf("Authenticate with the database down: got %v, want EUNAVAILABLE", err)
	}
}

// TestHistogramCompaction covers rollup rows whose packed histogram takes
// both paths of ingest: small batches append to hist_tail, and a batch that
// would make the tail longer than 256 entries merges it into hist. The
// answer must not change.
func TestHistogramCompaction(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	sid := newID(t)
	var all []event.Event
	for b, n := range []int{700, 40, 40, 40, 40, 40, 700, 40} {
		events := make([]event.Event, n)
		for i := range events {
			// Spread over hundreds of buckets, so every batch adds new
			// entries to the same minute and hour rows.
			ms := 1 + float64((i*7+b*3)%900)
			events[i] = event.Event{
				ID: newID(t), SessionID: sid, Seq: int64(b*1000 + i), TS: base.Add(time.Duration(i) * time.Millisecond),
				Direction: event.ServerToClient, Kind: event.KindResponse, Server: "fs",
				Method: "tools/call", Tool: "read_file", LatencyMS: &ms, Size: 10,
			}
		}
		ingest(t, db, tenant, event.Batch{Events: events})
		all = append(all, events...)
	}
	for _, table := range []string{"rollup_minute", "rollup_hour"} {
		rows, err := db.Pool().Query(ctx, `SELECT hist, hist_tail FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		var longestTail int
		var merged bool
		var hist, tail []byte
		_, err = pgx.ForEachRow(rows, []any{&hist, &tail}, func() error {
			entries, err := postgres.UnpackInt8(nil, hist)
			if err != nil {
				return err
			}
			tailEntries, err := postgres.UnpackInt8(nil, tail)
			if err != nil {
				return err
			}
			longestTail = max(longestTail, len(tailEntries))
			merged = merged || len(entries) > 0
			// A merged hist lists each bucket once, in order.
			for i := 1; i < len(entries); i++ {
				if entries[i]>>40 <= entries[i-1]>>40 {
					t.Errorf("%s: merged hist has bucket %d after %d", table, entries[i]>>40, entries[i-1]>>40)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if longestTail == 0 || longestTail > 256 {
			t.Errorf("%s: longest hist_tail has %d entries, want 1-256", table, longestTail)
		}
		if !merged {
			t.Errorf("%s: no row has a hist", table)
		}
	}
	for _, q := range []stats.Query{
		{Since: base.Add(-time.Hour), Until: base.Add(time.Hour)},
		{Since: base, Until: base.Add(time.Minute)},
	} {
		got, err := db.Stats(ctx, tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		if want := aggregate(all, q); !reflect.DeepEqual(got, want) {
			t.Errorf("%v..%v: stats differ from the Aggregator:\n got %+v\nwant %+v", q.Since, q.Until, got.Tools, want.Tools)
		}
	}
}

// migratedTo makes a database of its own, migrated up to version, for a
// test of the migrations after it: its DSN, a database/sql handle on it
// and the goose provider that applies the rest.
func migratedTo(t *testing.T, version int64) (string, *sql.DB, *goose.Provider) {
	t.Helper()
	dsn := pgtest.MustCreateDatabase(t)
	sqlDB, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return dsn, sqlDB, p
}
