// Command bench measures how the local store answers as it grows: it fills
// a Kilometers home with -events events (about the way monitors record
// them: sessions of many events over the last day, each in segments of
// its own) and times the commands that read all of them, run as users run
// them, through the built CLI: `kilometers stats` (the last 24 hours,
// which also lists the window's sessions) and `kilometers activity` with
// a filter that matches nothing (every event must be ruled out). The
// first run of each reads the segments whole (and leaves their summaries);
// the figure is the median of the runs after it. Floor: under 100 ms each
// at 1M events.
//
//	go run ./cli/internal/store/internal/bench -kilometers ./kilometers [-events N] [-runs N] [-quick] [-json]
//
// -home keeps the filled home (and reuses one already filled); -compare
// times a second CLI (another build, for before and after) in the same
// runs, alternating, without floors.
//
// Exits 1 when a floor is missed, 2 when the benchmark could not run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// floor is what each warm command must stay under at 1M events.
const floor = 100 * time.Millisecond

func main() {
	kilometers := flag.String("kilometers", "", "the built CLI (required)")
	events := flag.Int("events", 1_000_000, "events to fill the store with")
	runs := flag.Int("runs", 5, "timed runs of each command after the first")
	quick := flag.Bool("quick", false, "a smoke run: 50,000 events, 2 runs; figures not meaningful")
	asJSON := flag.Bool("json", false, "print one JSON document instead of a table")
	home := flag.String("home", "", "fill and keep this home (reused when it holds a store already)")
	compare := flag.String("compare", "", "another built CLI to time alongside, alternating")
	flag.Parse()
	if *kilometers == "" {
		fmt.Fprintln(os.Stderr, "bench: -kilometers is required")
		os.Exit(2)
	}
	if *quick {
		*events, *runs = 50_000, 2
	}
	rc, err := run(context.Background(), config{kilometers: *kilometers, compare: *compare, home: *home,
		events: *events, runs: *runs, quick: *quick, json: *asJSON})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	os.Exit(rc)
}

// result is one command's figures.
type result struct {
	Name    string  `json:"name"`
	Args    string  `json:"args"`
	FirstMS float64 `json:"first_ms"`
	WarmMS  float64 `json:"warm_ms"` // median of the runs after the first
	// WarmCPUMS is the median CPU time (user and system) of those runs:
	// on a loaded machine, wall time is mostly waiting for a CPU.
	WarmCPUMS float64 `json:"warm_cpu_ms"`
	FloorMS   float64 `json:"floor_ms"`
	Pass      bool    `json:"pass"`
}

type config struct {
	kilometers, compare, home string
	events, runs              int
	quick, json               bool
}

func run(ctx context.Context, cfg config) (int, error) {
	home := cfg.home
	if home == "" {
		var err error
		if home, err = os.MkdirTemp("", "km-bench-store-"); err != nil {
			return 0, err
		}
		defer os.RemoveAll(home)
	}
	start := time.Now()
	n, bytes, err := fill(ctx, home, cfg.events)
	if err != nil {
		return 0, fmt.Errorf("fill the store: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: store: %d events, %.0f MiB, ready in %.1f s\n", n, float64(bytes)/(1<<20), time.Since(start).Seconds())
	bins := []string{cfg.kilometers}
	if cfg.compare != "" {
		bins = append(bins, cfg.compare)
	}

	cmds := []struct {
		name string
		args []string
	}{
		{"stats", []string{"stats"}},
		{"activity, no match", []string{"activity", "--tool", "no-such-tool", "--json"}},
	}
	var out []result
	rc := 0
	for _, c := range cmds {
		times := make([][]time.Duration, len(bins))
		cpus := make([][]time.Duration, len(bins))
		for i := 0; i <= cfg.runs; i++ {
			for b, bin := range bins {
				d, cpu, err := timeCommand(ctx, bin, home, c.args)
				if err != nil {
					return 0, err
				}
				times[b] = append(times[b], d)
				if i > 0 {
					cpus[b] = append(cpus[b], cpu)
				}
			}
		}
		for b := range bins {
			warm := slices.Clone(times[b][1:])
			slices.Sort(warm)
			slices.Sort(cpus[b])
			r := result{Name: c.name, Args: fmt.Sprint(c.args), FirstMS: ms(times[b][0]), WarmMS: ms(warm[len(warm)/2]),
				WarmCPUMS: ms(cpus[b][len(cpus[b])/2]), FloorMS: ms(floor), Pass: true}
			if b == 0 {
				r.Pass = cfg.quick || warm[len(warm)/2] < floor
			} else {
				r.Name += " (compare)"
			}
			if !r.Pass {
				rc = 1
			}
			out = append(out, r)
		}
	}
	if cfg.json {
		return rc, json.NewEncoder(os.Stdout).Encode(map[string]any{"events": n, "bytes": bytes, "commands": out})
	}
	fmt.Printf("store: %d events (%.0f MiB)\n", n, float64(bytes)/(1<<20))
	fmt.Printf("  %-30s %10s %10s %12s %8s\n", "command", "first ms", "warm ms", "warm cpu ms", "floor")
	for _, r := range out {
		verdict := "ok"
		if !r.Pass {
			verdict = "MISSED"
		}
		fmt.Printf("  %-30s %10.1f %10.1f %12.1f %5.0f %s\n", r.Name, r.FirstMS, r.WarmMS, r.WarmCPUMS, r.FloorMS, verdict)
	}
	return rc, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// timeCommand runs the CLI once and returns its wall and CPU time.
func timeCommand(ctx context.Context, kilometers, home string, args []string) (time.Duration, time.Duration, error) {
	cmd := exec.CommandContext(ctx, kilometers, args...)
	cmd.Env = append(os.Environ(), "KILOMETERS_HOME="+home, "NO_COLOR=1")
	start := time.Now()
	b, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("kilometers %v: %w\n%s", args, err, b)
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// fill records events the way monitors do: sessions one after the other
// over the last 20 hours, each recording its start, its events and its
// end.
func fill(ctx context.Context, home string, total int) (int, int64, error) {
	s, err := store.Open(ctx, home, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, 0, err
	}
	if u, err := s.Usage(ctx); err != nil || u.Events > 0 {
		return int(u.Events), u.Bytes, err
	}
	const sessions = 20
	per := max(total/sessions, 1)
	now := time.Now().UTC()
	first := now.Add(-20 * time.Hour)
	step := 20 * time.Hour / time.Duration(sessions*per)
	servers := []string{"filesystem", "github", "fetch", "memory"}
	tools := []string{"read_file", "write_file", "search_code", "fetch", "create_issue", "list_dir"}
	n := 0
	for si := range sessions {
		sid := uuid.NewString()
		sess := event.Session{ID: sid, Server: servers[si%len(servers)], Command: []string{"npx", servers[si%len(servers)]},
			StartedAt: first.Add(time.Duration(si*per) * step)}
		w, err := s.NewWriter(ctx, sid)
		if err != nil {
			return n, 0, err
		}
		if err := w.RecordSession(ctx, sess); err != nil {
			return n, 0, err
		}
		batch := make([]event.Event, 0, 256)
		for i := range per {
			batch = append(batch, benchEvent(sid, sess.Server, tools[i/2%len(tools)], i, sess.StartedAt.Add(time.Duration(i)*step)))
			if len(batch) == cap(batch) || i == per-1 {
				if err := w.Record(ctx, batch); err != nil {
					return n, 0, err
				}
				n += len(batch)
				batch = batch[:0]
			}
		}
		end := sess.StartedAt.Add(time.Duration(per) * step)
		code := 0
		sess.EndedAt, sess.ExitCode = &end, &code
		if err := w.RecordSession(ctx, sess); err != nil {
			return n, 0, err
		}
		if err := w.Close(); err != nil {
			return n, 0, err
		}
	}
	u, err := s.Usage(ctx)
	return n, u.Bytes, err
}

// benchEvent is half of a tools/call: the request, or its reply with a
// latency, a failure now and then, and a payload of a typical size.
func benchEvent(sid, server, tool string, i int, ts time.Time) event.Event {
	e := event.Event{ID: uuid.NewString(), SessionID: sid, Seq: int64(i), TS: ts, Server: server,
		RPCID: strconv.Itoa(i / 2), Method: "tools/call", Tool: tool, Size: int64(180 + i%300)}
	if i%2 == 0 {
		e.Direction, e.Kind = event.ClientToServer, event.KindRequest
		e.Payload = json.RawMessage(`{"jsonrpc":"2.0","id":` + e.RPCID + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"path":"/home/user/project/src/file.go"}}}`)
	} else {
		lat := float64(5 + i%400)
		isErr := i%50 == 1
		e.Direction, e.Kind, e.LatencyMS, e.IsError = event.ServerToClient, event.KindResponse, &lat, &isErr
		e.Payload = json.RawMessage(`{"jsonrpc":"2.0","id":` + e.RPCID + `,"result":{"content":[{"type":"text","text":"package main\n\nfunc main() {}\n"}]}}`)
	}
	if i%10 == 0 {
		e.Risk = &event.Risk{Score: 40 + i%60, Level: event.LevelMedium, Reasons: []string{"sensitive_path"}}
	}
	return e
}
