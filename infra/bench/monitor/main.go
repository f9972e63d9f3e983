// Command monitor is the monitor half of `make bench`. In one run, side by
// side, it measures the round trip of a tools/call request through:
//
//   - direct:  the client talking to an echo MCP-like server over a pipe;
//   - copy:    a bare two-way byte copy in front of that server (the floor
//     any wrapper pays: two io.Copy goroutines);
//   - monitor: `kilometers monitor --` in front of it, recording to a fresh
//     KILOMETERS_HOME;
//   - ship:    the same with shipping on, to a real functions/local over
//     PostgreSQL (a throwaway database on the server of DATABASE_URL).
//
// for a small (256 B) and a large (1 MiB) result. The variants run at the
// same time and take turns in rounds (the order rotating every round), so
// whatever else the machine does hits them all alike.
//
// For each wrapper it prints the added latency over the direct pipe at p50
// and p99 (percentiles of the pairwise differences between a wrapper's
// round trip and the direct pipe's in the same round), that as a multiple
// of the bare copy's added latency (the figure the monitor is held to), and the
// wrapper process's peak RSS (VmHWM) after the small run's 10,000+ round
// trips. It exits 1 when a required floor is missed, 2 when the run itself
// fails. The echo server, the bare copy and functions/local are built with
// `go build` unless given, so run it from the repository root:
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
	sizes       []phaseSpec
	long        int // messages of the long session; 0 skips it
}

// phaseSpec is one result size and how many round trips measure it.
type phaseSpec struct {
	Name   string `json:"name"`
	Size   int    `json:"result_bytes"`
	Warmup int    `json:"warmup"`
	Rounds int    `json:"rounds"`
	Per    int    `json:"per_round"`
	// RSSFloor marks the phase whose peak RSS is held to the floor.
	RSSFloor bool `json:"rss_floor"`
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
	largeRounds := flag.Int("large-rounds", 300, "rounds of the 1 MiB run")
	largePer := flag.Int("large-per", 1, "round trips per variant per round in the 1 MiB run")
	flag.IntVar(&o.long, "long-messages", 200_000, "messages of the long-session run (0 skips it)")
	flag.Parse()
	if *quick {
		*smallRounds, *largeRounds = 300, 12
		o.long = min(o.long, 2_000)
	}
	if *smallRounds < 1 || *smallPer < 1 || *largeRounds < 1 || *largePer < 1 || flag.NArg() > 0 {
		return fail(errors.New("need rounds >= 1 and round trips per round >= 1, and no arguments"))
	}
	o.sizes = []phaseSpec{
		{Name: "256 B", Size: 256, Warmup: 200, Rounds: *smallRounds, Per: *smallPer, RSSFloor: true},
		{Name: "1 MiB", Size: 1 << 20, Warmup: 5, Rounds: *largeRounds, Per: *largePer},
	}
	if *quick {
		o.sizes[0].Warmup, o.sizes[1].Warmup = 20, 1
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
}

type varResult struct {
	RoundTrip summary `json:"round_trip"`
	// Added latency over the direct pipe, and as a multiple of the bare
	// copy's (only for wrappers; ok false when not measurable).
	AddedP50 time.Duration `json:"added_p50_ns"`
	AddedP99 time.Duration `json:"added_p99_ns"`
	RatioP50 *float64      `json:"added_ratio_p50,omitempty"`
	RatioP99 *float64      `json:"added_ratio_p99,omitempty"`
	PeakKB   int64         `json:"peak_rss_kib,omitempty"`
	RSS      *rssSplit     `json:"rss_at_end,omitempty"`
	Messages int           `json:"messages"`
	Exit     time.Duration `json:"exit_ns,omitempty"`
	// Shippers are the background shipper processes a monitor with
	// shipping on launched during the run.
	Shippers *childStats `json:"shippers,omitempty"`
	Stderr   string      `json:"stderr,omitempty"`
}

type check struct {
	What  string `json:"what"`
	Value string `json:"value"`
	Floor string `json:"floor"`
	Pass  bool   `json:"pass"`
	Aim   bool   `json:"aim_met"`
	// Unmeasured is set when noise hid the figure (see judge).
	Unmeasured bool `json:"unmeasured,omitempty"`
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
		ship := &variant{Name: "ship", Label: "monitor + shipping", argv: variants[2].argv, wrapper: true, monitor: true,
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
	for r := 0; r < spec.Rounds; r++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for k := range procs {
			i := (r + k) % len(procs)
			for j := 0; j < spec.Per; j++ {
				d, err := procs[i].roundTrip(spec.Size)
				if err != nil {
					return nil, err
				}
				samples[i] = append(samples[i], d)
			}
		}
	}
	pr := &phaseResult{Spec: spec, Results: map[string]*varResult{}}
	for i, v := range variants {
		vr := &varResult{RoundTrip: summarize(samples[i]), Messages: 2*procs[i].trips + 1}
		trips[v.Name] += procs[i].trips
		split := rssNow(procs[i].cmd.Process.Pid)
		peak, exit, err := procs[i].finish(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		if v.wrapper {
			vr.PeakKB, vr.Exit, vr.RSS = peak, exit, &split
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
	// round, so load that comes and goes cancels out of each difference.
	idx := map[string]int{}
	for i, v := range variants {
		idx[v.Name] = i
	}
	added := func(name string) summary { return summarize(pairedAdded(samples[idx[name]], samples[idx["direct"]])) }
	bare := added("copy")
	for _, v := range variants {
		if !v.wrapper {
			continue
		}
		vr, a := pr.Results[v.Name], added(v.Name)
		vr.AddedP50, vr.AddedP99 = a.P50, a.P99
		if r, ok := addedRatio(a.P50, bare.P50); ok {
			vr.RatioP50 = &r
		}
		if r, ok := addedRatio(a.P99, bare.P99); ok {
			vr.RatioP99 = &r
		}
	}
	return pr, nil
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
			for _, q := range []struct {
				p     string
				ratio *float64
			}{{"p50", vr.RatioP50}, {"p99", vr.RatioP99}} {
				c := check{What: fmt.Sprintf("%s %s added %s / bare copy's", name, ph.Spec.Name, q.p), Floor: fmt.Sprintf("<= %.1f (aim %.1f)", maxRatio, aimRatio)}
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
			if ph.Spec.RSSFloor {
				c := check{What: fmt.Sprintf("%s peak RSS after %d messages", name, vr.Messages),
					Value: fmt.Sprintf("%.1f MiB", float64(vr.PeakKB)/1024), Floor: fmt.Sprintf("<= %d MiB (aim %d) after %d", maxPeakKB>>10, aimPeakKB>>10, rssAfter)}
				c.Pass = vr.PeakKB > 0 && vr.PeakKB <= maxPeakKB && (vr.Messages >= rssAfter || r.Quick)
				c.Aim = c.Pass && vr.PeakKB <= aimPeakKB
				r.add(c)
			}
		}
	}
	r.judgeLong()
}

func (r *Results) add(c check) {
	r.Checks = append(r.Checks, c)
	r.Pass = r.Pass && c.Pass
}

func (r *Results) print(w io.Writer) {
	fmt.Fprintf(w, "Monitor overhead: round trip of a 256 B tools/call request through each variant, all in one run, rounds interleaved (%d CPUs)\n", r.CPUs)
	if r.Quick {
		fmt.Fprintln(w, "QUICK RUN: too few round trips for the figures to mean anything")
	}
	labels := map[string]string{"direct": "direct pipe", "copy": "bare copy", "monitor": "kilometers monitor", "ship": "monitor + shipping"}
	for _, ph := range r.Phases {
		s := ph.Spec
		fmt.Fprintf(w, "\nResult %s: %d rounds x %d round trips per variant (after %d warm-up)\n", s.Name, s.Rounds, s.Per, s.Warmup)
		fmt.Fprintf(w, "%-20s %10s %10s %11s %11s %9s %9s %9s %8s\n", "VARIANT", "P50 RTT", "P99 RTT", "ADDED P50", "ADDED P99", "xBARE P50", "xBARE P99", "PEAK RSS", "EXIT")
		for _, name := range r.Variants {
			vr := ph.Results[name]
			fmt.Fprintf(w, "%-20s %10s %10s", labels[name], dur(vr.RoundTrip.P50), dur(vr.RoundTrip.P99))
			if name == "direct" {
				fmt.Fprintln(w)
				continue
			}
			fmt.Fprintf(w, " %11s %11s %9s %9s %9s %8s\n", dur(vr.AddedP50), dur(vr.AddedP99), ratio(vr.RatioP50), ratio(vr.RatioP99),
				fmt.Sprintf("%.1f MiB", float64(vr.PeakKB)/1024), dur(vr.Exit))
		}
	}
	fmt.Fprintln(w, "\nADDED = percentile of (wrapper RTT - direct RTT), each pair taken in the same round; xBARE = ADDED / bare copy's ADDED (the figure the monitor is held to).")
	fmt.Fprintln(w, "xBARE is n/a when the bare copy's ADDED is not positive: noise exceeds the floor there (UNMEASURED below, not a failure).")
	fmt.Fprintln(w, "PEAK RSS = the wrapper process's VmHWM, sampled until it exited; EXIT = time from stdin EOF to exit (monitors make events durable then).")
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
		} else if !c.Pass {
			verdict = "FAIL"
		} else if c.Aim {
			verdict = "PASS (aim met)"
		}
		fmt.Fprintf(w, "%-15s %-45s %8s   required %s\n", verdict, c.What, c.Value, c.Floor)
	}
	if r.Pass {
		fmt.Fprintln(w, "\nmonitor bench: PASS")
	} else {
		fmt.Fprintln(w, "\nmonitor bench: FAIL (a required floor was missed)")
	}
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
