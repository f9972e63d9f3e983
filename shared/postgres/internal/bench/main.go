// Command bench is the backend half of `make bench`. In one run, side by
// side, it measures:
//
//   - ingest: gzipped JSON batches, as the CLI ships them, posted to
//     POST /api/events/batch of the real HTTP handler (shared/httpapi over
//     the PostgreSQL store, through net/http on loopback), against raw COPY
//     of the same rows, in the same batches. The reference the floor is
//     held to is COPY into a table made with (LIKE events INCLUDING ALL):
//     the same columns, primary key and indexes the product needs to answer
//     its queries, without row-level security or rollups; that is the
//     fastest way to get those rows into a store that can be queried. COPY
//     into a plain heap of the same columns with no index at all is
//     reported beside it, for information. Rounds rotate which of the three
//     paths goes first so none gets the warmer cache.
//   - stats: GET /api/stats through the same handler, for the windows the
//     CLI asks by default (since=24h) and with --since 7d, with 1M and then
//     10M events stored for one tenant (-sizes; make bench adds
//     BENCH_SCALE) and three other tenants' rows beside them. Events are
//     generated in Go and stored through the store's Ingest, in full
//     batches, with the events indexes in place, so events, indexes and
//     rollups are built exactly as live ingest builds them, into the
//     partitions the maintenance job made.
//   - activity: at each size, first pages of GET /api/activity, unfiltered
//     and with filters that match nothing (the bounded walk).
//   - retention: at each size, the maintenance run that drops one day
//     partition of 100k events, which should take about the same time
//     whatever the table holds (a whole partition goes).
//   - disk: at each size, the bytes the events, their indexes and the
//     rollups take. A size whose estimate would fill the server's disk past
//     -max-disk-used is not loaded, and the run ends there.
//
// It works in a database of its own, created on the server of DATABASE_URL
// and dropped at the end (unless -keep). It prints a table (or, with -json,
// one JSON document) and PASS/FAIL against the floors docs/performance.md
// states, and
// exits 1 when a required floor is missed, 2 when the run itself fails.
//
//	go run ./shared/postgres/internal/bench              # the full run (minutes)
//	go run ./shared/postgres/internal/bench -quick       # a smaller run, in seconds
//	go run ./shared/postgres/internal/bench -quick -json # the same as one JSON document
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// Floors (docs/performance.md). Required ones decide the exit code; aims are
// reported only.
const (
	requiredIngestRatio = 0.32
	aimIngestRatio      = 0.50
	requiredStatsMedian = 300 * time.Millisecond // at 1M events
	aimStatsMedian      = 50 * time.Millisecond  // at 10M events
	aimStatsMedianLarge = 100 * time.Millisecond // at 100M events (BENCH_SCALE)
	requiredStatsAt     = 1_000_000
	aimStatsAt          = 10_000_000
	aimStatsLargeAt     = 100_000_000
)

// windows are the stats requests timed at each size, as the CLI sends them.
var windows = []string{"24h", "7d"}

type options struct {
	sizes        []int
	other        int
	tenants      int
	maxDiskUsed  float64
	runs         int
	ingestEvents int
	batch        int
	rounds       int
	clients      int
	loaders      int
	skipStats    bool
	keep         bool
	jsonOut      bool
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	sizes := flag.String("sizes", "1000000,10000000", "comma-separated numbers of one tenant's stored events at which /api/stats is timed")
	flag.IntVar(&o.other, "other", 1_000_000, "events stored for the other tenants beside the measured one, shared evenly")
	flag.IntVar(&o.tenants, "tenants", 3, "other tenants whose events lie beside the measured tenant's")
	flag.Float64Var(&o.maxDiskUsed, "max-disk-used", 70, "stop before a size whose estimated size would fill the server's disk past this `percent` (when the server runs on this machine)")
	flag.IntVar(&o.runs, "runs", 40, "timed /api/stats requests per size and window (after 3 warm-up requests)")
	flag.IntVar(&o.ingestEvents, "ingest-events", 200_000, "events posted through the handler and copied raw")
	flag.IntVar(&o.batch, "batch", 500, "events per ingest batch (the CLI's default batch size)")
	flag.IntVar(&o.rounds, "rounds", 8, "interleaved ingest rounds (each posts and copies 1/rounds of the events)")
	flag.IntVar(&o.clients, "clients", 1, "concurrent senders for both ingest paths (the CLI sends one batch at a time per monitor)")
	flag.IntVar(&o.loaders, "loaders", 2, "concurrent transactions loading the stats events (each on its own stretch of time)")
	flag.BoolVar(&o.skipStats, "skip-stats", false, "measure ingest only (a CPU profile then shows the ingest path alone)")
	flag.BoolVar(&o.keep, "keep", false, "keep the benchmark database instead of dropping it")
	flag.BoolVar(&o.jsonOut, "json", false, "print the results as one JSON document instead of tables")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the benchmark process (client and handler) to `file`")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the benchmark process to `file` at the end")
	quick := flag.Bool("quick", false, "a small run: -sizes 100000 -other 20000 -runs 15 -ingest-events 20000 -rounds 4 (flags given explicitly still win)")
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"sizes": "100000", "other": "20000", "runs": "15", "ingest-events": "20000", "rounds": "4"} {
			if !set[name] {
				if err := flag.Set(name, v); err != nil {
					return fail(err)
				}
			}
		}
	}
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		return fail(err)
	}
	if o.runs < 1 || o.batch < 1 || o.rounds < 1 || o.clients < 1 || o.loaders < 1 || o.ingestEvents < o.rounds*o.batch || o.other < 0 || o.tenants < 0 {
		return fail(errors.New("need -runs >= 1, -batch >= 1, -rounds >= 1, -clients >= 1, -loaders >= 1, -ingest-events >= rounds*batch, -other >= 0, -tenants >= 0"))
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench(ctx, o)
	if err != nil {
		return fail(err)
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return fail(err)
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fail(err)
		}
	} else {
		printTables(os.Stdout, res)
	}
	for _, c := range res.Checks {
		if c.Required && !c.Pass {
			return 1
		}
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "bench:", err)
	return 2
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad -sizes %q: want positive integers separated by commas", s)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes), nil
}

// Result is what a run measured; -json prints it as is.
type Result struct {
	Database    string        `json:"database"`
	Ingest      IngestResult  `json:"ingest"`
	Stats       []StatsResult `json:"stats"`
	Checks      []Check       `json:"checks"`
	WallSeconds float64       `json:"wall_seconds"`
}

// IngestResult compares the handler with raw COPY over the same rows:
// Ratio (the one held to the floor) against COPY into a table with the
// indexes of events, HeapRatio against COPY into a table with none.
type IngestResult struct {
	Events             int     `json:"events"`
	Batch              int     `json:"batch"`
	Rounds             int     `json:"rounds"`
	Clients            int     `json:"clients"`
	GzipBytes          int64   `json:"gzip_bytes"`
	JSONBytes          int64   `json:"json_bytes"`
	CopySeconds        float64 `json:"copy_seconds"`
	CopyHeapSeconds    float64 `json:"copy_heap_seconds"`
	HTTPSeconds        float64 `json:"http_seconds"`
	CopyEventsPerS     float64 `json:"copy_events_per_s"`
	CopyHeapEventsPerS float64 `json:"copy_heap_events_per_s"`
	HTTPEventsPerS     float64 `json:"http_events_per_s"`
	Ratio              float64 `json:"ratio"`
	HeapRatio          float64 `json:"heap_ratio"`
	RoundRatioMin      float64 `json:"round_ratio_min"`
	RoundRatioMax      float64 `json:"round_ratio_max"`
	RoundRatioMed      float64 `json:"round_ratio_median"`
	HeapRoundRatioMed  float64 `json:"heap_round_ratio_median"`
	BatchP50Millis     float64 `json:"http_batch_p50_ms"`
	BatchP95Millis     float64 `json:"http_batch_p95_ms"`
	StatsEventsSeen    int64   `json:"stats_events_seen"`
	// CPU time per batch of this process (client, handler, pgx) and of
	// the database's backends, for each path (absent where the server's
	// processes cannot be read): wall time on a busy machine mostly
	// measures the machine, CPU time what the path costs.
	CPU *IngestCPU `json:"cpu_ms_per_batch,omitempty"`
}

// IngestCPU is the CPU time per batch of both paths, in milliseconds.
type IngestCPU struct {
	HandlerGo       float64 `json:"handler_go"`
	HandlerPostgres float64 `json:"handler_postgres"`
	CopyGo          float64 `json:"copy_go"`
	CopyPostgres    float64 `json:"copy_postgres"`
	// Ratio is the indexed COPY's CPU time over the handler's: Ratio's
	// counterpart in CPU.
	Ratio float64 `json:"ratio"`
}

// StatsResult is one stored size.
type StatsResult struct {
	Events           int            `json:"events"`
	OtherTenants     int            `json:"other_tenants"`
	OtherEvents      int            `json:"other_tenant_events"`
	LoadSeconds      float64        `json:"load_seconds"`
	LoadEventsPerS   float64        `json:"load_events_per_s"`
	RollupHourRows   int64          `json:"rollup_hour_rows"`
	RollupMinuteRows int64          `json:"rollup_minute_rows"`
	Windows          []WindowResult `json:"windows"`
	// Activity times first pages of GET /api/activity, unfiltered and
	// with filters that match nothing (the bounded walk).
	Activity []WindowResult `json:"activity,omitempty"`
	// Disk is what the database held after the size's retention run.
	Disk *DiskResult `json:"disk,omitempty"`
	// Retention times the maintenance run that drops one day partition
	// holding RetentionDayEvents of the measured tenant's events, with
	// Events stored in all: dropping a whole partition should cost the
	// same whatever the table holds.
	Retention *RetentionResult `json:"retention,omitempty"`
}

// RetentionResult is one timed maintenance run that dropped a day.
type RetentionResult struct {
	DayEvents    int      `json:"day_events"`
	Dropped      []string `json:"dropped"`
	Created      int      `json:"created"`
	RunMillis    float64  `json:"run_ms"`
	EventsBefore int64    `json:"events_before"`
	EventsAfter  int64    `json:"events_after"`
}

// retentionDayEvents are the events loaded into the day each size's
// retention run drops.
const retentionDayEvents = 100_000

// WindowResult is the latency of one stats request shape.
type WindowResult struct {
	Query        string  `json:"query"`
	Runs         int     `json:"runs"`
	MedianMillis float64 `json:"median_ms"`
	P95Millis    float64 `json:"p95_ms"`
	P99Millis    float64 `json:"p99_ms"`
	MaxMillis    float64 `json:"max_ms"`
}

// Check is one floor.
type Check struct {
	Name     string  `json:"name"`
	Required bool    `json:"required"`
	Limit    float64 `json:"limit"`
	Value    float64 `json:"value"`
	Pass     bool    `json:"pass"`
}

func bench(ctx context.Context, o options) (*Result, error) {
	start := time.Now()
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		admin = testenv.DefaultDatabaseURL
	}
	name, dsn, err := pgtest.CreateDatabase(ctx, admin)
	if err != nil {
		return nil, err
	}
	if o.keep {
		progress("keeping database %s (%s)", name, dsn)
	} else {
		defer func() {
			if err := pgtest.DropDatabase(context.Background(), admin, name); err != nil {
				progress("%v", err)
			}
		}()
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	// The benchmark's own statements (the copy tables, VACUUM, counts and
	// sizes) go through a pool of its own, not through the store.
	raw, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	defer raw.Close()
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: db, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	c := &client{base: srv.URL, http: srv.Client()}

	res := &Result{Database: name}
	if res.Ingest, err = benchIngest(ctx, db, raw, dsn, c, o); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if !o.skipStats {
		if res.Stats, err = benchStats(ctx, db, raw, c, o); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
	}
	res.Checks = checks(res)
	res.WallSeconds = time.Since(start).Seconds()
	return res, nil
}

func checks(res *Result) []Check {
	cs := []Check{
		{Name: "ingest through the handler / raw COPY into an indexed table", Required: true, Limit: requiredIngestRatio, Value: res.Ingest.Ratio},
		{Name: "ingest through the handler / raw COPY into an indexed table", Limit: aimIngestRatio, Value: res.Ingest.Ratio},
	}
	for i := range cs {
		cs[i].Pass = cs[i].Value >= cs[i].Limit
	}
	// The required stats floor holds at 1M; a quick run that stores less
	// is held to it at its largest size at or under 1M.
	req, aim, large := -1, -1, -1
	for i, s := range res.Stats {
		if s.Events <= requiredStatsAt {
			req = i
		}
		if s.Events >= aimStatsAt && aim < 0 {
			aim = i
		}
		if s.Events >= aimStatsLargeAt && large < 0 {
			large = i
		}
	}
	// Where 100M does not fit the disk, the large aim is held at the
	// largest size that did (above 10M), which the check's name shows.
	if large < 0 && len(res.Stats) > 0 && res.Stats[len(res.Stats)-1].Events > aimStatsAt {
		large = len(res.Stats) - 1
	}
	add := func(i int, required bool, limit time.Duration) {
		if i < 0 {
			return
		}
		s := res.Stats[i]
		for _, w := range s.Windows {
			cs = append(cs, Check{
				Name:     fmt.Sprintf("stats median, %s, %s events", w.Query, count(s.Events)),
				Required: required, Limit: millis(limit), Value: w.MedianMillis,
				Pass: w.MedianMillis <= millis(limit),
			})
		}
	}
	add(req, true, requiredStatsMedian)
	add(aim, false, aimStatsMedian)
	add(large, false, aimStatsMedianLarge)
	return cs
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func count(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// client speaks to the API as the CLI does.
type client struct {
	base string
	http *http.Client
}

func (c *client) do(ctx context.Context, method, path, key string, header http.Header, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

var gzipJSON = http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}

// benchIngest posts the same batches through the handler and copies them
// raw, round by round, alternating which goes first.
func benchIngest(ctx context.Context, db *postgres.DB, raw *pgxpool.Pool, dsn string, c *client, o options) (IngestResult, error) {
	tenant, key, err := db.CreateTenant(ctx, "bench-ingest")
	if err != nil {
		return IngestResult{}, err
	}
	// The benchmark times ingest, not the tenant's ingest quota, which a
	// run loads past in seconds: lift it (the quota's own statement still
	// runs for every batch, as in production).
	var noQuota int64
	if _, err := db.UpdateTenant(ctx, backend.Actor{}, tenant.ID, backend.TenantUpdate{IngestEventsPerMinute: &noQuota, IngestEventsPerDay: &noQuota}); err != nil {
		return IngestResult{}, err
	}
	// bench_copy has the columns, defaults, constraints, primary key and
	// indexes of events (INCLUDING ALL), but no row-level security and no
	// rollups: the fastest way to get these rows into a table the product
	// could query, and the reference the floor is held to. bench_heap has
	// the columns only: what moving the bytes alone costs.
	if _, err := raw.Exec(ctx, `CREATE TABLE bench_copy (LIKE events INCLUDING ALL); CREATE TABLE bench_heap (LIKE events)`); err != nil {
		return IngestResult{}, fmt.Errorf("create copy tables: %w", err)
	}
	r := IngestResult{Events: o.ingestEvents, Batch: o.batch, Rounds: o.rounds, Clients: o.clients}
	// The raw COPY gets a pool of its own, as large as the store's, so
	// neither path waits for the other's connections.
	copyPool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return r, fmt.Errorf("copy pool: %w", err)
	}
	defer copyPool.Close()
	tid := uuid.MustParse(tenant.ID)
	gen := newEventGen()
	nBatches := (o.ingestEvents + o.batch - 1) / o.batch
	progress("ingest: %d events in %d batches of %d, %d interleaved rounds", o.ingestEvents, nBatches, o.batch, o.rounds)

	// Each round's batches are made, encoded and turned into COPY rows
	// before the round and dropped after it, so the heap the handler
	// allocates in stays as small as a server's would be.
	type prepared struct {
		bodies [][]byte
		rows   [][][]any
		sizes  []int
	}
	prepare := func(lo, hi int) (prepared, error) {
		var p prepared
		for i := lo; i < hi; i++ {
			n := min(o.batch, o.ingestEvents-i*o.batch)
			b := gen.batch(n)
			body, err := encodeBatch(&b)
			if err != nil {
				return p, err
			}
			raw, err := json.Marshal(&b)
			if err != nil {
				return p, err
			}
			r.GzipBytes += int64(len(body))
			r.JSONBytes += int64(len(raw))
			p.bodies = append(p.bodies, body)
			p.rows = append(p.rows, copyRows(tid, b.Events))
			p.sizes = append(p.sizes, n)
		}
		return p, nil
	}
	// Both paths send a round's batches from o.clients workers at once,
	// batch i going to worker i % o.clients.
	var mu sync.Mutex
	parallel := func(n int, f func(i int) error) (time.Duration, error) {
		t0 := time.Now()
		var g errgroup.Group
		for w := 0; w < o.clients; w++ {
			g.Go(func() error {
				for i := w; i < n; i += o.clients {
					if err := f(i); err != nil {
						return err
					}
				}
				return nil
			})
		}
		err := g.Wait()
		return time.Since(t0), err
	}
	postRound := func(p prepared, lat *[]time.Duration) (time.Duration, error) {
		return parallel(len(p.bodies), func(i int) error {
			t1 := time.Now()
			var ans struct{ Accepted, Duplicates int }
			if err := c.do(ctx, http.MethodPost, "/api/events/batch", key, gzipJSON, p.bodies[i], &ans); err != nil {
				return err
			}
			mu.Lock()
			*lat = append(*lat, time.Since(t1))
			mu.Unlock()
			if ans.Accepted != p.sizes[i] {
				return fmt.Errorf("accepted %d of %d events", ans.Accepted, p.sizes[i])
			}
			return nil
		})
	}
	copyRound := func(table string, p prepared) (time.Duration, error) {
		return parallel(len(p.rows), func(i int) error {
			if _, err := copyPool.CopyFrom(ctx, pgx.Identifier{table}, copyColumns, pgx.CopyFromRows(p.rows[i])); err != nil {
				return fmt.Errorf("raw copy into %s: %w", table, err)
			}
			return nil
		})
	}

	var copyDur, heapDur, httpDur time.Duration
	// CPU time of both paths ([0] this process, [1] the backends).
	var copyCPU, httpCPU [2]time.Duration
	cpuOK := true
	measured := func(acc *[2]time.Duration, f func() error) func() error {
		return func() error {
			p0, b0, ok0 := cpuTimes(ctx, copyPool)
			err := f()
			p1, b1, ok1 := cpuTimes(ctx, copyPool)
			cpuOK = cpuOK && ok0 && ok1
			acc[0] += p1 - p0
			acc[1] += b1 - b0
			return err
		}
	}
	var lat []time.Duration
	var ratios, heapRatios []float64
	r.RoundRatioMin = math.Inf(1)
	for round := 0; round < o.rounds; round++ {
		p, err := prepare(round*nBatches/o.rounds, (round+1)*nBatches/o.rounds)
		if err != nil {
			return r, err
		}
		runtime.GC()
		var cd, xd, hd time.Duration
		paths := []func() error{
			measured(&copyCPU, func() (err error) { cd, err = copyRound("bench_copy", p); return err }),
			func() (err error) { xd, err = copyRound("bench_heap", p); return err },
			measured(&httpCPU, func() (err error) { hd, err = postRound(p, &lat); return err }),
		}
		// Every round starts with a different path and every third
		// round runs them backwards, so over six rounds each path has
		// run first, second and third equally often.
		for k := range 3 {
			j := (round + k) % 3
			if (round/3)%2 == 1 {
				j = (round + 2 - k) % 3
			}
			if err := paths[j](); err != nil {
				return r, err
			}
		}
		copyDur += cd
		heapDur += xd
		httpDur += hd
		ratio, heapRatio := cd.Seconds()/hd.Seconds(), xd.Seconds()/hd.Seconds()
		r.RoundRatioMin, r.RoundRatioMax = min(r.RoundRatioMin, ratio), max(r.RoundRatioMax, ratio)
		ratios, heapRatios = append(ratios, ratio), append(heapRatios, heapRatio)
		progress("ingest round %d/%d: copy indexed %s, copy heap %s, handler %s (%.2f of indexed, %.2f of heap)", round+1, o.rounds,
			cd.Round(time.Millisecond), xd.Round(time.Millisecond), hd.Round(time.Millisecond), ratio, heapRatio)
	}
	r.CopySeconds, r.CopyHeapSeconds, r.HTTPSeconds = copyDur.Seconds(), heapDur.Seconds(), httpDur.Seconds()
	r.CopyEventsPerS = float64(o.ingestEvents) / r.CopySeconds
	r.CopyHeapEventsPerS = float64(o.ingestEvents) / r.CopyHeapSeconds
	r.HTTPEventsPerS = float64(o.ingestEvents) / r.HTTPSeconds
	r.Ratio = r.HTTPEventsPerS / r.CopyEventsPerS
	r.HeapRatio = r.HTTPEventsPerS / r.CopyHeapEventsPerS
	slices.Sort(ratios)
	slices.Sort(heapRatios)
	r.RoundRatioMed = ratios[len(ratios)/2]
	r.HeapRoundRatioMed = heapRatios[len(heapRatios)/2]
	r.BatchP50Millis, r.BatchP95Millis = millis(quantile(lat, 0.5)), millis(quantile(lat, 0.95))
	if cpuOK {
		per := func(d time.Duration) float64 { return millis(d) / float64(nBatches) }
		r.CPU = &IngestCPU{HandlerGo: per(httpCPU[0]), HandlerPostgres: per(httpCPU[1]),
			CopyGo: per(copyCPU[0]), CopyPostgres: per(copyCPU[1]),
			Ratio: (copyCPU[0] + copyCPU[1]).Seconds() / (httpCPU[0] + httpCPU[1]).Seconds()}
		progress("ingest CPU per batch: handler Go %.2f + PostgreSQL %.2f ms, indexed COPY Go %.2f + PostgreSQL %.2f ms (%.2f)",
			r.CPU.HandlerGo, r.CPU.HandlerPostgres, r.CPU.CopyGo, r.CPU.CopyPostgres, r.CPU.Ratio)
	}

	// Everything posted is counted by stats (the rollups live ingest
	// maintains) and stored once in each table.
	var st stats.Stats
	if err := c.do(ctx, http.MethodGet, "/api/stats?since=24h", key, nil, nil, &st); err != nil {
		return r, err
	}
	r.StatsEventsSeen = st.Totals.Events
	if st.Totals.Events != int64(o.ingestEvents) {
		return r, fmt.Errorf("stats after ingest counts %d events, want %d", st.Totals.Events, o.ingestEvents)
	}
	var stored, copied, heaped int64
	if err := raw.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM bench_copy), (SELECT count(*) FROM bench_heap)`).Scan(&stored, &copied, &heaped); err != nil {
		return r, fmt.Errorf("count rows: %w", err)
	}
	if stored != int64(o.ingestEvents) || copied != int64(o.ingestEvents) || heaped != int64(o.ingestEvents) {
		return r, fmt.Errorf("stored %d events and copied %d and %d rows, want %d each", stored, copied, heaped, o.ingestEvents)
	}
	if _, err := raw.Exec(ctx, `DROP TABLE bench_copy, bench_heap`); err != nil {
		return r, fmt.Errorf("drop copy tables: %w", err)
	}
	return r, nil
}

// encodeBatch gzips b as the CLI's apiclient.EncodeBatch does.
func encodeBatch(b *event.Batch) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(b); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// quantile is the nearest-rank quantile of d.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

var (
	servers = []string{"filesystem", "github", "postgres", "browser", "slack"}
	tools   = []string{"read_file", "write_file", "list_directory", "search_files", "create_issue", "get_pull_request",
		"query", "describe_table", "navigate", "screenshot", "send_message", "list_channels"}
	// methods weights tools/call as the bulk of real traffic.
	methods = []string{"tools/call", "tools/call", "tools/call", "tools/call", "tools/call", "tools/call",
		"tools/call", "tools/call", "tools/call", "tools/call", "tools/call", "tools/call",
		"resources/read", "resources/read", "resources/read", "tools/list", "tools/list", "prompts/get",
		"notifications/progress", "resources/list"}
)

// eventGen makes batches like the monitor ships: request/reply pairs from
// a few sessions, payloads of a few hundred bytes, risk, cost, token
// estimates, and UUIDv7 ids.
type eventGen struct {
	r        *rand.Rand
	now      time.Time
	sessions []string
	i        int
}

func newEventGen() *eventGen {
	g := &eventGen{r: rand.New(rand.NewPCG(1, 2)), now: time.Now().UTC().Add(-time.Hour), sessions: make([]string, 20)}
	for i := range g.sessions {
		g.sessions[i] = uuid.Must(uuid.NewV7()).String()
	}
	return g
}

func (g *eventGen) batch(n int) event.Batch {
	r := g.r
	events := make([]event.Event, 0, n)
	for ; len(events) < n; g.i++ {
		i := g.i
		p := i / 2
		m := methods[(p*7)%len(methods)]
		e := event.Event{
			ID: uuid.Must(uuid.NewV7()).String(), SessionID: g.sessions[p%len(g.sessions)], Seq: int64(i),
			TS: g.now.Add(time.Duration(i) * time.Millisecond), Direction: event.ClientToServer, Kind: event.KindRequest,
			Server: servers[p%len(servers)], RPCID: strconv.Itoa(p), Method: m, Size: int64(200 + r.IntN(800)),
		}
		if strings.HasPrefix(m, "notifications/") {
			e.Kind, e.RPCID = event.KindNotification, ""
		}
		if m == "tools/call" {
			e.Tool = tools[r.IntN(len(tools))]
		}
		var payload any = map[string]any{"jsonrpc": "2.0", "id": p, "method": m,
			"params": map[string]any{"name": e.Tool, "arguments": map[string]any{"path": "/home/dev/project/src/main.go", "n": i}}}
		if i%2 == 1 && e.Kind != event.KindNotification {
			e.Direction, e.Kind = event.ServerToClient, event.KindResponse
			l := math.Round(40*math.Exp(r.NormFloat64())*1000) / 1000
			e.LatencyMS = &l
			if m == "tools/call" {
				f := r.IntN(20) == 0
				e.IsError = &f
			}
			payload = map[string]any{"jsonrpc": "2.0", "id": p, "result": map[string]any{
				"content": []any{map[string]any{"type": "text", "text": "package main\n\nfunc main() {}\n"}}}}
		}
		score := r.IntN(100)
		e.Risk = &event.Risk{Score: score, Level: event.LevelLow}
		switch {
		case score >= 70:
			e.Risk.Level, e.Risk.Reasons = event.LevelHigh, []string{"sensitive_path"}
		case score >= 40:
			e.Risk.Level, e.Risk.Reasons = event.LevelMedium, []string{"tool_call"}
		}
		e.CostUSD = float64(e.Size) / 1024 * 0.001
		e.Tokens = e.Size / 4
		e.Payload, _ = json.Marshal(payload)
		events = append(events, e)
	}
	return event.Batch{Events: events}
}

var copyColumns = []string{"tenant_id", "id", "session_id", "seq", "ts", "direction", "kind", "server", "rpc_id", "method", "tool",
	"latency_ms", "latency_bucket", "error_code", "is_error", "failed", "size", "risk_score", "risk_level",
	"risk_rank", "risk_reasons", "cost_usd", "tokens", "payload", "payload_truncated",
	"error_message", "prompt", "resource_uri", "retry"}

// copyRows is the row the store writes for each event, ready for COPY, so
// both paths move the same values.
func copyRows(tenant uuid.UUID, events []event.Event) [][]any {
	rows := make([][]any, len(events))
	for i := range events {
		e := &events[i]
		var bucket *int32
		if ms, ok := stats.LatencyOf(e); ok {
			b := int32(stats.Bucket(ms))
			bucket = &b
		}
		score, level := int32(e.Risk.Score), string(e.Risk.Level)
		rows[i] = []any{[16]byte(tenant), [16]byte(uuid.MustParse(e.ID)), [16]byte(uuid.MustParse(e.SessionID)), e.Seq, e.TS,
			string(e.Direction), string(e.Kind), e.Server, e.RPCID, e.Method, e.Tool, e.LatencyMS, bucket,
			(*int64)(nil), e.IsError, e.Failed(), e.Size, &score, &level, int16(activity.LevelRank(e.RiskLevel())),
			e.Risk.Reasons, e.CostUSD, e.Tokens, []byte(e.Payload), e.PayloadTruncated,
			e.ErrorMessage, e.Prompt, e.ResourceURI, e.Retry}
	}
	return rows
}

// genBatch is the number of events generated and stored per Ingest call:
// the largest batch the API takes.
const genBatch = backend.MaxBatchEvents

// generate stores n more events (numbered from offset) for tenant, spread
// evenly over [start, end), through the store's Ingest, the path every
// shipped batch takes, in batches of genBatch: events, indexes and rollups
// are built exactly as live ingest builds them. Events come in
// request/reply pairs of 20 methods, 12 tools and 5 servers, in sessions of
// 2,500 pairs; tools/list is scored only in a session's first 50 pairs, so
// a session holds a few scored tools/list events, as the ones stats reads
// for tool alerts are in use (scoring most of them, 6% of all events, made
// each stats answer read its bound of 10,000). Ids are UUIDv7-shaped (time
// first), as the CLI makes them; salt keeps tenants' sessions apart.
func generate(ctx context.Context, db *postgres.DB, tenant string, salt, offset, n, loaders int, start, end time.Time) error {
	r := rand.New(rand.NewPCG(uint64(offset), uint64(salt)))
	var lat [4096]float64
	for i := range lat {
		// Log-normal around 40 ms: most calls are quick, a long tail is not.
		lat[i] = math.Round(40*math.Exp(r.NormFloat64())*1000) / 1000
	}
	g := scaleGen{salt: strconv.Itoa(salt), offset: offset, n: n, start: start, span: end.Sub(start), lat: &lat}
	t0 := time.Now()
	batches := (n + genBatch - 1) / genBatch
	var stored atomic.Int64
	var eg errgroup.Group
	// Each loader takes a contiguous stretch of batches, so loaders work on
	// different hours and do not queue on each other's rollup rows.
	for w := range loaders {
		first, last := w*batches/loaders, (w+1)*batches/loaders
		eg.Go(func() error {
			events := make([]event.Event, 0, genBatch)
			for c := first; c < last; c++ {
				lo := offset + c*genBatch
				hi := min(lo+genBatch, offset+n)
				events = events[:0]
				for i := lo; i < hi; i++ {
					events = append(events, g.event(i))
				}
				res, err := db.Ingest(ctx, tenant, event.Batch{Events: events})
				if err != nil {
					return fmt.Errorf("generate events %d-%d: %w", lo, hi, err)
				}
				if res.Accepted != hi-lo {
					return fmt.Errorf("generate events %d-%d: stored %d", lo, hi, res.Accepted)
				}
				if done := stored.Add(int64(res.Accepted)); done/(10*genBatch) != (done-int64(res.Accepted))/(10*genBatch) || done == int64(n) {
					progress("  %d/%d events stored (%.0f/s)", done, n, float64(done)/time.Since(t0).Seconds())
				}
			}
			return nil
		})
	}
	return eg.Wait()
}

// scaleGen makes the events of one generate call; event(i) depends on i
// alone, so loaders make their stretches independently.
type scaleGen struct {
	salt      string
	offset, n int
	start     time.Time
	span      time.Duration
	lat       *[4096]float64
}

// event is the i-th event: the pair p = i/2, its request at even i and
// its reply (or a second notification) at odd i.
func (g *scaleGen) event(i int) event.Event {
	p := i / 2
	m := methods[(p*7)%len(methods)]
	ts := g.start.Add(time.Duration(float64(i-g.offset) / float64(g.n) * float64(g.span)).Truncate(time.Microsecond))
	h := md5.Sum([]byte(g.salt + strconv.Itoa(i)))
	// UUIDv7 layout: 48 bits of milliseconds, version 7, variant 8.
	var id uuid.UUID
	ms := uint64(ts.UnixMilli())
	for b := range 6 {
		id[b] = byte(ms >> (40 - 8*b))
	}
	id[6], id[7] = 0x70|h[0]>>4, h[0]<<4|h[1]>>4
	id[8] = 0x80 | h[1]&0x0f
	copy(id[9:], h[2:9])
	size := int64(200 + (p*17)%3000)
	score := (p * 37) % 100
	if m == "tools/list" && p%2500 >= 50 {
		score = 0
	}
	e := event.Event{
		ID: id.String(), SessionID: uuid.UUID(md5.Sum([]byte(g.salt + "s" + strconv.Itoa(p/2500)))).String(),
		Seq: int64(i), TS: ts, Direction: event.ClientToServer, Kind: event.KindRequest,
		Server: servers[p%len(servers)], RPCID: strconv.Itoa(p), Method: m,
		Size: size, CostUSD: float64(size) / 1024 * 0.001, Tokens: size / 4,
		Risk: &event.Risk{Score: score, Level: event.LevelLow},
	}
	switch {
	case score >= 70:
		e.Risk.Level = event.LevelHigh
	case score >= 40:
		e.Risk.Level = event.LevelMedium
	}
	if m == "tools/list" && score >= 40 {
		// A scored definition names the tool it found poisoned or changed,
		// for riskiest_tools.
		e.Risk.Reasons = []string{[]string{analysis.ReasonToolPoisoning, analysis.ReasonDefinitionChanged}[p%2] + tools[(p*7)%len(tools)]}
	}
	if m == "tools/call" {
		e.Tool = tools[(p*13)%len(tools)]
	}
	switch {
	case strings.HasPrefix(m, "notifications/"):
		e.Kind, e.RPCID = event.KindNotification, ""
	case i%2 == 1:
		e.Direction, e.Kind = event.ServerToClient, event.KindResponse
		l := g.lat[(p*31)%len(g.lat)]
		e.LatencyMS = &l
		if p%50 == 0 {
			code := -32603
			e.Kind, e.ErrorCode = event.KindError, &code
		} else if m == "tools/call" {
			failed := p%23 == 0
			e.IsError = &failed
		}
	}
	return e
}

func printTables(w io.Writer, r *Result) {
	in := r.Ingest
	fmt.Fprintf(w, "## Ingest: %d events, batches of %d (gzip JSON, %.1f MB on the wire, %.1f MB inflated), %d interleaved rounds\n\n",
		in.Events, in.Batch, float64(in.GzipBytes)/1e6, float64(in.JSONBytes)/1e6, in.Rounds)
	fmt.Fprintln(w, "Reference: raw COPY of the same rows, in the same batches, into a table made with (LIKE events INCLUDING ALL):")
	fmt.Fprintln(w, "the primary key and indexes the product needs, no row-level security, no rollups. The floor applies to it.")
	fmt.Fprintln(w, "COPY into a heap of the same columns with no index is shown for information.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | events/s | time | handler / path |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| raw COPY into an indexed table (reference) | %.0f | %.2f s | %.2f |\n", in.CopyEventsPerS, in.CopySeconds, in.Ratio)
	fmt.Fprintf(w, "| raw COPY into an index-less heap (information) | %.0f | %.2f s | %.2f |\n", in.CopyHeapEventsPerS, in.CopyHeapSeconds, in.HeapRatio)
	fmt.Fprintf(w, "| POST /api/events/batch (handler over loopback, store, rollups) | %.0f | %.2f s | |\n", in.HTTPEventsPerS, in.HTTPSeconds)
	fmt.Fprintf(w, "\nhandler / indexed COPY: %.2f (rounds %.2f-%.2f, median round %.2f); handler / heap COPY: %.2f (median round %.2f)\n",
		in.Ratio, in.RoundRatioMin, in.RoundRatioMax, in.RoundRatioMed, in.HeapRatio, in.HeapRoundRatioMed)
	fmt.Fprintf(w, "one batch through the handler: p50 %.1f ms, p95 %.1f ms\n", in.BatchP50Millis, in.BatchP95Millis)
	if c := in.CPU; c != nil {
		fmt.Fprintf(w, "CPU per batch: handler %.2f ms (Go %.2f, PostgreSQL %.2f); indexed COPY %.2f ms (Go %.2f, PostgreSQL %.2f); indexed COPY / handler in CPU: %.2f (information)\n",
			c.HandlerGo+c.HandlerPostgres, c.HandlerGo, c.HandlerPostgres, c.CopyGo+c.CopyPostgres, c.CopyGo, c.CopyPostgres, c.Ratio)
	}

	if len(r.Stats) > 0 {
		fmt.Fprintf(w, "\n## GET /api/stats through the handler (all stored events in the window; other tenants' events beside them)\n\n")
		fmt.Fprintln(w, "| events stored | other tenants (events) | load time | load events/s | rollup_hour rows | rollup_minute rows | query | median | p95 | p99 |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
		for _, s := range r.Stats {
			for _, q := range s.Windows {
				fmt.Fprintf(w, "| %d | %d (%d) | %.0f s | %.0f | %d | %d | %s | %.1f ms | %.1f ms | %.1f ms |\n",
					s.Events, s.OtherTenants, s.OtherEvents, s.LoadSeconds, s.LoadEventsPerS, s.RollupHourRows, s.RollupMinuteRows,
					q.Query, q.MedianMillis, q.P95Millis, q.P99Millis)
			}
		}
		fmt.Fprintf(w, "\n## GET /api/activity, first page (filters walk at most %d events)\n\n", activity.MaxScanRows)
		fmt.Fprintln(w, "| events stored | query | median | p95 | p99 |")
		fmt.Fprintln(w, "|---:|---|---:|---:|---:|")
		for _, s := range r.Stats {
			for _, q := range s.Activity {
				fmt.Fprintf(w, "| %d | %s | %.1f ms | %.1f ms | %.1f ms |\n", s.Events, q.Query, q.MedianMillis, q.P95Millis, q.P99Millis)
			}
		}
		fmt.Fprintf(w, "\n## Retention: a maintenance run dropping one day partition of %d events\n\n", retentionDayEvents)
		fmt.Fprintln(w, "| events stored | run | partitions dropped | created |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|")
		for _, s := range r.Stats {
			if rr := s.Retention; rr != nil {
				fmt.Fprintf(w, "| %d | %.1f ms | %d | %d |\n", rr.EventsBefore, rr.RunMillis, len(rr.Dropped), rr.Created)
			}
		}
		fmt.Fprintln(w, "\n## Disk after each size (all tenants' events, the events indexes, the rollups)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| events stored | events | events indexes | rollups and sessions | database | bytes per event |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|")
		for _, s := range r.Stats {
			if d := s.Disk; d != nil {
				fmt.Fprintf(w, "| %d | %.2f GB | %.2f GB | %.2f GB | %.2f GB | %.0f |\n", d.StoredEvents, gb(d.EventsBytes), gb(d.EventIndexBytes),
					gb(d.RollupBytes), gb(d.DatabaseBytes), d.BytesPerEvent)
			}
		}
	}
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		verdict := map[bool]string{true: "PASS", false: "FAIL"}[c.Pass]
		kind, op := "required", ">="
		if !c.Required {
			kind = "aim"
			verdict = map[bool]string{true: "MET", false: "MISSED"}[c.Pass]
		}
		if strings.HasPrefix(c.Name, "stats") {
			op = "<="
		}
		fmt.Fprintf(w, "%-6s %-8s %s: %.2f (%s %.2f)\n", verdict, kind, c.Name, c.Value, op, c.Limit)
	}
	fmt.Fprintf(w, "\nwall time %.0f s\n", r.WallSeconds)
}
