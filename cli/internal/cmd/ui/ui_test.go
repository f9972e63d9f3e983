package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/stats"
	"github.com/kilometers-ai/kilometers/shared/webui"
)

func TestCheckAddr(t *testing.T) {
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"127.0.0.1:8377", true},
		{"127.1.2.3:8377", true},
		{"[::1]:0", true},
		{"localhost:0", true},
		{"0.0.0.0:0", false},
		{"[::]:0", false},
		{":8377", false},
		{"192.168.1.10:8377", false},
		{"example.com:80", false},
		{"127.0.0.1", false},
		{"127.0.0.1:http-alt-nope", false},
	} {
		err := CheckAddr(c.addr)
		if (err == nil) != c.ok {
			t.Errorf("CheckAddr(%q) = %v, want ok=%v", c.addr, err, c.ok)
		}
		var fe *cmdutil.FlagError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("CheckAddr(%q): %v is not a usage error", c.addr, err)
		}
	}
}

// running is `kilometers ui` started by Run over a store holding a sample
// batch.
type running struct {
	url    string // as printed, with the token
	base   string // http://host:port
	token  string
	store  *store.Store
	opened []string
	stdout *bytes.Buffer
}

func startUI(t *testing.T, noOpen bool) *running {
	t.Helper()
	home := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := apitest.SampleBatch(time.Now().Add(-time.Hour), 3)
	for _, sess := range b.Sessions {
		w, err := st.NewWriter(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.RecordSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Events {
			if e.SessionID == sess.ID {
				if err := w.Record(ctx, []event.Event{e}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r := &running{store: st, stdout: &bytes.Buffer{}}
	ready := make(chan string, 1)
	runCtx, cancel := context.WithCancel(ctx)
	opts := &Options{
		IO:     &cmdutil.IOStreams{In: strings.NewReader(""), Out: r.stdout, ErrOut: io.Discard},
		Config: func() (*config.Config, error) { return config.Load(home, func(string) string { return "" }) },
		Now:    time.Now,
		Open:   func(u string) error { r.opened = append(r.opened, u); return nil },
		Ready:  func(u string) { ready <- u },
		Addr:   DefaultAddr,
		NoOpen: noOpen,
	}
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, opts) }()
	select {
	case r.url = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after interrupt: %v, want nil", err)
		}
	})
	u, err := url.Parse(r.url)
	if err != nil {
		t.Fatal(err)
	}
	r.base = "http://" + u.Host
	r.token = u.Query().Get(TokenParam)
	return r
}

// client does not follow redirects and keeps no cookies, so each test says
// what it sends.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (r *running) get(t *testing.T, path string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return r.do(t, http.MethodGet, path, header)
}

func (r *running) do(t *testing.T, method, path string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (r *running) cookie() map[string]string {
	u, _ := url.Parse(r.base)
	return map[string]string{"Cookie": "kilometers_ui_" + u.Port() + "=" + r.token}
}

func TestRunPrintsOneURLAndOpensIt(t *testing.T) {
	r := startUI(t, false)
	if got := r.stdout.String(); got != r.url+"\n" {
		t.Errorf("stdout %q, want the URL on one line", got)
	}
	if !strings.HasPrefix(r.url, "http://127.0.0.1:") || len(r.token) < 40 {
		t.Errorf("URL %q: want http://127.0.0.1:PORT/?token=<random>", r.url)
	}
	if len(r.opened) != 1 || r.opened[0] != r.url {
		t.Errorf("opened %v, want [%s]", r.opened, r.url)
	}
	if r2 := startUI(t, true); len(r2.opened) != 0 || r2.token == r.token {
		t.Errorf("--no-open opened %v; tokens %q and %q must differ per run", r2.opened, r.token, r2.token)
	}
}

func TestTokenThenCookie(t *testing.T) {
	r := startUI(t, true)
	// The first visit trades the token for a cookie and drops it from the URL.
	resp, _ := r.get(t, "/?"+TokenParam+"="+r.token, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("first visit: %d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	cs := resp.Cookies()
	if len(cs) != 1 || cs[0].Value != r.token || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Path != "/" {
		t.Fatalf("cookie %+v, want the token, HttpOnly, SameSite=Strict, Path=/", cs)
	}
	resp, body := r.get(t, "/", r.cookie())
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`<script src="app.js"`)) {
		t.Fatalf("page with cookie: %d %.80s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != webui.ContentSecurityPolicy {
		t.Errorf("CSP %q", got)
	}
	for _, p := range []string{"/app.js", "/app.css", "/favicon.svg"} {
		if resp, _ := r.get(t, p, r.cookie()); resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestRefusals(t *testing.T) {
	r := startUI(t, true)
	u, _ := url.Parse(r.base)
	foreign := map[string]string{"Host": "attacker.example:" + u.Port()}
	for k, v := range r.cookie() {
		foreign[k] = v
	}
	for _, c := range []struct {
		name   string
		method string
		path   string
		header map[string]string
		status int
	}{
		{"page without token", "GET", "/", nil, 401},
		{"api without token", "GET", "/api/stats", nil, 401},
		{"wrong token", "GET", "/?token=nope", nil, 401},
		{"wrong cookie", "GET", "/api/activity", map[string]string{"Cookie": "kilometers_ui_" + u.Port() + "=nope"}, 401},
		{"another run's cookie name", "GET", "/api/activity", map[string]string{"Cookie": "kilometers_ui_1=" + r.token}, 401},
		{"bearer instead of cookie", "GET", "/api/activity", map[string]string{"Authorization": "Bearer " + r.token}, 401},
		{"foreign host with cookie", "GET", "/api/activity", foreign, 403},
		{"foreign host with token", "GET", "/?token=" + r.token, map[string]string{"Host": "attacker.example:" + u.Port()}, 403},
		{"loopback host on another port", "GET", "/", merge(r.cookie(), map[string]string{"Host": "127.0.0.1:1"}), 403},
		{"write", "POST", "/api/events", r.cookie(), 405},
		{"delete", "DELETE", "/api/admin/keys/x", r.cookie(), 405},
		{"admin routes are not served", "GET", "/api/admin/tenants", r.cookie(), 404},
		{"unknown file", "GET", "/secret.txt", r.cookie(), 404},
	} {
		resp, body := r.do(t, c.method, c.path, c.header)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.status)
		}
		if c.status == 401 || c.status == 403 || c.status == 405 {
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
				t.Errorf("%s: body %q is not the API's error shape", c.name, body)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("%s: refused answer sets a cookie", c.name)
			}
		}
	}
	// localhost with the right port is the same server.
	if resp, _ := r.get(t, "/api/stats", merge(r.cookie(), map[string]string{"Host": "localhost:" + u.Port()})); resp.StatusCode != 200 {
		t.Errorf("Host localhost:%s: %d, want 200", u.Port(), resp.StatusCode)
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestAPIShapes holds the local routes to the local store's own answers:
// the JSON is httpapi's, over the same data the CLI reads.
func TestAPIShapes(t *testing.T) {
	r := startUI(t, true)
	ctx := context.Background()
	now := time.Now()

	resp, body := r.get(t, "/api/stats?since=3h", r.cookie())
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("stats: %d %s, Cache-Control %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
	var got stats.Stats
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	q, err := stats.ParseQuery(url.Values{"since": {"3h"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.store.Stats(ctx, stats.Query{Since: got.Since, Until: got.Until})
	if err != nil {
		t.Fatal(err)
	}
	if !q.Since.Equal(got.Since) && !q.Since.Add(-time.Minute).Equal(got.Since) {
		t.Errorf("stats window starts %v, want about %v", got.Since, q.Since)
	}
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(wantJSON, gotJSON) || got.Totals.Events == 0 {
		t.Errorf("stats over HTTP:\n%s\nwant the store's:\n%s", gotJSON, wantJSON)
	}

	resp, body = r.get(t, "/api/activity?failed=true&limit=1000", r.cookie())
	if resp.StatusCode != 200 {
		t.Fatalf("activity: %d %s", resp.StatusCode, body)
	}
	var page activity.Page
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	wantPage, err := r.store.Activity(ctx, activity.Query{Failed: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) == 0 || len(page.Events) != len(wantPage.Events) {
		t.Fatalf("failed events over HTTP: %d, store: %d (want the same, more than 0)", len(page.Events), len(wantPage.Events))
	}
	for i, e := range page.Events {
		if !e.Failed() || e.ID != wantPage.Events[i].ID {
			t.Errorf("event %d: %s failed=%v, want %s", i, e.ID, e.Failed(), wantPage.Events[i].ID)
		}
	}
	if resp, body := r.get(t, "/api/activity?kind=bogus", r.cookie()); resp.StatusCode != 400 {
		t.Errorf("bad query: %d %s, want 400", resp.StatusCode, body)
	}

	// Sessions and one call, as the store answers them.
	resp, body = r.get(t, "/api/sessions?since=3h", r.cookie())
	var sp activity.SessionPage
	if err := json.Unmarshal(body, &sp); resp.StatusCode != 200 || err != nil || len(sp.Sessions) != 2 {
		t.Fatalf("sessions: %d %s", resp.StatusCode, body)
	}
	reply := page.Events[0]
	resp, body = r.get(t, "/api/events/"+reply.ID, r.cookie())
	var call activity.Call
	if err := json.Unmarshal(body, &call); resp.StatusCode != 200 || err != nil || call.Request == nil || call.Response == nil || call.Response.ID != reply.ID {
		t.Fatalf("call of %s: %d %s", reply.ID, resp.StatusCode, body)
	}
	wantCall, err := r.store.Call(ctx, reply.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(call)
	w, _ := json.Marshal(wantCall)
	if !bytes.Equal(a, w) {
		t.Errorf("call over HTTP:\n%s\nwant the store's:\n%s", a, w)
	}
	if resp, body := r.get(t, "/api/events/01970000-0000-7000-8000-000000000000", r.cookie()); resp.StatusCode != 404 {
		t.Errorf("unknown event: %d %s, want 404", resp.StatusCode, body)
	}
}

func TestRunRefuses(t *testing.T) {
	home := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		name, addr string
		usage      bool
		want       string
	}{
		{"another machine could connect", "0.0.0.0:0", true, "loopback address only"},
		{"not host:port", "8377", true, "want host:port"},
		{"port taken", busy.Addr().String(), false, "listen on " + busy.Addr().String()},
	} {
		var out bytes.Buffer
		opened := false
		err := Run(context.Background(), &Options{
			IO:     &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: io.Discard},
			Config: func() (*config.Config, error) { return config.Load(home, func(string) string { return "" }) },
			Now:    time.Now,
			Open:   func(string) error { opened = true; return nil },
			Addr:   c.addr,
		})
		var fe *cmdutil.FlagError
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.As(err, &fe) != c.usage {
			t.Errorf("%s: %v, want an error with %q (usage error: %v)", c.name, err, c.want, c.usage)
		}
		if out.Len() != 0 || opened {
			t.Errorf("%s: printed %q, opened a browser: %v", c.name, out.String(), opened)
		}
	}
}

// TestLocalStoreIsReadOnly: even if a write route were mounted, the
// adapter refuses every write, and authenticates the run's token only.
func TestLocalStoreIsReadOnly(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := Local(st, "tok")
	for name, err := range map[string]error{
		"ingest":        func() error { _, err := l.Ingest(ctx, LocalTenant, event.Batch{}); return err }(),
		"add tenant":    func() error { _, _, _, err := l.AddTenant(ctx, backend.Actor{}, "x", nil); return err }(),
		"delete tenant": l.DeleteTenant(ctx, backend.Actor{}, LocalTenant),
		"create key":    func() error { _, _, err := l.CreateKey(ctx, backend.Actor{}, LocalTenant, nil); return err }(),
		"revoke key":    func() error { _, err := l.RevokeKey(ctx, backend.Actor{}, "k"); return err }(),
		"maintenance":   func() error { _, err := l.Maintain(ctx, backend.Actor{}); return err }(),
	} {
		if backend.ErrorCode(err) != backend.EMETHOD {
			t.Errorf("%s: %v, want refused as read-only", name, err)
		}
	}
	if k, err := l.Authenticate(ctx, "tok"); err != nil || k.TenantID != LocalTenant || k.Allows(backend.ScopeIngest) || !k.Allows(backend.ScopeRead) {
		t.Errorf("the token: %+v %v, want a read-only key of the local tenant", k, err)
	}
	for _, key := range []string{"", "tok2", "to"} {
		if _, err := l.Authenticate(ctx, key); backend.ErrorCode(err) != backend.EUNAUTHORIZED {
			t.Errorf("key %q: %v, want unauthorized", key, err)
		}
	}
	if _, err := Local(st, "").Authenticate(ctx, ""); backend.ErrorCode(err) != backend.EUNAUTHORIZED {
		t.Errorf("no token configured: %v, want unauthorized", err)
	}
	if _, err := l.Call(ctx, LocalTenant, "01970000-0000-7000-8000-000000000000"); backend.ErrorCode(err) != backend.ENOTFOUND {
		t.Errorf("unknown call: %v, want not_found", err)
	}
}
