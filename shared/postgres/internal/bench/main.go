// Command bench measures the PostgreSQL store: ingest throughput through
// Store.Ingest against a raw COPY of the same rows into a bare table, and
// the latency of Stats with 1M and 10M events stored. It works in a
// database of its own, created on the server of DATABASE_URL and dropped at
// the end.
//
//	go run ./shared/postgres/internal/bench [-sizes 1000000,10000000] [-runs 25]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	sizesFlag := flag.String("sizes", "1000000,10000000", "numbers of stored events to measure Stats at")
	runs := flag.Int("runs", 25, "Stats calls per size (the median is reported)")
	ingestEvents := flag.Int("ingest-events", 100000, "events sent through Ingest and through raw COPY")
	batchSize := flag.Int("batch", 500, "events per ingest batch")
	flag.Parse()
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -sizes %q", *sizesFlag)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)

	ctx := context.Background()
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		admin = testenv.DefaultDatabaseURL
	}
	name, dsn, err := pgtest.CreateDatabase(ctx, admin)
	if err != nil {
		return err
	}
	defer func() {
		if err := pgtest.DropDatabase(context.Background(), admin, name); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}

	fmt.Printf("## Ingest: %d events in batches of %d\n\n", *ingestEvents, *batchSize)
	if err := benchIngest(ctx, db, *ingestEvents, *batchSize); err != nil {
		return err
	}

	tenant, _, err := db.CreateTenant(ctx, "bench-stats")
	if err != nil {
		return err
	}
	// The data spans the 23 hours before now, so the default 24h window
	// (until now) covers all of it while the benchmark runs.
	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-23 * time.Hour)
	fmt.Printf("\n## Stats: default 24h window covering all stored events, median of %d calls\n\n", *runs)
	fmt.Println("| events stored | load time | rollup_hour rows | rollup_minute rows | stats median | stats p90 | stats median, one server |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|")
	stored := 0
	for _, n := range sizes {
		t0 := time.Now()
		if err := generate(ctx, db, tenant.ID, stored, n-stored, start, end); err != nil {
			return err
		}
		load := time.Since(t0)
		stored = n
		if _, err := db.Pool().Exec(ctx, "VACUUM ANALYZE"); err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
		med, p90, err := timeStats(ctx, db, tenant.ID, stats.Query{}, *runs, int64(n))
		if err != nil {
			return err
		}
		medServer, _, err := timeStats(ctx, db, tenant.ID, stats.Query{Server: servers[1]}, *runs, -1)
		if err != nil {
			return err
		}
		var hours, minutes int64
		if err := db.Pool().QueryRow(ctx, "SELECT (SELECT count(*) FROM rollup_hour), (SELECT count(*) FROM rollup_minute)").Scan(&hours, &minutes); err != nil {
			return err
		}
		fmt.Printf("| %d | %s | %d | %d | %s | %s | %s |\n", n, load.Round(time.Second), hours, minutes,
			ms(med), ms(p90), ms(medServer))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// timeStats calls Stats runs times (after two warm-up calls) and returns
// the median and 90th percentile; want >= 0 checks the events counted.
func timeStats(ctx context.Context, db *postgres.DB, tenant string, q stats.Query, runs int, want int64) (time.Duration, time.Duration, error) {
	var d []time.Duration
	for i := 0; i < runs+2; i++ {
		t0 := time.Now()
		s, err := db.Stats(ctx, tenant, q.Align(time.Now()))
		if err != nil {
			return 0, 0, err
		}
		if want >= 0 && s.Totals.Events != want {
			return 0, 0, fmt.Errorf("stats counted %d events, want %d", s.Totals.Events, want)
		}
		if i >= 2 {
			d = append(d, time.Since(t0))
		}
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*9/10], nil
}

var (
	servers = []string{"filesystem", "github", "postgres", "browser", "slack"}
	tools   = []string{"read_file", "write_file", "list_directory", "search_files", "create_issue", "get_pull_request",
		"query", "describe_table", "navigate", "screenshot", "send_message", "list_channels"}
	methods = []string{"tools/call", "tools/call", "tools/call", "tools/call", "tools/call", "tools/call",
		"tools/call", "tools/call", "tools/call", "tools/call", "tools/call", "tools/call",
		"resources/read", "resources/read", "resources/read", "tools/list", "tools/list", "prompts/get",
		"notifications/progress", "resources/list"}
)

// generate stores n more events between start and end through
// IngestGenerated, 50,000 per transaction. Events come in request/reply
// pairs; latencies are drawn in Go and bucketed with stats.Bucket, so the
// database never derives a histogram bucket itself.
func generate(ctx context.Context, db *postgres.DB, tenant string, offset, n int, start, end time.Time) error {
	r := rand.New(rand.NewPCG(uint64(offset), 42))
	const nLat = 4096
	lat := make([]float64, nLat)
	bkt := make([]int32, nLat)
	for i := range lat {
		// Log-normal around 40 ms: most calls are quick, a long tail is not.
		lat[i] = float64(int64(40*expNorm(r)*1000)) / 1000
		bkt[i] = int32(stats.Bucket(lat[i]))
	}
	const fill = `
INSERT INTO km_staging (id, session_id, seq, ts, direction, kind, server, rpc_id, method, tool,
    latency_ms, latency_bucket, error_code, is_error, failed, size, risk_score, risk_level, risk_rank,
    risk_reasons, cost_usd, tokens, payload, payload_truncated)
SELECT gen_random_uuid(), md5('s' || (p / 2500)::text)::uuid, i, ts,
    CASE WHEN reply THEN 'server_to_client' ELSE 'client_to_server' END, kind,
    ($5::text[])[1 + p % 5], p::text, method,
    CASE WHEN method = 'tools/call' THEN ($6::text[])[1 + (p * 13) % 12] ELSE '' END,
    CASE WHEN reply THEN ($3::float8[])[1 + (p * 31) % 4096] END,
    CASE WHEN reply THEN ($4::int[])[1 + (p * 31) % 4096] END,
    CASE WHEN kind = 'error' THEN -32603 END,
    CASE WHEN kind = 'response' AND method = 'tools/call' THEN p % 23 = 0 END,
    kind = 'error' OR (kind = 'response' AND method = 'tools/call' AND p % 23 = 0),
    size, score, CASE WHEN score >= 70 THEN 'high' WHEN score >= 40 THEN 'medium' ELSE 'low' END,
    CASE WHEN score >= 70 THEN 2 WHEN score >= 40 THEN 1 ELSE 0 END,
    NULL, size / 1024.0 * 0.001, size / 4, NULL, false
FROM (
    SELECT i, p, reply, method, ts, 200 + (p * 17) % 3000 AS size, (p * 37) % 100 AS score,
        CASE WHEN NOT reply THEN CASE WHEN method LIKE 'notifications/%' THEN 'notification' ELSE 'request' END
             WHEN p % 50 = 0 THEN 'error' ELSE 'response' END AS kind
    FROM (
        SELECT i, i / 2 AS p, i % 2 = 1 AS reply, ($7::text[])[1 + ((i / 2) * 7) % 20] AS method,
            $8::timestamptz + make_interval(secs => (i - $1)::float8 * $9 / $10) AS ts
        FROM generate_series($1::bigint, $2::bigint - 1) AS i
    ) AS a
) AS b`
	const chunk = 50000
	span := end.Sub(start).Seconds()
	for lo := offset; lo < offset+n; lo += chunk {
		hi := min(lo+chunk, offset+n)
		got, err := db.IngestGenerated(ctx, tenant, fill, lo, hi, lat, bkt, servers, tools, methods, start, span, n)
		if err != nil {
			return fmt.Errorf("generate events %d-%d: %w", lo, hi, err)
		}
		if got != hi-lo {
			return fmt.Errorf("generate events %d-%d: stored %d", lo, hi, got)
		}
		fmt.Fprintf(os.Stderr, "\rloaded %d/%d", hi, offset+n)
	}
	fmt.Fprintln(os.Stderr)
	return nil
}

func expNorm(r *rand.Rand) float64 {
	return math.Exp(r.NormFloat64())
}

// benchIngest sends the same realistic batches through Store.Ingest and
// through a bare COPY into a table without index or constraint, and prints
// both rates and their ratio.
func benchIngest(ctx context.Context, db *postgres.DB, total, batchSize int) error {
	tenant, _, err := db.CreateTenant(ctx, "bench-ingest")
	if err != nil {
		return err
	}
	batches := realisticBatches(total, batchSize)
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE bench_bare (
		tenant_id uuid, id uuid, session_id uuid, seq bigint, ts timestamptz, direction text, kind text,
		server text, rpc_id text, method text, tool text, latency_ms double precision, latency_bucket integer,
		error_code integer, is_error boolean, failed boolean, size bigint, risk_score integer, risk_level text,
		risk_rank smallint, risk_reasons text[], cost_usd double precision, tokens bigint,
		payload jsonb, payload_truncated boolean)`); err != nil {
		return fmt.Errorf("bare table: %w", err)
	}
	cols := []string{"tenant_id", "id", "session_id", "seq", "ts", "direction", "kind", "server", "rpc_id", "method", "tool",
		"latency_ms", "latency_bucket", "error_code", "is_error", "failed", "size", "risk_score", "risk_level",
		"risk_rank", "risk_reasons", "cost_usd", "tokens", "payload", "payload_truncated"}
	rows := make([][][]any, len(batches))
	tid := uuid.MustParse(tenant.ID)
	for i, b := range batches {
		rows[i] = bareRows(tid, b.Events)
	}

	t0 := time.Now()
	for _, rs := range rows {
		if _, err := db.Pool().CopyFrom(ctx, pgx.Identifier{"bench_bare"}, cols, pgx.CopyFromRows(rs)); err != nil {
			return fmt.Errorf("raw copy: %w", err)
		}
	}
	rawDur := time.Since(t0)

	t0 = time.Now()
	for _, b := range batches {
		res, err := db.Ingest(ctx, tenant.ID, b)
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		if res.Accepted != len(b.Events) {
			return fmt.Errorf("ingest accepted %d of %d", res.Accepted, len(b.Events))
		}
	}
	ingestDur := time.Since(t0)

	raw := float64(total) / rawDur.Seconds()
	ing := float64(total) / ingestDur.Seconds()
	fmt.Println("| path | events/s | time |")
	fmt.Println("|---|---:|---:|")
	fmt.Printf("| raw COPY into a bare table | %.0f | %s |\n", raw, rawDur.Round(time.Millisecond))
	fmt.Printf("| Store.Ingest (COPY to staging, insert, rollups) | %.0f | %s |\n", ing, ingestDur.Round(time.Millisecond))
	fmt.Printf("\nIngest / raw COPY: %.0f%%\n", 100*ing/raw)
	return nil
}

// realisticBatches builds batches like the monitor ships: request/reply
// pairs of a few sessions, payloads of a few hundred bytes, risk and cost.
func realisticBatches(total, size int) []event.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC().Add(-time.Hour)
	sessions := make([]string, 20)
	for i := range sessions {
		sessions[i] = uuid.Must(uuid.NewV7()).String()
	}
	var batches []event.Batch
	var cur []event.Event
	for i := 0; i < total; i++ {
		p := i / 2
		m := methods[(p*7)%len(methods)]
		e := event.Event{
			ID: uuid.Must(uuid.NewV7()).String(), SessionID: sessions[p%len(sessions)], Seq: int64(i),
			TS: now.Add(time.Duration(i) * time.Millisecond), Direction: event.ClientToServer, Kind: event.KindRequest,
			Server: servers[p%len(servers)], RPCID: strconv.Itoa(p), Method: m, Size: int64(200 + r.IntN(800)),
		}
		if m == "tools/call" {
			e.Tool = tools[r.IntN(len(tools))]
		}
		if i%2 == 1 {
			e.Direction, e.Kind = event.ServerToClient, event.KindResponse
			l := 40 * expNorm(r)
			e.LatencyMS = &l
			f := r.IntN(20) == 0
			e.IsError = &f
		}
		score := r.IntN(100)
		e.Risk = &event.Risk{Score: score, Level: event.LevelLow}
		if score >= 70 {
			e.Risk.Level, e.Risk.Reasons = event.LevelHigh, []string{"sensitive_path"}
		}
		e.CostUSD = float64(e.Size) / 1024 * 0.001
		e.Tokens = e.Size / 4
		payload, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": p, "method": m,
			"params": map[string]any{"name": e.Tool, "arguments": map[string]any{"path": "/home/dev/project/src/main.go", "n": i}}})
		e.Payload = payload
		cur = append(cur, e)
		if len(cur) == size {
			batches = append(batches, event.Batch{Events: cur})
			cur = nil
		}
	}
	if len(cur) > 0 {
		batches = append(batches, event.Batch{Events: cur})
	}
	return batches
}

// bareRows is the raw COPY's copy of the row Ingest stages, so both paths
// move the same bytes.
func bareRows(tenant uuid.UUID, events []event.Event) [][]any {
	rows := make([][]any, len(events))
	for i := range events {
		e := &events[i]
		var bucket *int32
		if e.LatencyMS != nil {
			b := int32(stats.Bucket(*e.LatencyMS))
			bucket = &b
		}
		score, level := int32(e.Risk.Score), string(e.Risk.Level)
		rows[i] = []any{[16]byte(tenant), [16]byte(uuid.MustParse(e.ID)), [16]byte(uuid.MustParse(e.SessionID)), e.Seq, e.TS,
			string(e.Direction), string(e.Kind), e.Server, e.RPCID, e.Method, e.Tool, e.LatencyMS, bucket,
			(*int32)(nil), e.IsError, e.Failed(), e.Size, &score, &level, int16(activity.LevelRank(e.RiskLevel())),
			e.Risk.Reasons, e.CostUSD, e.Tokens, []byte(e.Payload), e.PayloadTruncated}
	}
	return rows
}
