package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// TestLocalAndAPIStatsAgree_Postgres holds the product's promise that stats
// follow one rule in one place: the same sessions, summarised by the local
// store (`--local`) and by the API from Postgres, give the same numbers.
func TestLocalAndAPIStatsAgree_Postgres(t *testing.T) {
	e := setup(t)
	a := e.startAPI(t, "")
	key := a.tenant("agree")
	u := e.user(t, "KILOMETERS_API_URL="+a.url(), "KILOMETERS_API_KEY="+key)

	// Two sessions with successes, tool errors, JSON-RPC errors, other
	// methods and payloads that analysis scores as risky.
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 15, "hello")
		calls(t, cs, "echo", 3, "cat ~/.ssh/id_rsa && rm -rf / ; AWS_SECRET_ACCESS_KEY="+password)
		calls(t, cs, "fail", 4, "x")
		calls(t, cs, "crash", 2, "x")
		if _, err := cs.ListTools(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	})
	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		calls(t, cs, "echo", 7, "second session")
		calls(t, cs, "fail", 1, "x")
		if err := cs.Ping(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	})
	u.mustRun(t, "sync")

	remote := checkSameStats(t, u, stats.Stats{})
	for _, want := range []struct {
		tool          string
		calls, errors int64
	}{{"echo", 25, 0}, {"fail", 5, 5}, {"crash", 2, 2}} {
		if got := toolStats(remote, want.tool); got.Calls != want.calls || got.Errors != want.errors {
			t.Errorf("%s: %d calls %d errors, want %d and %d", want.tool, got.Calls, got.Errors, want.calls, want.errors)
		}
	}
	if remote.Totals.Sessions != 2 || remote.Latency.Count == 0 {
		t.Errorf("totals %+v, latency %+v", remote.Totals, remote.Latency)
	}
	if remote.RiskLevels.Medium+remote.RiskLevels.High == 0 {
		t.Errorf("no risky events among the calls: %+v", remote.RiskLevels)
	}
	checkSameEvents(t, u)
}

// window is an explicit, minute-aligned window around the test's events,
// so the local and the remote stats cover exactly the same span.
func window() (since, until string) {
	now := time.Now().UTC()
	return now.Add(-time.Hour).Truncate(time.Minute).Format(time.RFC3339),
		now.Add(2 * time.Minute).Truncate(time.Minute).Format(time.RFC3339)
}

// checkSameStats compares `kilometers stats --json` (the API) with
// `kilometers stats --json --local` (this machine's store) over the same
// window, and with want when want has events (the stats the test read from
// the API itself). It returns the API's stats.
func checkSameStats(t *testing.T, u *user, want stats.Stats) stats.Stats {
	t.Helper()
	since, until := window()
	read := func(args ...string) stats.Stats {
		t.Helper()
		var s stats.Stats
		out := u.mustRun(t, append([]string{"stats", "--json", "--since", since, "--until", until}, args...)...)
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("stats %v: %v\n%s", args, err, out)
		}
		return s
	}
	remote, local := read(), read("--local")
	compareStats(t, "local vs API", local, remote)
	if want.Totals.Events > 0 && want.Totals.Events != remote.Totals.Events {
		t.Errorf("`kilometers stats` saw %d events, the API's own answer %d", remote.Totals.Events, want.Totals.Events)
	}
	return remote
}

// compareStats reports every difference between two stats answers. Counts
// and latency percentiles must be equal (both sides read percentiles by
// stats.Sample); money may differ by rounding.
func compareStats(t *testing.T, what string, a, b stats.Stats) {
	t.Helper()
	diff := func(field string, x, y any) {
		t.Helper()
		t.Errorf("%s: %s differ: %v vs %v", what, field, x, y)
	}
	money := func(x, y float64) bool { return math.Abs(x-y) <= 2e-6 }
	pct := func(field string, x, y stats.Percentiles) {
		t.Helper()
		if x != y {
			diff(field+" percentiles", x, y)
		}
	}

	if !a.Since.Equal(b.Since) || !a.Until.Equal(b.Until) {
		diff("windows", [2]time.Time{a.Since, a.Until}, [2]time.Time{b.Since, b.Until})
	}
	ta, tb := a.Totals, b.Totals
	if !money(ta.CostUSD, tb.CostUSD) {
		diff("totals.cost_usd", ta.CostUSD, tb.CostUSD)
	}
	ta.CostUSD, tb.CostUSD = 0, 0
	if ta != tb {
		diff("totals", fmt.Sprintf("%+v", ta), fmt.Sprintf("%+v", tb))
	}
	if a.Latency.Count != b.Latency.Count {
		diff("latency.count", a.Latency.Count, b.Latency.Count)
	}
	pct("latency", a.Latency.Percentiles, b.Latency.Percentiles)
	if a.RiskLevels != b.RiskLevels {
		diff("risk_levels", a.RiskLevels, b.RiskLevels)
	}
	if !reflect.DeepEqual(sortedRisky(a.RiskiestTools), sortedRisky(b.RiskiestTools)) {
		diff("riskiest_tools", a.RiskiestTools, b.RiskiestTools)
	}

	tools := map[string][2]stats.Tool{}
	for _, x := range a.Tools {
		p := tools[x.Tool]
		p[0] = x
		tools[x.Tool] = p
	}
	for _, x := range b.Tools {
		p := tools[x.Tool]
		p[1] = x
		tools[x.Tool] = p
	}
	for name, p := range tools {
		x, y := p[0], p[1]
		if x.Tool == "" || y.Tool == "" {
			diff("tool "+name, x, y)
			continue
		}
		if x.Calls != y.Calls || x.Errors != y.Errors || !money(x.CostUSD, y.CostUSD) {
			diff("tool "+name+" calls/errors/cost", fmt.Sprintf("%d/%d/%g", x.Calls, x.Errors, x.CostUSD), fmt.Sprintf("%d/%d/%g", y.Calls, y.Errors, y.CostUSD))
		}
		pct("tool "+name, x.Percentiles, y.Percentiles)
	}

	methods := map[string][2]stats.Method{}
	for _, x := range a.Methods {
		p := methods[x.Method]
		p[0] = x
		methods[x.Method] = p
	}
	for _, x := range b.Methods {
		p := methods[x.Method]
		p[1] = x
		methods[x.Method] = p
	}
	for name, p := range methods {
		x, y := p[0], p[1]
		if x.Count != y.Count || x.Errors != y.Errors {
			diff("method "+name, x, y)
		}
		pct("method "+name, x.Percentiles, y.Percentiles)
	}

	if a.SeriesStep != b.SeriesStep || !reflect.DeepEqual(nonEmpty(a.Series), nonEmpty(b.Series)) {
		diff("series", nonEmpty(a.Series), nonEmpty(b.Series))
	}
}

func sortedRisky(r []stats.RiskyTool) []stats.RiskyTool {
	out := append([]stats.RiskyTool{}, r...)
	sort.Slice(out, func(i, j int) bool { return out[i].Tool < out[j].Tool })
	return out
}

// nonEmpty keeps the points that counted something, in UTC: sources may
// differ in how they fill empty steps and in the zone they print.
func nonEmpty(ps []stats.Point) []stats.Point {
	var out []stats.Point
	for _, p := range ps {
		if p.Events > 0 || p.Errors > 0 {
			p.TS = p.TS.UTC()
			out = append(out, p)
		}
	}
	return out
}

// checkSameEvents compares every event's metadata in the API with the
// local store's: shipping may redact payloads and nothing else. A lost
// is_error or error_code here would undercount errors in the API's stats.
func checkSameEvents(t *testing.T, u *user) {
	t.Helper()
	local := activityPage(t, u, "activity", "--json", "--limit", "1000", "--local")
	remote := activityPage(t, u, "activity", "--json", "--limit", "1000")
	byID := map[string]event.Event{}
	for _, e := range local.Events {
		byID[e.ID] = e
	}
	if len(local.Events) != len(remote.Events) {
		t.Errorf("local store has %d events, API %d", len(local.Events), len(remote.Events))
	}
	for _, r := range remote.Events {
		l, ok := byID[r.ID]
		if !ok {
			t.Errorf("event %s is in the API only", r.ID)
			continue
		}
		if lm, rm := metadata(l), metadata(r); !reflect.DeepEqual(lm, rm) {
			t.Errorf("event %s changed on the way:\nlocal %s\napi   %s", r.ID, lm, rm)
		}
	}
}

// metadata is an event without its payload, as comparable JSON. Times are
// compared to the microsecond, what PostgreSQL keeps.
func metadata(e event.Event) string {
	e.Payload, e.PayloadTruncated = nil, false
	e.TS = e.TS.UTC().Truncate(time.Microsecond)
	b, _ := json.Marshal(e)
	return string(b)
}
