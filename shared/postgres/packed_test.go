package postgres_test

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// TestPackedLayoutIsPostgres holds the Go packing of rollup histograms and
// samples to the bytes PostgreSQL's int8send and float8send write, which
// the SQL side of ingest (and km_hist_merge) builds them with.
func TestPackedLayoutIsPostgres(t *testing.T) {
	db := pgtest.MustOpenPool(t, pgtest.MustCreateDatabase(t))
	ctx := context.Background()
	for _, tc := range []struct {
		entry  int64
		sample float64
	}{
		{0, 0},
		{stats.PackBucket(1, 1), 0.001},
		{stats.PackBucket(2200, 1<<40-1), 3.6e6},
		{-1, math.Inf(1)},
		{math.MaxInt64, -2.5},
	} {
		var entry, sample []byte
		if err := db.QueryRow(ctx, `SELECT int8send($1::int8), float8send($2::float8)`, tc.entry, tc.sample).Scan(&entry, &sample); err != nil {
			t.Fatal(err)
		}
		if got := postgres.PackInt8(nil, tc.entry); !bytes.Equal(got, entry) {
			t.Errorf("PackInt8(%d) = %x, PostgreSQL %x", tc.entry, got, entry)
		}
		if got := postgres.PackFloat8(nil, tc.sample); !bytes.Equal(got, sample) {
			t.Errorf("PackFloat8(%v) = %x, PostgreSQL %x", tc.sample, got, sample)
		}
		if got, err := postgres.UnpackInt8(nil, entry); err != nil || !reflect.DeepEqual(got, []int64{tc.entry}) {
			t.Errorf("UnpackInt8(%x) = %v, %v", entry, got, err)
		}
		if got, err := postgres.UnpackFloat8(nil, sample); err != nil || !reflect.DeepEqual(got, []float64{tc.sample}) {
			t.Errorf("UnpackFloat8(%x) = %v, %v", sample, got, err)
		}
	}
	for _, n := range []int{1, 7, 9} {
		if _, err := postgres.UnpackInt8(nil, make([]byte, n)); err == nil {
			t.Errorf("UnpackInt8 of %d bytes: no error", n)
		}
		if _, err := postgres.UnpackFloat8(nil, make([]byte, n)); err == nil {
			t.Errorf("UnpackFloat8 of %d bytes: no error", n)
		}
	}
}

// TestMigrationPacksHistograms migrates rollup rows stored as arrays to
// packed bytes and back: every entry and sample is kept in order, a NULL
// samples column stays NULL, and stats answers from the migrated rows.
func TestMigrationPacksHistograms(t *testing.T) {
	dsn, _, p := migratedTo(t, 22)
	ctx := context.Background()
	pool := pgtest.MustOpenPool(t, dsn)
	tenant := newID(t)
	if _, err := pool.Exec(ctx, `INSERT INTO tenants (id, name) VALUES ($1, 'old')`, tenant); err != nil {
		t.Fatal(err)
	}
	bucket := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	hist := []int64{stats.PackBucket(100, 2), stats.PackBucket(300, 1)}
	tail := []int64{stats.PackBucket(100, 1)}
	samples := []float64{2.7, 1.1, 19.9, 3} // one per latency of hist and tail
	// The hourly row keeps its samples, the minute row has too many (NULL).
	for _, table := range []string{"rollup_hour", "rollup_minute"} {
		s := any(samples)
		if table == "rollup_minute" {
			s = nil
		}
		if _, err := pool.Exec(ctx, `
			INSERT INTO `+table+` (tenant_id, bucket, server, method, tool, events, requests, calls, errors, bytes,
				cost_usd, tokens, risk_medium, risk_high, max_score, hist, hist_tail, min_ms, max_ms, samples)
			VALUES ($1, $2, 'fs', 'tools/call', 'read_file', 4, 4, 4, 0, 400, 0, 0, 0, 0, 0, $3, $4, 1.1, 19.9, $5)`,
			tenant, bucket, hist, tail, s); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
	}
	read := func(table string) (h, tl []int64, s []float64) {
		t.Helper()
		var hb, tb, sb []byte
		if err := pool.QueryRow(ctx, `SELECT hist, hist_tail, samples FROM `+table).Scan(&hb, &tb, &sb); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		h, err1 := postgres.UnpackInt8(nil, hb)
		tl, err2 := postgres.UnpackInt8(nil, tb)
		var err3 error
		if sb != nil {
			s, err3 = postgres.UnpackFloat8([]float64{}, sb)
		}
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("%s: %v %v %v", table, err1, err2, err3)
		}
		return h, tl, s
	}

	if _, err := p.UpTo(ctx, 23); err != nil {
		t.Fatal(err)
	}
	for table, wantSamples := range map[string][]float64{"rollup_hour": samples, "rollup_minute": nil} {
		h, tl, s := read(table)
		if !reflect.DeepEqual(h, hist) || !reflect.DeepEqual(tl, tail) || !reflect.DeepEqual(s, wantSamples) {
			t.Errorf("%s after the migration: hist %v tail %v samples %v, want %v %v %v", table, h, tl, s, hist, tail, wantSamples)
		}
	}
	if _, err := p.Up(ctx); err != nil { // the rest of the schema stats reads
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Stats(ctx, tenant, stats.Query{Since: bucket, Until: bucket.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if st.Totals.Events != 4 || st.Latency.P50 != 2.7 {
		t.Errorf("stats after the migration: %d events, p50 %v; want 4 and 2.7 (the exact samples)", st.Totals.Events, st.Latency.P50)
	}

	if _, err := p.DownTo(ctx, 22); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // its prepared statements know the packed column types
	for _, table := range []string{"rollup_hour", "rollup_minute"} {
		var h, tl []int64
		var s []float64
		if err := pool.QueryRow(ctx, `SELECT hist, hist_tail, samples FROM `+table).Scan(&h, &tl, &s); err != nil {
			t.Fatalf("%s after down: %v", table, err)
		}
		if !reflect.DeepEqual(h, hist) || !reflect.DeepEqual(tl, tail) || s != nil {
			t.Errorf("%s after down: hist %v tail %v samples %v, want %v %v NULL", table, h, tl, s, hist, tail)
		}
	}
}
