// Command monitor is the monitor half of `make bench`. In one run, side by
// side, it measures the round trip of a tools/call request through:
//
//   - direct:  the client talking to an echo MCP-like server over a pipe;
//   - copy:    a bare two-way byte copy in front of that server (the floor
//     any wrapper pays: two io.CopyBuffer goroutines, reading 64 KiB);
//   - splice:  the same copy done with splice(2), never through user space
//     (the physical limit, for comparison);
//   - monitor: `kilometers monitor --` in front of it, recording to a fresh
//     KILOMETERS_HOME;
//   - ship:    the same with shipping on, to a real functions/local over
//     PostgreSQL (a throwaway database on the server of DATABASE_URL).
//
// for results of 256 B, 1 MiB and 16 MiB of plain text, and 1 MiB of JSON
// rows as structured content (reported, not held: the costliest result per
// byte for the monitor's scanner), by two methods. Interleaved: the
// variants run at the same time and take turns one round trip each (the
// order rotating every round, and for large results each round trip
// starting once every process is at rest), so whatever else the machine
// does hits them all alike. Whole runs: each variant alone for a block of
// back-to-back round trips, blocks rotating, so work a wrapper defers past
// an answer is charged to its own next round trip.
//
// For each wrapper it prints the added latency over the direct pipe at p50
// and p99 (percentiles of the pairwise differences between a wrapper's
// round trip and the direct pipe's in the same round or block rotation),
// that as a multiple of the bare copy's added latency (the figure the
// monitor is held to, by both methods), the added latency per MiB of
// result, and the wrapper process's peak RSS (VmHWM) after the small run's
// 10,000+ round trips. It exits 1 when a required floor is missed, 2 when
// the run itself fails. The echo server, the bare copy and functions/local
// are built with `go build` unless given, so run it from the repository
// root:
//
//	DATABASE_URL=postgres://... go run ./infra/bench/monitor -kilometers bin/kilometers
//	go run ./infra/bench/monitor -quick -shipping=false   # a smoke run in seconds, no database
//
// `make bench` (infra/local/bench.sh) runs it with a release-shaped build
// of the CLI; docs/performance.md explains every figure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Required floors (docs/performance.md); shipping on stays within them too.
const (
	maxRatio  = 1.5
	aimRatio  = 1.1
	maxPeakKB = 12 << 10
	aimPeakKB = 8 << 10
	rssAfter  = 10_000 // messages before the RSS figure counts
)

type options struct {
	kilometers  string
	apiServer   string
	echoServer  string
	bareCopy    string
	databaseURL string
	shipping    bool
	jsonOut     bool
	keepHomes   bool
	monitorEnv  []string
	splice      bool
	tee         bool
	sizes       []phaseSpec
	long        int // messages of the long session; 0 skips it
}

// phaseSpec is one result size and how many round trips measure it, by
// each method: Rounds of Per round trips per variant taking turns
// (interleaved), then Blocks of BlockTrips round trips per variant, each
// variant alone on the machine for its block (whole runs).
type phaseSpec struct {
	Name string `json:"name"`
	Size int    `json:"result_bytes"`
	// Shape is the echo server's result shape (text when empty).
	Shape      string `json:"shape,omitempty"`
	Warmup     int    `json:"warmup"`
	Rounds     int    `json:"rounds"`
	Per        int    `json:"per_round"`
	Blocks     int    `json:"blocks"`
	BlockTrips int    `json:"block_trips"`
	// RSSFloor marks the phase whose peak RSS is held to the floor.
	RSSFloor bool `json:"rss_floor"`
	// Settle makes every interleaved round trip wait until all variants'
	// processes are at rest (see settle).
	Settle bool `json:"settle"`
	// Held marks the phases whose added latency is held to the floor;
	// the others are reported.
	Held bool `json:"held"`
}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	flag.StringVar(&o.kilometers, "kilometers", "bin/kilometers", "the built kilometers binary")
	flag.StringVar(&o.apiServer, "api-server", "", "the built functions/local binary for the shipping variant (default: build it)")
	flag.StringVar(&o.echoServer, "echo-server", "", "the built infra/bench/echoserver binary (default: build it)")
	flag.StringVar(&o.bareCopy, "bare-copy", "", "the built infra/bench/barecopy binary (default: build it)")
	flag.BoolVar(&o.shipping, "shipping", true, "also measure the monitor with shipping on (needs DATABASE_URL and -api-server)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the results as one JSON document instead of tables")
	flag.BoolVar(&o.keepHomes, "keep", false, "keep the monitors' KILOMETERS_HOME directories")
	flag.Func("monitor-env", "`KEY=VALUE` added to the monitors' environment, for experiments such as GOMAXPROCS=1 (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=VALUE")
		}
		o.monitorEnv = append(o.monitorEnv, v)
		return nil
	})
	quick := flag.Bool("quick", false, "a smoke run: few round trips; the figures are not meaningful")
	// One round trip per variant per round by default: the finest
	// interleaving, so a burst of load elsewhere lands on every variant.
	smallRounds := flag.Int("small-rounds", 10_000, "rounds of the 256 B run")
	smallPer := flag.Int("small-per", 1, "round trips per variant per round in the 256 B run")
	largeRounds := flag.Int("large-rounds", 1000, "rounds of the 1 MiB run (its p99 is the tenth-worst round trip: fewer rounds make it one outlier's)")
	largePer := flag.Int("large-per", 1, "round trips per variant per round in the 1 MiB run")
	hugeRounds := flag.Int("huge-rounds", 30, "rounds of the 16 MiB run")
	rowsRounds := flag.Int("rows-rounds", 300, "rounds of the 1 MiB rows run: structured content of JSON rows, the costliest result to scan per byte (0 skips it)")
	settleLarge := flag.Bool("settle", true, "start each interleaved round trip of the large results once every process is at rest (false: as fast as they come, for comparison)")
	flag.BoolVar(&o.splice, "splice", true, "also measure the splice copy (the bare copy must understand -splice)")
	flag.BoolVar(&o.tee, "tee", false, "also measure the tee copy: the splice copy plus a tee(2) into a pipe drained in user space, what a zero-copy relay with a capture costs")
	blocks := flag.Int("blocks", 10, "whole-run blocks per variant in each run (0: interleaved rounds only)")
	flag.IntVar(&o.long, "long-messages", 200_000, "messages of the long-session run (0 skips it)")
	flag.Parse()
	if *quick {
		*smallRounds, *largeRounds, *hugeRounds, *rowsRounds = 300, 12, 3, min(*rowsRounds, 12)
		o.long = min(o.long, 2_000)
	}
	if *smallRounds < 1 || *smallPer < 1 || *largeRounds < 1 || *largePer < 1 || *hugeRounds < 0 || *rowsRounds < 0 || *blocks < 0 || flag.NArg() > 0 {
		return fail(errors.New("need rounds >= 1 (16 MiB: >= 0), round trips per round >= 1, blocks >= 0, and no arguments"))
	}
	// Each whole-run block takes as many round trips as a tenth of the
	// interleaved rounds, so both methods rest on the same count.
	perBlock := func(rounds int) int { return max(1, rounds/10) }
	// The 256 B whole runs take half as many: the noise there is small,
	// and the interleaved rounds already make the RSS figure's messages.
	smallBlock := max(1, perBlock(*smallRounds)/2)
	o.sizes = []phaseSpec{
		{Name: "256 B", Size: 256, Warmup: 200, Rounds: *smallRounds, Per: *smallPer, Blocks: *blocks, BlockTrips: smallBlock, RSSFloor: true, Held: true},
		{Name: "1 MiB", Size: 1 << 20, Warmup: 5, Rounds: *largeRounds, Per: *largePer, Blocks: *blocks, BlockTrips: perBlock(*largeRounds), Settle: *settleLarge, Held: true},
	}
	if *rowsRounds > 0 {
		o.sizes = append(o.sizes, phaseSpec{Name: "1 MiB rows", Size: 1 << 20, Shape: "rows", Warmup: 5, Rounds: *rowsRounds, Per: 1, Blocks: *blocks, BlockTrips: perBlock(*rowsRounds), Settle: *settleLarge})
	}
	if *hugeRounds > 0 {
		o.sizes = append(o.sizes, phaseSpec{Name: "16 MiB", Size: 16 << 20, Warmup: 2, Rounds: *hugeRounds, Per: 1, Blocks: *blocks, BlockTrips: perBlock(*hugeRounds), Settle: *settleLarge})
	}
	if *quick {
		o.sizes[0].Warmup, o.sizes[1].Warmup = 20, 1
		for i := range o.sizes {
			o.sizes[i].Blocks = min(o.sizes[i].Blocks, 2)
		}
	}
	o.databaseURL = os.Getenv("DATABASE_URL")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench(ctx, o)
	if err != nil {
		return fail(err)
	}
	res.Quick = *quick
	res.judge()
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fail(err)
		}
	} else {
		res.print(os.Stdout)
	}
	if !res.Pass {
		return 1
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "bench monitor:", err)
	return 2
}

// variant is one way of reaching the echo server.
type variant struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	argv  func(server []string) []string
	env   []string
	home  string
	// wrapper is false for the direct pipe: it has no process of its own
	// to measure.
	wrapper bool
	monitor bool
}

// Results is the whole run.
type Results struct {
	Quick    bool          `json:"quick"`
	CPUs     int           `json:"cpus"`
	Variants []string      `json:"variants"`
	Phases   []phaseResult `json:"phases"`
	// Recorded is, per monitor variant, the events its local store holds
	// against the messages that crossed it.
	Recorded map[string]eventCount `json:"recorded"`
	// Shipped is what the API stored from the shipping monitor when it
	// exited, against the messages that crossed it.
	Shipped *eventCount `json:"shipped,omitempty"`
	Long    *longResult `json:"long_session,omitempty"`
	Checks  []check     `json:"checks"`
	Pass    bool        `json:"pass"`
}

type eventCount struct {
	Events   int64  `json:"events"`
	Expected int64  `json:"expected"`
	Note     string `json:"note,omitempty"`
}

type phaseResult struct {
	Spec    phaseSpec             `json:"spec"`
	Results map[string]*varResult `json:"results"`
	// Steal is the share of the machine's CPU time that its hypervisor
	// took while the phase measured (nil where /proc/stat has none).
	Steal *float64 `json:"steal_share,omitempty"`
}

type varResult struct {
	// The interleaved rounds' figures.
	methodResult
	// Whole is the same figures from the whole-run blocks (nil when none
	// ran).
	Whole  *methodResult `json:"whole_runs,omitempty"`
	PeakKB int64         `json:"peak_rss_kib,omitempty"`
	// CPUPerTrip is the wrapper process's own CPU time (all its threads,
	// not its children) per measured round trip, both methods together,
	// including what it did after the last answer. Load elsewhere hardly
	// moves it, so it is the steadiest before/after figure.
	CPUPerTrip time.Duration `json:"cpu_per_trip_ns,omitempty"`
	RSS        *rssSplit     `json:"rss_at_end,omitempty"`
	Messages   int           `json:"messages"`
	Exit       time.Duration `json:"exit_ns,omitempty"`
	// Shippers are the background shipper processes a monitor with
	// shipping on launched during the run.
	Shippers *childStats `json:"shippers,omitempty"`
	Stderr   string      `json:"stderr,omitempty"`
}

// methodResult is what one method measured of one variant.
type methodResult struct {
	RoundTrip summary `json:"round_trip"`
	// Added latency over the direct pipe, and as a multiple of the bare
	// copy's (only for wrappers; nil ratios when not measurable).
	AddedP50 time.Duration `json:"added_p50_ns"`
	AddedP99 time.Duration `json:"added_p99_ns"`
	RatioP50 *float64      `json:"added_ratio_p50,omitempty"`
	RatioP99 *float64      `json:"added_ratio_p99,omitempty"`
}

// measure fills in added latency against the direct pipe's samples and its
// ratio to the bare copy's.
func measure(samples, direct, bare []time.Duration) methodResult {
	m := methodResult{RoundTrip: summarize(samples)}
	a := summarize(pairedAdded(samples, direct))
	b := summarize(pairedAdded(bare, direct))
	m.AddedP50, m.AddedP99 = a.P50, a.P99
	if r, ok := addedRatio(a.P50, b.P50); ok {
		m.RatioP50 = &r
	}
	if r, ok := addedRatio(a.P99, b.P99); ok {
		m.RatioP99 = &r
	}
	return m
}

type check struct {
	What  string `json:"what"`
	Value string `json:"value"`
	Floor string `json:"floor"`
	Pass  bool   `json:"pass"`
	Aim   bool   `json:"aim_met"`
	// Unmeasured is set when noise hid the figure (see judge).
	Unmeasured bool `json:"unmeasured,omitempty"`
	// Reported marks a figure printed against the floor but not held to
	// it: a miss does not fail the run.
	Reported bool `json:"reported,omitempty"`
}

func bench(ctx context.Context, o options) (*Results, error) {
	km, err := filepath.Abs(o.kilometers)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(km); err != nil {
		return nil, fmt.Errorf("kilometers binary: %w (run `make build`)", err)
	}
	if o.shipping && o.databaseURL == "" {
		return nil, errors.New("DATABASE_URL is not set: the shipping variant needs PostgreSQL (or pass -shipping=false)")
	}
	tools, err := os.MkdirTemp("", "km-bench-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tools)
	echo, err := binary(ctx, o.echoServer, tools, "./infra/bench/echoserver")
	if err != nil {
		return nil, err
	}
	bare, err := binary(ctx, o.bareCopy, tools, "./infra/bench/barecopy")
	if err != nil {
		return nil, err
	}
	baseEnv := withoutKilometersEnv(os.Environ())
	var shipAPI *backend
	variants := []*variant{
		{Name: "direct", Label: "direct pipe", argv: func(s []string) []string { return s }, env: baseEnv},
		{Name: "copy", Label: "bare copy", argv: func(s []string) []string { return append([]string{bare}, s...) }, env: baseEnv, wrapper: true},
		{Name: "monitor", Label: "kilometers monitor", argv: func(s []string) []string { return append([]string{km, "monitor", "--"}, s...) }, wrapper: true, monitor: true},
	}
	if o.splice {
		splice := &variant{Name: "splice", Label: "splice copy", argv: func(s []string) []string { return append([]string{bare, "-splice"}, s...) }, env: baseEnv, wrapper: true}
		variants = slices.Insert(variants, 2, splice)
	}
	if o.tee {
		tee := &variant{Name: "tee", Label: "tee copy", argv: func(s []string) []string { return append([]string{bare, "-tee"}, s...) }, env: baseEnv, wrapper: true}
		variants = slices.Insert(variants, 2, tee)
	}
	if o.shipping {
		api, err := binary(ctx, o.apiServer, tools, "./functions/local")
		if err != nil {
			return nil, err
		}
		be, err := startBackend(ctx, api, o.databaseURL)
		if err != nil {
			return nil, err
		}
		defer func() {
			if cerr := be.Close(); cerr != nil {
				fmt.Fprintln(os.Stderr, "bench monitor:", cerr)
			}
		}()
		ship := &variant{Name: "ship", Label: "monitor + shipping", argv: variants[len(variants)-1].argv, wrapper: true, monitor: true,
			env: []string{"KILOMETERS_API_URL=" + be.URL, "KILOMETERS_API_KEY=" + be.APIKey}}
		variants = append(variants, ship)
		shipAPI = be
	}
	for _, v := range variants {
		if !v.monitor {
			continue
		}
		if v.home, err = os.MkdirTemp("", "km-bench-"+v.Name+"-"); err != nil {
			return nil, err
		}
		if !o.keepHomes {
			defer os.RemoveAll(v.home)
		}
		v.env = append(append(append(slices.Clone(baseEnv), "KILOMETERS_HOME="+v.home), v.env...), o.monitorEnv...)
	}

	res := &Results{CPUs: runtime.NumCPU(), Recorded: map[string]eventCount{}}
	for _, v := range variants {
		res.Variants = append(res.Variants, v.Name)
	}
	trips := map[string]int{}
	for _, spec := range o.sizes {
		pr, err := runPhase(ctx, echo, spec, variants, trips)
		if err != nil {
			return nil, err
		}
		res.Phases = append(res.Phases, *pr)
	}
	if o.long > 0 {
		if res.Long, err = runLong(ctx, km, echo, baseEnv, o.monitorEnv, o.keepHomes, o.long); err != nil {
			return nil, err
		}
	}
	for _, v := range variants {
		if !v.monitor {
			continue
		}
		want := int64(2*trips[v.Name] + len(o.sizes)) // requests, answers and one initialized notification per phase
		n, err := localEvents(ctx, km, v.env)
		if err != nil {
			return nil, err
		}
		res.Recorded[v.Name] = eventCount{Events: n, Expected: want}
		if v.Name == "ship" && shipAPI != nil {
			n, err := shipAPI.storedEvents(ctx)
			if err != nil {
				return nil, fmt.Errorf("read the API's stats: %w", err)
			}
			res.Shipped = &eventCount{Events: n, Expected: want, Note: "stored by the API once the monitors and their background shippers had exited; the rest waits in the spool for the next run or `kilometers sync`"}
		}
	}
	return res, nil
}

// runPhase starts every variant on a fresh echo server, warms them up, then
// takes rounds of round trips, rotating which variant goes first.
func runPhase(ctx context.Context, echo string, spec phaseSpec, variants []*variant, trips map[string]int) (*phaseResult, error) {
	server := []string{echo, fmt.Sprint(spec.Size)}
	if spec.Shape != "" {
		server = append(server, spec.Shape)
	}
	procs := make([]*proc, len(variants))
	trackers := make([]*childTracker, len(variants))
	defer func() {
		for _, p := range procs {
			if p != nil && p.cmd.ProcessState == nil {
				p.kill()
			}
		}
	}()
	for i, v := range variants {
		p, err := startProc(ctx, v.Label, v.argv(server), v.env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		procs[i] = p
		if v.monitor {
			trackers[i] = trackChildren(p.cmd.Process.Pid)
		}
	}
	for i := 0; i < spec.Warmup; i++ {
		for _, p := range procs {
			if _, err := p.roundTrip(spec.Size); err != nil {
				return nil, err
			}
		}
	}
	samples := make([][]time.Duration, len(procs))
	pids := make([]int, len(procs))
	cpu0 := make([]int64, len(procs))
	for i, p := range procs {
		pids[i] = p.cmd.Process.Pid
	}
	if err := settle(ctx, pids); err != nil {
		return nil, err
	}
	for i, pid := range pids {
		cpu0[i], _ = taskCPU(pid)
	}
	machine0, haveMachine := readCPUTimes()
	trip := func(i int, into [][]time.Duration) error {
		d, err := procs[i].roundTrip(spec.Size)
		into[i] = append(into[i], d)
		return err
	}
	for r := 0; r < spec.Rounds; r++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for k := range procs {
			i := (r + k) % len(procs)
			for j := 0; j < spec.Per; j++ {
				if spec.Settle {
					if err := settle(ctx, pids); err != nil {
						return nil, err
					}
				}
				if err := trip(i, samples); err != nil {
					return nil, err
				}
			}
		}
	}
	// Whole runs: each variant alone for a block of back-to-back round
	// trips, so work a wrapper leaves for after an answer (the monitor's
	// recording) lands on its own next round trip, not on whichever
	// variant the rotation runs next. The order rotates every block, and a
	// pause before each block lets the previous one's leftovers finish.
	whole := make([][]time.Duration, len(procs))
	for b := 0; b < spec.Blocks; b++ {
		for k := range procs {
			i := (b + k) % len(procs)
			if err := pause(ctx, blockPause); err != nil {
				return nil, err
			}
			for j := 0; j < spec.BlockTrips; j++ {
				if err := trip(i, whole); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := settle(ctx, pids); err != nil {
		return nil, err
	}
	cpu := make([]time.Duration, len(procs))
	for i, pid := range pids {
		ns, _ := taskCPU(pid)
		cpu[i] = time.Duration(ns-cpu0[i]) / time.Duration(max(1, len(samples[i])+len(whole[i])))
	}
	pr := &phaseResult{Spec: spec, Results: map[string]*varResult{}}
	if machine1, ok := readCPUTimes(); ok && haveMachine {
		share := stealShare(machine0, machine1)
		pr.Steal = &share
	}
	for i, v := range variants {
		vr := &varResult{methodResult: methodResult{RoundTrip: summarize(samples[i])}, Messages: 2*procs[i].trips + 1}
		if spec.Blocks > 0 {
			vr.Whole = &methodResult{RoundTrip: summarize(whole[i])}
		}
		trips[v.Name] += procs[i].trips
		split := rssNow(procs[i].cmd.Process.Pid)
		peak, exit, err := procs[i].finish(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		if v.wrapper {
			vr.PeakKB, vr.Exit, vr.RSS, vr.CPUPerTrip = peak, exit, &split, cpu[i]
		}
		if trackers[i] != nil {
			// The last shipper runs on after the monitor exits.
			if st := trackers[i].finish(v.home, time.Minute); st.Count > 0 {
				vr.Shippers = &st
			}
		}
		if s := procs[i].stderr.String(); s != "" {
			vr.Stderr = s
		}
		pr.Results[v.Name] = vr
	}
	// Added latency is taken pairwise: the k-th round trip of a variant
	// against the k-th of the direct pipe, made moments apart in the same
	// round (or in the same rotation of blocks), so load that comes and goes
	// cancels out of each difference.
	idx := map[string]int{}
	for i, v := range variants {
		idx[v.Name] = i
	}
	direct, bare := idx["direct"], idx["copy"]
	for i, v := range variants {
		if !v.wrapper {
			continue
		}
		vr := pr.Results[v.Name]
		vr.methodResult = measure(samples[i], samples[direct], samples[bare])
		if vr.Whole != nil {
			m := measure(whole[i], whole[direct], whole[bare])
			vr.Whole = &m
		}
	}
	return pr, nil
}

// blockPause is the rest before each whole-run block: longer than the
// monitor's coalescing window and a store sync, so a block starts on a
// machine the previous one has left.
const blockPause = 20 * time.Millisecond

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// binary returns path made absolute or, when it is empty, builds pkg (a
// path relative to the module root, the working directory) into dir.
func binary(ctx context.Context, path, dir, pkg string) (string, error) {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("%s: %w", pkg, err)
		}
		return abs, nil
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s (run from the repository root): %w", pkg, err)
	}
	return out, nil
}

// localEvents asks `kilometers stats --local --json` how many events a
// monitor variant's store holds.
func localEvents(ctx context.Context, km string, env []string) (int64, error) {
	cmd := exec.CommandContext(ctx, km, "stats", "--local", "--json", "--since", "24h")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("kilometers stats: %w", err)
	}
	var st struct {
		Totals struct {
			Events int64 `json:"events"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("kilometers stats: decode: %w", err)
	}
	return st.Totals.Events, nil
}

// withoutKilometersEnv keeps the user's own settings (API, home) away from
// the monitors under test.
func withoutKilometersEnv(environ []string) []string {
	var env []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "KILOMETERS_") && !strings.HasPrefix(kv, "KM_BENCH_") {
			env = append(env, kv)
		}
	}
	return env
}

// judge checks the floors: the monitor, and the monitor with shipping, on
// both sizes at p50 and p99, and peak RSS after the small run.
func (r *Results) judge() {
	r.Pass = true
	for _, ph := range r.Phases {
		for _, name := range []string{"monitor", "ship"} {
			vr, ok := ph.Results[name]
			if !ok {
				continue
			}
			// The whole runs charge the monitor for recording a large
			// result during the next round trip, which back-to-back calls
			// pay; they are reported against the floor until the capture
			// pipeline is cheap enough to be held to it
			// (docs/performance.md).
			methods := []struct {
				suffix   string
				m        *methodResult
				reported bool
			}{{"", &vr.methodResult, false}, {" (whole runs)", vr.Whole, true}}
			for _, mt := range methods {
				if !ph.Spec.Held || mt.m == nil {
					continue
				}
				for _, q := range []struct {
					p     string
					ratio *float64
				}{{"p50", mt.m.RatioP50}, {"p99", mt.m.RatioP99}} {
					c := check{What: fmt.Sprintf("%s %s added %s / bare copy's%s", name, ph.Spec.Name, q.p, mt.suffix), Floor: fmt.Sprintf("<= %.1f (aim %.1f)", maxRatio, aimRatio), Reported: mt.reported}
					if q.ratio == nil {
						// The bare copy added nothing measurable: machine
						// noise is larger than the floor itself, and no
						// ratio means anything. Said, not failed.
						c.Value = "n/a"
						c.Pass, c.Unmeasured = true, true
					} else {
						c.Value = fmt.Sprintf("%.2f", *q.ratio)
						c.Pass, c.Aim = *q.ratio <= maxRatio, *q.ratio <= aimRatio
					}
					r.add(c)
				}
			}
			if ph.Spec.RSSFloor {
				c := check{What: fmt.Sprintf("%s peak RSS after %d messages", name, vr.Messages),
					Value: fmt.Sprintf("%.1f MiB", float64(vr.PeakKB)/1024), Floor: fmt.Sprintf("<= %d MiB (aim %d) after %d", maxPeakKB>>10, aimPeakKB>>10, rssAfter)}
				c.Pass = vr.PeakKB > 0 && vr.PeakKB <= maxPeakKB && (vr.Messages >= rssAfter || r.Quick)
				c.Aim = c.Pass && vr.PeakKB <= aimPeakKB
				r.add(c)
			} else if vr.PeakKB > 0 {
				// The large results' peak is the monitor's highest, and
				// varies by half a MiB from run to run with what else
				// the two CPUs run (docs/performance.md): reported
				// against the same floor until it is within it reliably.
				c := check{What: fmt.Sprintf("%s peak RSS in the %s run", name, ph.Spec.Name),
					Value: fmt.Sprintf("%.1f MiB", float64(vr.PeakKB)/1024), Floor: fmt.Sprintf("<= %d MiB (aim %d)", maxPeakKB>>10, aimPeakKB>>10), Reported: true}
				c.Pass = vr.PeakKB <= maxPeakKB
				c.Aim = vr.PeakKB <= aimPeakKB
				r.add(c)
			}
		}
	}
	r.judgeLong()
}

func (r *Results) add(c check) {
	r.Checks = append(r.Checks, c)
	r.Pass = r.Pass && (c.Pass || c.Reported)
}

func (r *Results) print(w io.Writer) {
	fmt.Fprintf(w, "Monitor overhead: round trip of a 256 B tools/call request through each variant, all in one run, rounds interleaved (%d CPUs)\n", r.CPUs)
	if r.Quick {
		fmt.Fprintln(w, "QUICK RUN: too few round trips for the figures to mean anything")
	}
	labels := map[string]string{"direct": "direct pipe", "copy": "bare copy", "splice": "splice copy", "tee": "tee copy", "monitor": "kilometers monitor", "ship": "monitor + shipping"}
	for _, ph := range r.Phases {
		s := ph.Spec
		fmt.Fprintf(w, "\nResult %s, interleaved: %d rounds x %d round trips per variant (after %d warm-up)%s\n", s.Name, s.Rounds, s.Per, s.Warmup, stealNote(ph.Steal))
		fmt.Fprintf(w, "%-20s %10s %10s %11s %11s %9s %9s %9s %8s %9s\n", "VARIANT", "P50 RTT", "P99 RTT", "ADDED P50", "ADDED P99", "xBARE P50", "xBARE P99", "PEAK RSS", "EXIT", "CPU/TRIP")
		for _, name := range r.Variants {
			vr := ph.Results[name]
			printMethod(w, labels[name], name == "direct", vr.methodResult)
			if name != "direct" {
				fmt.Fprintf(w, " %9s %8s %9s", fmt.Sprintf("%.1f MiB", float64(vr.PeakKB)/1024), dur(vr.Exit), dur(vr.CPUPerTrip))
			}
			fmt.Fprintln(w)
		}
		if ph.Results["direct"].Whole != nil {
			fmt.Fprintf(w, "Result %s, whole runs: %d blocks x %d back-to-back round trips per variant, each variant alone\n", s.Name, s.Blocks, s.BlockTrips)
			for _, name := range r.Variants {
				printMethod(w, labels[name], name == "direct", *ph.Results[name].Whole)
				fmt.Fprintln(w)
			}
		}
		if mib := float64(s.Size) / (1 << 20); mib >= 1 {
			fmt.Fprintf(w, "Added p50 per MiB (interleaved / whole runs):")
			for _, name := range r.Variants {
				if vr := ph.Results[name]; name != "direct" {
					fmt.Fprintf(w, "  %s %s / %s", labels[name], dur(time.Duration(float64(vr.AddedP50)/mib)), perMiB(vr.Whole, mib))
				}
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, "\nADDED = percentile of (wrapper RTT - direct RTT), each pair taken in the same round (interleaved) or rotation of blocks (whole runs);")
	fmt.Fprintln(w, "xBARE = ADDED / bare copy's ADDED by the same method (the figure the monitor is held to, at 256 B and 1 MiB, by both methods).")
	fmt.Fprintln(w, "xBARE is n/a when the bare copy's ADDED is not positive: noise exceeds the floor there (UNMEASURED below, not a failure).")
	fmt.Fprintln(w, "PEAK RSS = the wrapper process's VmHWM, sampled until it exited; EXIT = time from stdin EOF to exit (monitors make events durable then);")
	fmt.Fprintln(w, "CPU/TRIP = the wrapper process's own CPU time per measured round trip, both methods, its work after the last answer included.")
	for _, ph := range r.Phases {
		for _, name := range r.Variants {
			if vr := ph.Results[name]; vr.RSS != nil && (name == "monitor" || name == "ship") {
				fmt.Fprintf(w, "%s (%s) at its last round trip: RSS %.1f MiB = %.1f MiB anonymous (heap, stacks) + %.1f MiB file-backed (binary text)\n",
					labels[name], ph.Spec.Name, float64(vr.RSS.Anon+vr.RSS.File)/1024, float64(vr.RSS.Anon)/1024, float64(vr.RSS.File)/1024)
			}
		}
	}
	for _, ph := range r.Phases {
		for _, name := range r.Variants {
			if sh := ph.Results[name].Shippers; sh != nil {
				fmt.Fprintf(w, "%s (%s): %d background shipper processes, the largest peaking at %.1f MiB RSS, %s CPU in all\n",
					labels[name], ph.Spec.Name, sh.Count, float64(sh.PeakKB)/1024, sh.CPU.Round(time.Millisecond))
			}
		}
	}
	fmt.Fprintln(w)
	for _, name := range r.Variants {
		if ec, ok := r.Recorded[name]; ok {
			fmt.Fprintf(w, "%s: local store holds %d events of %d messages\n", labels[name], ec.Events, ec.Expected)
		}
	}
	if r.Shipped != nil {
		fmt.Fprintf(w, "monitor + shipping: API stored %d events of %d once the monitors and their shippers had exited\n", r.Shipped.Events, r.Shipped.Expected)
	}
	for _, ph := range r.Phases {
		for _, name := range r.Variants {
			if s := ph.Results[name].Stderr; s != "" {
				fmt.Fprintf(w, "%s (%s) wrote to stderr:\n  %s\n", labels[name], ph.Spec.Name, strings.ReplaceAll(s, "\n", "\n  "))
			}
		}
	}
	r.printLong(w)
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		verdict := "PASS"
		if c.Unmeasured {
			verdict = "UNMEASURED"
		} else if !c.Pass && c.Reported {
			verdict = "OVER (reported)"
		} else if !c.Pass {
			verdict = "FAIL"
		} else if c.Aim {
			verdict = "PASS (aim met)"
		}
		req := "required"
		if c.Reported {
			req = "reported against"
		}
		fmt.Fprintf(w, "%-15s %-58s %8s   %s %s\n", verdict, c.What, c.Value, req, c.Floor)
	}
	if r.Pass {
		fmt.Fprintln(w, "\nmonitor bench: PASS")
	} else {
		fmt.Fprintln(w, "\nmonitor bench: FAIL (a required floor was missed)")
	}
}

func printMethod(w io.Writer, label string, direct bool, m methodResult) {
	fmt.Fprintf(w, "%-20s %10s %10s", label, dur(m.RoundTrip.P50), dur(m.RoundTrip.P99))
	if !direct {
		fmt.Fprintf(w, " %11s %11s %9s %9s", dur(m.AddedP50), dur(m.AddedP99), ratio(m.RatioP50), ratio(m.RatioP99))
	}
}

func perMiB(m *methodResult, mib float64) string {
	if m == nil {
		return "-"
	}
	return dur(time.Duration(float64(m.AddedP50) / mib))
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d.Abs() < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
}

func ratio(r *float64) string {
	if r == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *r)
}
