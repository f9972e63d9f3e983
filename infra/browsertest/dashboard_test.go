package browsertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

const wait = 30 * time.Second

// view moves the page to a view by its fragment, as a click on a link
// does (no reload), and waits for sel.
func (b *browser) view(fragment, sel string) {
	b.t.Helper()
	b.run("view "+fragment, wait, do(fmt.Sprintf("location.hash = %q", fragment)), visible(sel))
}

// until waits for a JavaScript condition to hold.
func (b *browser) until(what, cond string, d time.Duration) {
	b.t.Helper()
	b.run(what, d+5*time.Second, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d)))
}

// checkOverview compares every number the overview shows with st, the
// answer of `kilometers stats --json` for the same window.
func (b *browser) checkOverview(st stats.Stats) {
	b.t.Helper()
	var shown map[string]string
	b.js(`Object.fromEntries([...document.querySelectorAll('[data-stat]')].map(e => [e.dataset.stat, e.dataset.value ?? e.getAttribute('datetime')]))`, &shown)
	raw, _ := json.Marshal(st)
	var want map[string]any
	_ = json.Unmarshal(raw, &want)
	lookup := func(path string) any {
		var v any = want
		for _, k := range strings.Split(path, ".") {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		return v
	}
	for _, path := range []string{
		"totals.events", "totals.requests", "totals.errors", "totals.error_rate", "totals.sessions", "totals.bytes",
		"totals.cost_usd", "totals.tokens", "latency.p50_ms", "latency.p95_ms", "latency.p99_ms", "latency.count",
		"risk_levels.low", "risk_levels.medium", "risk_levels.high",
	} {
		got, err := strconv.ParseFloat(shown[path], 64)
		w, _ := lookup(path).(float64)
		if err != nil || got != w {
			b.t.Errorf("overview %s = %q, stats --json says %v", path, shown[path], w)
		}
	}
	var text map[string]string
	b.js(`Object.fromEntries([...document.querySelectorAll('[data-stat^="totals."]')].map(e => [e.dataset.stat, e.textContent]))`, &text)
	if got, want := text["totals.events"], commas(st.Totals.Events); got != want {
		b.t.Errorf("events shown as %q, want %q", got, want)
	}
	var tools map[string][2]string
	b.js(`Object.fromEntries([...document.querySelectorAll('tr[data-tool]')].map(r => [r.dataset.tool,
		[r.querySelector('[data-field=calls]').textContent, r.querySelector('[data-field=errors]').textContent]]))`, &tools)
	if len(tools) != len(st.Tools) {
		b.t.Errorf("tools table has %d rows, stats --json %d tools", len(tools), len(st.Tools))
	}
	for _, tl := range st.Tools {
		if got := tools[tl.Tool]; got != [2]string{commas(tl.Calls), commas(tl.Errors)} {
			b.t.Errorf("tool %s: calls/failed shown %v, want %d/%d", tl.Tool, got, tl.Calls, tl.Errors)
		}
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// window reads the since and until the overview shows.
func (b *browser) window() (string, string) {
	var w [2]string
	b.js(`[document.querySelector('[data-stat=since]').getAttribute('datetime'), document.querySelector('[data-stat=until]').getAttribute('datetime')]`, &w)
	return w[0], w[1]
}

func failedCount(events []event.Event) int {
	n := 0
	for i := range events {
		if events[i].Failed() {
			n++
		}
	}
	return n
}

// TestLocalDashboard opens `kilometers ui` over a store filled by real
// monitored sessions (the SDK client in front of npm's server-everything
// and of a server with a poisoned tool) and walks every view.
func TestLocalDashboard(t *testing.T) {
	u := newUser(t)
	u.everythingSession()
	u.poisonedSession()

	_, printed := start(t, u.env, "", u.cli, "ui", "--no-open", "--addr", "127.0.0.1:0")
	pu, err := url.Parse(printed)
	if err != nil || pu.Query().Get("token") == "" {
		t.Fatalf("kilometers ui printed %q, want its URL with a token", printed)
	}
	base := "http://" + pu.Host

	// Nobody without the token, and no other host name, gets in.
	for _, c := range []struct {
		name   string
		url    string
		header map[string]string
		want   int
	}{
		{"page without the token", base + "/", nil, http.StatusUnauthorized},
		{"API without the token", base + "/api/activity", nil, http.StatusUnauthorized},
		{"wrong token", base + "/?token=guess", nil, http.StatusUnauthorized},
		{"rebound host name", printed, map[string]string{"Host": "rebind.example:" + pu.Port()}, http.StatusForbidden},
		{"the printed URL", printed, nil, http.StatusSeeOther},
	} {
		if got := status(t, c.url, c.header); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}

	b := newBrowser(t, base)
	b.run("open the printed URL", wait, chromedp.Navigate(printed), visible(`[data-stat="totals.events"]`))
	var href string
	b.js(`location.href`, &href)
	if strings.Contains(href, "token") {
		t.Errorf("the token stays in the address bar: %s", href)
	}

	// Overview: the numbers are stats --json's for the window shown.
	since, until := b.window()
	st := u.stats(since, until)
	if st.Totals.Events == 0 || st.Totals.Errors == 0 || st.Totals.Sessions != 2 {
		t.Fatalf("stats --json: %+v; want events, failures and 2 sessions", st.Totals)
	}
	b.checkOverview(st)
	b.shot("overview")

	// Keyboard: Tab from the top reaches the views; Enter opens one.
	b.run("keyboard", wait, do(`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`))
	var focused string
	for i := 0; i < 8 && focused != "Live activity"; i++ {
		b.run("tab", wait, chromedp.KeyEvent(kb.Tab))
		b.js(`document.activeElement.textContent.trim()`, &focused)
	}
	if focused != "Live activity" {
		t.Fatalf("Tab never reached the Live activity link (last focus %q)", focused)
	}
	b.run("enter", wait, chromedp.KeyEvent(kb.Enter), visible(`#pause`))

	// Live activity: a session started now shows up without a reload.
	b.view("#/activity?since=1h", `#events tr`)
	b.js(`window.sameDocument = true`, nil)
	b.shot("activity")
	u.poisonedSession()
	newest := u.activity("--limit", "1").Events
	if len(newest) != 1 {
		t.Fatal("no events after the third session")
	}
	seen := time.Now()
	b.until("the new session's events appear", fmt.Sprintf(`document.querySelector('#events tr[data-id=%q]') !== null`, newest[0].ID), 5*time.Second)
	if d := time.Since(seen); d > 2*time.Second {
		t.Errorf("a new event took %v to appear, want under 2s", d)
	}
	var same bool
	b.js(`window.sameDocument === true`, &same)
	if !same {
		t.Error("the page reloaded to show new events")
	}

	// Pause and resume, kept in the URL.
	b.run("pause", wait, click(`#pause`))
	b.until("paused in the URL", `location.hash.includes('paused=true') && document.querySelector('#pause').getAttribute('aria-pressed') === 'true'`, 5*time.Second)
	b.run("resume", wait, click(`#pause`))
	b.until("resumed", `!location.hash.includes('paused') && document.querySelector('#pause').textContent === 'Pause'`, 5*time.Second)

	// Failed calls only: the checkbox filters, and the filter is in the URL.
	all := u.activity("--since", "1h").Events
	nFailed := failedCount(all)
	if nFailed < 3 {
		t.Fatalf("%d failed replies recorded, want at least 3 (one per session)", nFailed)
	}
	b.run("tick failed only", wait, click(`input[name=failed]`))
	b.until("only the failed replies listed", fmt.Sprintf(`location.hash.includes('failed=true') &&
		document.querySelectorAll('#events tr').length === %d &&
		[...document.querySelectorAll('#events tr')].every(r => r.dataset.failed === 'true')`, nFailed), 10*time.Second)
	b.shot("activity-failed")
	var shared string
	b.js(`location.hash`, &shared)

	// A bookmarked filtered view opens as it was.
	b.run("reload the filtered view", wait, chromedp.Navigate(base+"/"+shared), visible(`#events tr`))
	var checked bool
	b.js(`document.querySelector('input[name=failed]').checked`, &checked)
	if !checked {
		t.Error("the failed filter is not restored from the URL")
	}

	// One call: both halves of a failed call, side by side.
	b.run("open a failed call", wait, click(`#events tr a`),
		visible(`[data-half=request] pre`),
		visible(`[data-half=response] pre`),
		visible(`[data-field=error]`))
	var halves [2]string
	b.js(`[document.querySelector('[data-half=request] pre').textContent, document.querySelector('[data-half=response] pre').textContent]`, &halves)
	if !strings.Contains(halves[0], `"method": "tools/call"`) || !strings.Contains(halves[1], `"jsonrpc": "2.0"`) {
		t.Errorf("call halves are not the pretty-printed request and reply:\n%s\n---\n%s", halves[0], halves[1])
	}
	b.shot("call")

	// Alerts: the poisoned tool, linked to the tools/list reply naming it.
	b.view("#/alerts?since=1h", `[data-alerts=poisoned] li`)
	var alert string
	b.js(`document.querySelector('[data-alerts=poisoned] li').textContent`, &alert)
	if !strings.Contains(alert, poisonedTool) {
		t.Errorf("poisoned alert %q does not name %s", alert, poisonedTool)
	}
	var changed string
	b.js(`(document.querySelector('[data-alerts=changed] li') || {}).textContent || ''`, &changed)
	if !strings.Contains(changed, "definition_changed:"+changedTool) {
		t.Errorf("changed definitions: %q, want %s named", changed, changedTool)
	}
	b.shot("alerts")
	b.run("open the alert's call", wait, click(`[data-alerts=poisoned] li a`),
		visible(`[data-half=response] pre`))
	b.js(`document.querySelector('[data-half=response] pre').textContent`, &alert)
	if !strings.Contains(alert, "<IMPORTANT>") {
		t.Errorf("the alert's call does not show the poisoned description:\n%.500s", alert)
	}

	// Sessions and one session's timeline.
	b.view("#/sessions?since=1h", `tr[data-session]`)
	var rows int
	b.js(`document.querySelectorAll('tr[data-session]').length`, &rows)
	if rows != 3 {
		t.Errorf("sessions view lists %d sessions, want 3", rows)
	}
	b.shot("sessions")
	b.run("open a session", wait, click(`tr[data-session] a`), visible(`tr[data-id]`))
	b.shot("session")

	// Narrow window and dark scheme.
	b.run("narrow", wait, viewport(390, 844))
	b.view("#/overview?since=1h", `[data-stat="totals.events"]`)
	var overflow bool
	b.js(`document.documentElement.scrollWidth > window.innerWidth`, &overflow)
	if overflow {
		t.Error("the overview scrolls sideways in a 390px window")
	}
	b.shot("narrow")
	b.run("wide and dark", wait, viewport(1280, 800), media(true))
	b.view("#/overview?since=24h", `[data-stat="totals.events"]`)
	var bg string
	b.js(`getComputedStyle(document.body).backgroundColor`, &bg)
	if bg == "rgb(247, 248, 250)" {
		t.Errorf("dark preference ignored: background %s", bg)
	}
	b.shot("dark")
	b.clean()
}

// TestLocalDashboardEmptyAndGone: an empty store says so, and a server
// that went away is reported as unreachable.
func TestLocalDashboardEmptyAndGone(t *testing.T) {
	u := newUser(t)
	p, printed := start(t, u.env, "", u.cli, "ui", "--no-open")
	pu, _ := url.Parse(printed)
	b := newBrowser(t, "http://"+pu.Host)
	b.run("open", wait, chromedp.Navigate(printed), visible(`[data-empty=store]`))
	var text string
	b.js(`document.querySelector('[data-empty=store]').textContent`, &text)
	if !strings.Contains(text, "kilometers monitor --") {
		t.Errorf("empty store message %q does not say how to record", text)
	}
	b.shot("empty")
	b.view("#/activity", `.empty:not([hidden])`)
	p.stop(t)
	b.until("unreachable notice", `!document.querySelector('#notice').hidden && document.querySelector('#notice').textContent.includes('Cannot reach')`, 10*time.Second)
	// The page's failed fetches are what this test is about.
	b.forget()
}

// TestTeamDashboard_Postgres opens the page functions/local serves, signs
// in with an API key, and checks it against the API the CLI ships to.
func TestTeamDashboard_Postgres(t *testing.T) {
	_, local := bins.get(t)
	dsn := pgtest.MustCreateDatabase(t)
	const admin = "browsertest-admin-token"
	env := append(os.Environ(), "DATABASE_URL="+dsn, "KILOMETERS_ADMIN_TOKEN="+admin)
	_, addr := start(t, env, "listening on http://", local, "-addr", "127.0.0.1:0")
	base := "http://" + addr
	key := createTenant(t, base, admin)

	u := newUser(t, "KILOMETERS_API_URL="+base, "KILOMETERS_API_KEY="+key)
	u.everythingSession()
	u.poisonedSession()
	u.run("sync")

	if got := status(t, base+"/api/stats", nil); got != http.StatusUnauthorized {
		t.Errorf("API without a key: %d, want 401", got)
	}
	if got := status(t, base+"/api/stats", map[string]string{"Authorization": "Bearer km_live_nope"}); got != http.StatusUnauthorized {
		t.Errorf("API with a wrong key: %d, want 401", got)
	}

	b := newBrowser(t, base)
	b.run("open", wait, chromedp.Navigate(base+"/"), visible(`#apikey`))
	b.shot("signin")
	b.run("wrong key", wait, chromedp.SendKeys(chromedp.CSS(`#apikey`), "km_live_wrong"), click(`.signin button[type=submit]`))
	b.until("key refused", `document.querySelector('.signin .error-box') && document.querySelector('.signin .error-box').textContent.includes('refused')`, 10*time.Second)
	b.run("right key", wait, do(`document.querySelector("#apikey").value = ""`), chromedp.SendKeys(chromedp.CSS(`#apikey`), key),
		click(`.signin button[type=submit]`), visible(`[data-stat="totals.events"]`))
	// The 401s of the page before the key and of the wrong key are the
	// point of the steps above; from here on nothing may fail.
	b.forget()
	var where [2]string
	b.js(`[location.href, sessionStorage.getItem('kilometers.apiKey')]`, &where)
	if strings.Contains(where[0], key) || where[1] != key {
		t.Errorf("key in the URL or not in session storage: %v", where)
	}

	since, until := b.window()
	st := u.stats(since, until) // from the API: one is configured
	if st.Totals.Sessions != 2 || st.Totals.Errors == 0 {
		t.Fatalf("API stats: %+v; want 2 sessions with failures", st.Totals)
	}
	b.checkOverview(st)
	b.shot("team-overview")

	// The shipped payloads are redacted; the call view marks it.
	b.view("#/activity?since=1h&tool="+poisonedTool+"&kind=request", `#events tr a`)
	b.run("open the call with a token", wait, click(`#events tr a`),
		visible(`[data-half=request] mark.redacted`),
		visible(`[data-half=response] pre`))
	var req string
	b.js(`document.querySelector('[data-half=request] pre').textContent`, &req)
	if strings.Contains(req, secretArg) {
		t.Error("the team dashboard shows the unredacted token")
	}
	b.run("show the redaction", wait, visible(`[data-half=request] [data-field=redacted]`),
		do(`document.querySelector('[data-half=request] mark.redacted').scrollIntoView({block: 'center'})`))
	b.shot("team-call")

	b.view("#/alerts?since=1h", `[data-alerts=poisoned] li`)

	// Signing out forgets the key.
	b.run("sign out", wait, click(`#signout`), visible(`#apikey`))
	var left *string
	b.js(`sessionStorage.getItem('kilometers.apiKey')`, &left)
	if left != nil {
		t.Errorf("key still in session storage after signing out: %q", *left)
	}
	b.clean()
}

func createTenant(t *testing.T, base, admin string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/admin/tenants", strings.NewReader(`{"name":"browsertest"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.APIKey == "" {
		t.Fatalf("create tenant: %d %v", resp.StatusCode, err)
	}
	return out.APIKey
}
