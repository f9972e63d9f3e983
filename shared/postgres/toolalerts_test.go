package postgres_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// TestToolAlertsSQLIsAnalysis holds km_tool_alerts, which backfilled the
// tool alert rollups from stored events (migration 00024), to
// analysis.ToolAlert, which ingest counts them by.
func TestToolAlertsSQLIsAnalysis(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	for _, reason := range []string{
		analysis.ReasonToolPoisoning + "read_file",
		analysis.ReasonDefinitionChanged + "echo",
		analysis.ReasonToolPoisoning,
		analysis.ReasonDefinitionChanged,
		analysis.ReasonToolPoisoning + analysis.ReasonDefinitionChanged + "x",
		analysis.ReasonDefinitionChanged + analysis.ReasonToolPoisoning + "y",
		analysis.ReasonToolPoisoning + "ünï code:1",
		"tool_poisoning", "TOOL_POISONING:a", " tool_poisoning:a", "sensitive_path", "",
	} {
		type alert struct{ kind, tool string }
		var want []alert
		if kind, tool, ok := analysis.ToolAlert(reason); ok {
			want = append(want, alert{kind, tool})
		}
		rows, err := db.Pool().Query(ctx, `SELECT kind, tool FROM km_tool_alerts(ARRAY[$1::text])`, reason)
		if err != nil {
			t.Fatal(err)
		}
		var got []alert
		var a alert
		if _, err := pgx.ForEachRow(rows, []any{&a.kind, &a.tool}, func() error { got = append(got, a); return nil }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("km_tool_alerts(%q) = %v, analysis.ToolAlert %v", reason, got, want)
		}
	}
}

// TestMigrationBackfillsRollups migrates a database whose scored
// tools/list replies stats read from events, and whose session rows are
// per server: after migrations 00024 and 00025 stats names the same tools
// from the tool alert rollups and counts the same sessions from the rows
// of any server.
func TestMigrationBackfillsRollups(t *testing.T) {
	dsn, sqlDB, p := migratedTo(t, 23)
	ctx := context.Background()
	tenant := newID(t)
	if _, err := sqlDB.ExecContext(ctx, `INSERT INTO tenants (id, name) VALUES ($1, 'old')`, tenant); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Minute).Add(-90 * time.Minute)
	if _, err := sqlDB.ExecContext(ctx, `
		INSERT INTO events (tenant_id, id, session_id, seq, ts, direction, kind, server, method, tool, failed, size,
			risk_score, risk_level, risk_rank, risk_reasons)
		VALUES
			($1, gen_random_uuid(), gen_random_uuid(), 1, $2, 'server_to_client', 'response', 'fs', 'tools/list', '', false, 10,
				90, 'high', 2, '{tool_poisoning:evil,definition_changed:shifty,sensitive_path}'),
			($1, gen_random_uuid(), gen_random_uuid(), 2, $2::timestamptz + interval '40 minutes', 'server_to_client', 'response', 'fs', 'tools/list', '', false, 10,
				50, 'medium', 1, '{tool_poisoning:evil}'),
			($1, gen_random_uuid(), gen_random_uuid(), 3, $2, 'server_to_client', 'response', 'fs', 'tools/list', '', false, 10,
				10, 'low', 0, '{tool_poisoning:unscored}')`, tenant, at); err != nil {
		t.Fatal(err)
	}
	// Two sessions, one of them on two servers, in two hours.
	s1, s2 := newID(t), newID(t)
	for _, row := range []struct {
		bucket  time.Time
		server  string
		session string
	}{
		{at.Truncate(time.Hour), "fs", s1}, {at.Truncate(time.Hour), "git", s1},
		{at.Truncate(time.Hour).Add(time.Hour), "fs", s1}, {at.Truncate(time.Hour).Add(time.Hour), "git", s2},
	} {
		if _, err := sqlDB.ExecContext(ctx, `INSERT INTO session_hour (tenant_id, bucket, server, session_id) VALUES ($1, $2, $3, $4)`,
			tenant, row.bucket, row.server, row.session); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Stats(ctx, tenant, stats.Query{Since: at.Add(-time.Hour), Until: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []stats.RiskyTool{
		{Tool: "evil", MaxScore: 90, High: 1, Medium: 1, Reasons: []string{"tool_poisoning"}},
		{Tool: "shifty", MaxScore: 90, High: 1, Reasons: []string{"definition_changed"}},
	}
	if !reflect.DeepEqual(got.RiskiestTools, want) {
		t.Errorf("riskiest tools after the migration: %+v, want %+v", got.RiskiestTools, want)
	}
	// Whole hours only: session rows are hourly here.
	q := stats.Query{Since: at.Truncate(time.Hour), Until: at.Truncate(time.Hour).Add(2 * time.Hour)}
	for server, want := range map[string]int64{"": 2, "fs": 1, "git": 2} {
		q.Server = server
		got, err := db.Stats(ctx, tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Totals.Sessions != want {
			t.Errorf("sessions of server %q after the migration: %d, want %d", server, got.Totals.Sessions, want)
		}
	}
}
