package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

const adminToken = "smoke-test-admin-token"

// realAPI serves the real handlers over real PostgreSQL (what
// functions/local and the Lambda functions mount), through wrap.
func realAPI(t *testing.T, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	// A database of its own: the server's default one is shared with
	// every other checkout and run on this machine.
	db := pgtest.MustOpenDB(t)
	var h http.Handler = httpapi.New(httpapi.Config{Store: db, AdminToken: httpapi.StaticToken(adminToken)})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func config(url string, out io.Writer) Config {
	return Config{URL: url, AdminToken: adminToken, Wait: 0, Client: &http.Client{Timeout: 10 * time.Second}, Out: out}
}

func TestRunPassesAgainstTheRealAPI_Postgres(t *testing.T) {
	srv := realAPI(t, nil)
	var out bytes.Buffer
	if err := Run(context.Background(), config(srv.URL, &out)); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	n := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "ok   ") {
			n++
		}
	}
	if n != 8 {
		t.Errorf("%d steps passed, want 8:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "passed 8 checks") {
		t.Errorf("no summary line:\n%s", out.String())
	}
}

// tamper rewrites the answer of the first request matching method and path
// prefix: status and body come from fix, given the real answer.
func tamper(method, prefix string, fix func(status int, body []byte) (int, []byte)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != method || !strings.HasPrefix(r.URL.Path, prefix) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			status, body := fix(rec.Code, rec.Body.Bytes())
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(body)
		})
	}
}

// edit changes one JSON field of an answer.
func edit(t *testing.T, change func(m map[string]any)) func(int, []byte) (int, []byte) {
	return func(status int, body []byte) (int, []byte) {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("tampered answer is not JSON: %s", body)
			return status, body
		}
		change(m)
		b, _ := json.Marshal(m)
		return status, b
	}
}

func TestRunFailsOnEveryBrokenStep_Postgres(t *testing.T) {
	constant := func(status int, body string) func(int, []byte) (int, []byte) {
		return func(int, []byte) (int, []byte) { return status, []byte(body) }
	}
	cases := []struct {
		name string
		wrap func(http.Handler) http.Handler
		want string
	}{
		{"database down", tamper("GET", "/health", constant(503, `{"status":"unavailable","database":"unreachable"}`)),
			"health: not ok after 0s: GET /health: status 503, want 200"},
		{"health says degraded", tamper("GET", "/health", constant(200, `{"status":"ok","database":"unreachable"}`)),
			"want status ok and database ok"},
		{"admin token refused", tamper("POST", "/api/admin/tenants", constant(401, `{"error":{"code":"unauthorized"}}`)),
			"create tenant: POST /api/admin/tenants: status 401, want 201"},
		{"tenant without key", tamper("POST", "/api/admin/tenants", edit(t, func(m map[string]any) { delete(m, "api_key") })),
			"create tenant: answer lacks tenant_id or api_key"},
		{"stats open to anyone", tamper("GET", "/api/stats", func(status int, body []byte) (int, []byte) {
			if status == 401 {
				return 200, []byte(`{}`)
			}
			return status, body
		}), "data routes need a key: GET /api/stats: status 200, want 401"},
		{"ingest not JSON", tamper("POST", "/api/events/batch", constant(200, `<html>`)),
			"ingest batch: POST /api/events/batch: answer is not the expected JSON"},
		{"ingest answer without counts", tamper("POST", "/api/events/batch", constant(200, `{}`)),
			"ingest batch: answer lacks accepted or duplicates"},
		{"ingest not idempotent", tamper("POST", "/api/events/batch", edit(t, func(m map[string]any) {
			m["accepted"], m["duplicates"] = 4.0, 0.0
		})), "ingest again gzipped (all duplicates): accepted 4, duplicates 0; want 0 and 4"},
		{"activity loses an event", tamper("GET", "/api/activity", edit(t, func(m map[string]any) {
			if ev, ok := m["events"].([]any); ok && len(ev) > 0 {
				m["events"] = ev[1:]
			}
		})), "activity: events"},
		{"stats miscounts", tamper("GET", "/api/stats", edit(t, func(m map[string]any) {
			if tot, ok := m["totals"].(map[string]any); ok {
				tot["errors"] = 2.0
			}
		})), "stats: totals events=4 requests=2 errors=2 sessions=1; want 4, 2, 1, 1"},
		{"stats without the tool", tamper("GET", "/api/stats", edit(t, func(m map[string]any) {
			if _, ok := m["totals"]; ok {
				m["tools"] = []any{}
			}
		})), "stats: tools lacks " + smokeTool},
		{"revoked key still works", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete {
					_, _ = io.WriteString(w, `{"revoked":true}`) // claims success, revokes nothing
					return
				}
				next.ServeHTTP(w, r)
			})
		}, "create and revoke a second key: revoked key: GET /api/stats: status 200, want 401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := realAPI(t, tc.wrap)
			var out bytes.Buffer
			err := Run(context.Background(), config(srv.URL, &out))
			if err == nil {
				t.Fatalf("Run passed; want failure %q\n%s", tc.want, out.String())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRunFailsWhenNothingListens(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := Run(context.Background(), config(url, io.Discard))
	if err == nil || !strings.Contains(err.Error(), "health: not ok after 0s: GET /health:") {
		t.Fatalf("Run = %v, want a health failure", err)
	}
}

func TestHealthWaitsForTheAPI(t *testing.T) {
	// The first answers are 503 (a cold start); the wait covers them.
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok","database":"ok"}`)
	}))
	defer srv.Close()
	s := &smoke{cfg: config(srv.URL, io.Discard)}
	s.cfg.Wait = time.Minute
	if err := s.health(context.Background()); err != nil {
		t.Fatalf("health: %v", err)
	}
	if calls != 2 {
		t.Errorf("%d calls, want 2", calls)
	}
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		wantURL string
		wantTok string
	}{
		{"flags", []string{"-url", "https://api.example.com/", "-admin-token", "t"}, nil, "", "https://api.example.com", "t"},
		{"environment", nil, map[string]string{"KILOMETERS_API_URL": "http://127.0.0.1:8080", "KILOMETERS_ADMIN_TOKEN": "e"}, "", "http://127.0.0.1:8080", "e"},
		{"flag beats environment", []string{"-admin-token", "f"}, map[string]string{"KILOMETERS_API_URL": "http://x", "KILOMETERS_ADMIN_TOKEN": "e"}, "", "http://x", "f"},
		{"no url", []string{"-admin-token", "t"}, nil, "no API URL", "", ""},
		{"not http", []string{"-url", "api.example.com", "-admin-token", "t"}, nil, "want an http:// or https:// URL", "", ""},
		{"no token", []string{"-url", "http://x"}, nil, "no admin token", "", ""},
		{"positional", []string{"-url", "http://x", "-admin-token", "t", "extra"}, nil, "unexpected arguments", "", ""},
		{"bad timeout", []string{"-url", "http://x", "-admin-token", "t", "-timeout", "0s"}, nil, "-timeout must be positive", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.URL != tc.wantURL || cfg.AdminToken != tc.wantTok {
				t.Errorf("url %q token %q, want %q %q", cfg.URL, cfg.AdminToken, tc.wantURL, tc.wantTok)
			}
		})
	}
}
