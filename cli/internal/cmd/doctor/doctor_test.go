package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/setup"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

func run(t *testing.T, c *config.Config, clients func(context.Context) ([]ClientConfig, error)) (Report, string, int) {
	t.Helper()
	var out bytes.Buffer
	opts := &Options{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &out}, Now: time.Now, JSON: true, Clients: clients,
		Config: func() (*config.Config, error) { return c, nil }}
	err := Run(context.Background(), opts)
	code := 0
	if err != nil {
		var e *cmdutil.ExitError
		if !errors.As(err, &e) {
			t.Fatalf("Run: %v", err)
		}
		code = e.Code
	}
	var r Report
	if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
		t.Fatalf("%v: %s", jerr, out.String())
	}
	opts.JSON = false
	out.Reset()
	Run(context.Background(), opts)
	return r, out.String(), code
}

func find(r Report, name string) Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{}
}

func TestHealthyLocalOnly(t *testing.T) {
	c := config.Defaults(t.TempDir())
	r, text, code := run(t, c, nil)
	if code != 0 || !r.OK {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	if got := find(r, "API"); got.Status != Info || !strings.Contains(got.Detail, "no API configured") {
		t.Errorf("API check %+v", got)
	}
	if got := find(r, "capture_mode"); got.Detail != "redacted (default)" {
		t.Errorf("capture_mode check %+v", got)
	}
	if !strings.Contains(text, "Nothing needs your attention.") || !strings.Contains(text, "✓ local store:") {
		t.Errorf("text:\n%s", text)
	}
}

func TestNeedsAttention(t *testing.T) {
	home := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.NewWriter(ctx, "0196f1c2-6e00-7a55-8c1d-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	sess := event.Session{ID: "0196f1c2-6e00-7a55-8c1d-000000000001", Server: "files", StartedAt: time.Now().UTC(),
		Warnings: []string{`capture_mode "fulll" is not valid; recorded with "redacted"`}}
	if err := w.RecordSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := st.RecordShipStatus(errors.New("API answered 503")); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			json.NewEncoder(w).Encode(map[string]string{"status": "ok", "database": "ok"})
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"unauthorized","message":"unknown API key"}}`))
	}))
	defer srv.Close()
	c := config.Defaults(home)
	c.APIURL, c.APIKey = srv.URL, "km_live_0123456789abcdef"
	clients := func(context.Context) ([]ClientConfig, error) {
		return []ClientConfig{{Client: "Claude Desktop", Path: "/x/claude.json", Servers: 3, Wrapped: 2}}, nil
	}
	r, text, code := run(t, c, clients)
	if code != 1 || r.OK {
		t.Fatalf("exit %d, ok %v:\n%s", code, r.OK, text)
	}
	for name, want := range map[string]Status{"reachable": OK, "API key": Fail, "last shipping": Warn, "session 000000000001": Warn, "Claude Desktop": Warn} {
		if got := find(r, name); got.Status != want {
			t.Errorf("%s: %+v, want %s", name, got, want)
		}
	}
	if !strings.Contains(text, "unknown API key") || !strings.Contains(text, "kilometers config set api_key") || !strings.Contains(text, "fulll") {
		t.Errorf("text:\n%s", text)
	}
}

func TestUnreachableAPI(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := config.Defaults(t.TempDir())
	c.APIURL, c.APIKey = "http://"+addr, "km_live_0123456789abcdef"
	r, _, code := run(t, c, nil)
	if got := find(r, "reachable"); code != 1 || got.Status != Fail || !strings.Contains(got.Detail, "refused") {
		t.Errorf("exit %d, reachable %+v", code, got)
	}
}

func TestBadConfig(t *testing.T) {
	var out bytes.Buffer
	opts := &Options{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &out}, Now: time.Now,
		Config: func() (*config.Config, error) { return nil, errors.New("config.json:3:5: bad value") }}
	err := Run(context.Background(), opts)
	if code, ok := cmdutil.IsExit(err); !ok || code != 1 || !strings.Contains(out.String(), "config.json:3:5") {
		t.Errorf("err %v, out %s", err, out.String())
	}
}

// The clients section reports what setup finds in the user's files: how
// many stdio servers each runs behind the monitor, and a file it cannot
// read.
func TestClientConfigsFromSetup(t *testing.T) {
	home := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(home, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const km = "/opt/kilometers/bin/kilometers"
	write(".cursor/mcp.json", `{"mcpServers": {
  "fs": {"command": "`+km+`", "args": ["monitor", "--name", "fs", "--", "npx", "-y", "server-filesystem"]},
  "memory": {"command": "npx", "args": ["-y", "server-memory"]},
  "remote": {"url": "https://example.invalid/mcp"}
}}`)
	write(".codeium/windsurf/mcp_config.json", `{"mcpServers": {"x": {"command": "npx",}`)
	env := setup.Env{GOOS: "linux", UserHome: home, Getenv: func(string) string { return "" },
		Home: filepath.Join(home, ".km"), Executable: km, Now: time.Now}
	got := clientConfigs(setup.Status(env))
	byPath := map[string]ClientConfig{}
	for _, c := range got {
		byPath[c.Path] = c
	}
	cursor := byPath[filepath.Join(home, ".cursor/mcp.json")]
	if cursor.Servers != 2 || cursor.Wrapped != 1 || cursor.Error != "" {
		t.Errorf("cursor: %+v, want 1 of 2 stdio servers wrapped", cursor)
	}
	broken := byPath[filepath.Join(home, ".codeium/windsurf/mcp_config.json")]
	if broken.Error == "" || !strings.Contains(broken.Error, ":") {
		t.Errorf("broken windsurf file: %+v, want its error with a position", broken)
	}

	c := config.Defaults(filepath.Join(home, ".km"))
	r, _, code := run(t, c, func(context.Context) ([]ClientConfig, error) { return got, nil })
	if code == 0 || r.OK {
		t.Errorf("an unwrapped server and a broken file need attention: exit %d, %+v", code, r)
	}
}
