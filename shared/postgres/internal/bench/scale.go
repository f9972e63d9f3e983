package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// activityQueries are the first pages of /api/activity timed at each size:
// unfiltered, and with filters that match nothing, which walk the bounded
// activity.MaxScanRows events and stop.
var activityQueries = []string{"limit=50", "limit=50&tool=no-such-tool", "limit=50&kind=invalid", "limit=1000"}

// DiskResult is what the database holds on disk after a size was loaded.
// Events and their indexes are summed over every events partition, the
// rollups over the partitions of the rollup tables and the sessions table.
type DiskResult struct {
	StoredEvents    int64   `json:"stored_events"`
	EventsBytes     int64   `json:"events_bytes"`
	EventIndexBytes int64   `json:"event_index_bytes"`
	RollupBytes     int64   `json:"rollup_bytes"`
	DatabaseBytes   int64   `json:"database_bytes"`
	BytesPerEvent   float64 `json:"bytes_per_event"`
}

// tenantKey is a tenant of the run and its API key.
type tenantKey struct{ id, key string }

// benchStats loads the other tenants' rows, then the measured tenant's up
// to each size, timing /api/stats, the first pages of /api/activity and a
// retention run after each. The events indexes stay in place through the
// load, as under live ingest, so activity is timed at every size.
func benchStats(ctx context.Context, db *postgres.DB, raw *pgxpool.Pool, c *client, o options) ([]StatsResult, error) {
	tenants := make([]tenantKey, 1+o.tenants)
	for i := range tenants {
		name := "bench-stats"
		if i > 0 {
			name = fmt.Sprintf("bench-other-%d", i)
		}
		t, key, err := db.CreateTenant(ctx, name)
		if err != nil {
			return nil, err
		}
		// The benchmark times queries, not the per-key read limit nor the
		// ingest quotas its loads pass in seconds: lift them.
		noLimit, noQuota := 0, int64(0)
		if _, err := db.UpdateTenant(ctx, backend.Actor{}, t.ID, backend.TenantUpdate{ReadRequestsPerMinute: &noLimit,
			IngestEventsPerMinute: &noQuota, IngestEventsPerDay: &noQuota}); err != nil {
			return nil, err
		}
		tenants[i] = tenantKey{t.ID, key}
	}
	measured, others := tenants[0], tenants[1:]
	// The data spans the 23 hours before the start of this minute, so both
	// timed windows cover all of it while the benchmark runs.
	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-23 * time.Hour)
	perOther := 0
	if len(others) > 0 {
		perOther = o.other / len(others)
	}
	if perOther > 0 {
		t0 := time.Now()
		for i, t := range others {
			if err := generate(ctx, db, t.id, 100+i, 0, perOther, o.loaders, start, end); err != nil {
				return nil, err
			}
		}
		progress("loaded %d events for each of %d other tenants in %s", perOther, len(others), time.Since(t0).Round(time.Second))
	}
	var out []StatsResult
	stored := 0
	var perEvent float64 // disk bytes per stored event, once a size is loaded
	for _, n := range o.sizes {
		if err := checkDisk(ctx, raw, float64(n-stored)*perEvent, o.maxDiskUsed); err != nil {
			progress("stopping before %d events: %v", n, err)
			break
		}
		t0 := time.Now()
		if err := generate(ctx, db, measured.id, 0, stored, n-stored, o.loaders, start, end); err != nil {
			return nil, err
		}
		// Rollup rows were updated many times over; autovacuum would
		// have tidied them by the time anyone asks.
		if _, err := raw.Exec(ctx, `VACUUM ANALYZE rollup_hour, rollup_minute, series_minute, session_hour, session_minute, sessions`); err != nil {
			return nil, fmt.Errorf("vacuum: %w", err)
		}
		if _, err := raw.Exec(ctx, `ANALYZE events`); err != nil {
			return nil, fmt.Errorf("analyze: %w", err)
		}
		load := time.Since(t0)
		progress("loaded %d events (%d new) in %s", n, n-stored, load.Round(time.Second))
		sr := StatsResult{Events: n, OtherTenants: len(others), OtherEvents: perOther * len(others),
			LoadSeconds: load.Seconds(), LoadEventsPerS: float64(n-stored) / load.Seconds()}
		stored = n
		if err := raw.QueryRow(ctx, `SELECT (SELECT count(*) FROM rollup_hour), (SELECT count(*) FROM rollup_minute)`).Scan(&sr.RollupHourRows, &sr.RollupMinuteRows); err != nil {
			return nil, fmt.Errorf("count rollups: %w", err)
		}
		for _, w := range windows {
			wr, err := timeStats(ctx, c, measured.key, "since="+w, o.runs, int64(n))
			if err != nil {
				return nil, err
			}
			progress("stats %s at %d events: median %.1f ms, p99 %.1f ms", wr.Query, n, wr.MedianMillis, wr.P99Millis)
			sr.Windows = append(sr.Windows, wr)
		}
		for _, q := range activityQueries {
			wr, err := timeActivity(ctx, c, measured.key, q, o.runs)
			if err != nil {
				return nil, err
			}
			progress("activity %s at %d events: median %.1f ms, p99 %.1f ms", wr.Query, n, wr.MedianMillis, wr.P99Millis)
			sr.Activity = append(sr.Activity, wr)
		}
		var err error
		if sr.Retention, err = benchRetention(ctx, db, raw, measured.id, len(out), o.loaders); err != nil {
			return nil, err
		}
		progress("retention at %d events: a run dropping a day of %d events took %.1f ms (%v)", n, retentionDayEvents, sr.Retention.RunMillis, sr.Retention.Dropped)
		if sr.Disk, err = measureDisk(ctx, raw, sr.Retention.EventsAfter); err != nil {
			return nil, err
		}
		perEvent = sr.Disk.BytesPerEvent
		progress("disk at %d events stored: events %.2f GB + indexes %.2f GB, rollups %.2f GB, database %.2f GB (%.0f bytes per event)",
			sr.Disk.StoredEvents, gb(sr.Disk.EventsBytes), gb(sr.Disk.EventIndexBytes), gb(sr.Disk.RollupBytes), gb(sr.Disk.DatabaseBytes), perEvent)
		// The other tenants still see exactly their own.
		for _, t := range others {
			var st stats.Stats
			if err := c.do(ctx, http.MethodGet, "/api/stats?since=24h", t.key, nil, nil, &st); err != nil {
				return nil, err
			}
			if st.Totals.Events != int64(perOther) {
				return nil, fmt.Errorf("another tenant's stats count %d events, want %d", st.Totals.Events, perOther)
			}
		}
		out = append(out, sr)
	}
	return out, nil
}

func gb(b int64) float64 { return float64(b) / 1e9 }

// measureDisk sums the on-disk size of the events partitions (table and
// indexes) and of the rollups; stored is the number of events they hold.
func measureDisk(ctx context.Context, raw *pgxpool.Pool, stored int64) (*DiskResult, error) {
	d := &DiskResult{StoredEvents: stored}
	err := raw.QueryRow(ctx, `
		SELECT coalesce(sum(pg_table_size(i.inhrelid)) FILTER (WHERE i.inhparent = 'events'::regclass), 0)::bigint,
			coalesce(sum(pg_indexes_size(i.inhrelid)) FILTER (WHERE i.inhparent = 'events'::regclass), 0)::bigint,
			(coalesce(sum(pg_total_relation_size(i.inhrelid)) FILTER (WHERE i.inhparent <> 'events'::regclass), 0)
				+ pg_total_relation_size('sessions'))::bigint,
			pg_database_size(current_database())
		FROM pg_inherits AS i
		WHERE i.inhparent IN ('events'::regclass, 'rollup_minute'::regclass, 'rollup_hour'::regclass,
			'series_minute'::regclass, 'session_minute'::regclass, 'session_hour'::regclass)`).
		Scan(&d.EventsBytes, &d.EventIndexBytes, &d.RollupBytes, &d.DatabaseBytes)
	if err != nil {
		return nil, fmt.Errorf("measure disk: %w", err)
	}
	if stored > 0 {
		d.BytesPerEvent = float64(d.DatabaseBytes) / float64(stored)
	}
	return d, nil
}

// checkDisk refuses to load more once the file system holding the
// server's data directory would be more than maxUsed percent full after
// adding need bytes. It can only look when the server runs on this
// machine; otherwise it lets the load go on.
func checkDisk(ctx context.Context, raw *pgxpool.Pool, need float64, maxUsed float64) error {
	var dir string
	if err := raw.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		return nil //nolint:nilerr // a role not allowed to read the setting: no guard, as for a remote server
	}
	used, total, ok := diskUsage(dir)
	if !ok {
		return nil
	}
	return diskRoom(dir, used, total, need, maxUsed)
}

// diskRoom refuses need more bytes on a file system of total bytes with
// used taken once that would fill it past maxUsed percent.
func diskRoom(dir string, used, total uint64, need, maxUsed float64) error {
	if total == 0 {
		return nil
	}
	if pct := 100 * (float64(used) + need) / float64(total); pct > maxUsed {
		return fmt.Errorf("the disk holding %s would be %.0f%% full (%.1f GB more), past -max-disk-used %.0f%%", dir, pct, need/1e9, maxUsed)
	}
	return nil
}

// benchRetention loads retentionDayEvents into an old day (25 days back,
// one day later for each size, so each size drops a day of its own), runs
// maintenance once with its clock just inside that day's retention, so the
// days before it go and the partitions ahead are made, then times the run,
// a day later, that drops exactly that day.
func benchRetention(ctx context.Context, db *postgres.DB, raw *pgxpool.Pool, tenant string, size, loaders int) (*RetentionResult, error) {
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -25+size)
	if err := generate(ctx, db, tenant, 7+size, 1_000_000_000+size*retentionDayEvents, retentionDayEvents, loaders, day, day.Add(23*time.Hour)); err != nil {
		return nil, fmt.Errorf("retention day: %w", err)
	}
	defer db.SetClock(time.Now)
	db.SetClock(func() time.Time { return day.AddDate(0, 0, 30).Add(time.Minute) })
	if _, err := db.Maintain(ctx, backend.Actor{Admin: "bench"}); err != nil {
		return nil, fmt.Errorf("maintenance before the timed run: %w", err)
	}
	r := &RetentionResult{DayEvents: retentionDayEvents}
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&r.EventsBefore); err != nil {
		return nil, err
	}
	db.SetClock(func() time.Time { return day.AddDate(0, 0, 31).Add(time.Minute) })
	t0 := time.Now()
	res, err := db.Maintain(ctx, backend.Actor{Admin: "bench"})
	if err != nil {
		return nil, fmt.Errorf("maintenance: %w", err)
	}
	r.RunMillis = millis(time.Since(t0))
	r.Dropped, r.Created = res.Dropped, len(res.Created)
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&r.EventsAfter); err != nil {
		return nil, err
	}
	if r.EventsBefore-r.EventsAfter != retentionDayEvents {
		return nil, fmt.Errorf("retention dropped %d events, want the day's %d", r.EventsBefore-r.EventsAfter, retentionDayEvents)
	}
	return r, nil
}

// timeActivity requests the first page of /api/activity?query runs times
// after three warm-ups.
func timeActivity(ctx context.Context, c *client, key, query string, runs int) (WindowResult, error) {
	return timeGet(ctx, c, key, "/api/activity?"+query, runs, func() any { return &activity.Page{} }, func(any) error { return nil })
}

// timeStats requests /api/stats?query runs times after three warm-ups,
// checking each answer counts want events.
func timeStats(ctx context.Context, c *client, key, query string, runs int, want int64) (WindowResult, error) {
	return timeGet(ctx, c, key, "/api/stats?"+query, runs, func() any { return &stats.Stats{} }, func(v any) error {
		if got := v.(*stats.Stats).Totals.Events; got != want {
			return fmt.Errorf("stats?%s counted %d events, want %d", query, got, want)
		}
		return nil
	})
}

// timeGet times runs GETs of path after three warm-ups, decoding each
// answer into a fresh value and checking it.
func timeGet(ctx context.Context, c *client, key, path string, runs int, fresh func() any, check func(any) error) (WindowResult, error) {
	var d []time.Duration
	for i := 0; i < runs+3; i++ {
		v := fresh()
		t0 := time.Now()
		if err := c.do(ctx, http.MethodGet, path, key, nil, nil, v); err != nil {
			return WindowResult{}, err
		}
		if i >= 3 {
			d = append(d, time.Since(t0))
		}
		if err := check(v); err != nil {
			return WindowResult{}, err
		}
	}
	_, query, _ := strings.Cut(path, "?")
	return WindowResult{
		Query: query, Runs: runs,
		MedianMillis: millis(quantile(d, 0.5)), P95Millis: millis(quantile(d, 0.95)),
		P99Millis: millis(quantile(d, 0.99)), MaxMillis: millis(slices.Max(d)),
	}, nil
}
