package initcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmd/configcmd"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
)

const goodKey = "km_live_0123456789abcdefghij"

func fakeAPI(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/health":
			w.Write([]byte(`{"status":"ok","database":"ok"}`))
		case r.Header.Get("Authorization") != "Bearer "+goodKey:
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"unauthorized","message":"unknown API key"}}`))
		default:
			w.Write([]byte(`{"events":[]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func factory(home, stdin string, env map[string]string) (*cmdutil.Factory, *bytes.Buffer) {
	var out bytes.Buffer
	getenv := func(k string) string { return env[k] }
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &out}, Now: time.Now, Getenv: getenv}
	f.Home = func() (string, error) { return home, nil }
	f.Config = func() (*config.Config, error) { return config.Load(home, getenv) }
	return f, &out
}

func TestInitWritesCheckedConfig(t *testing.T) {
	srv := fakeAPI(t)
	home := t.TempDir()

	f, _ := factory(home, "km_wrong_key_aaaaaaaaaaaa\n", nil)
	cmd := NewCmd(f)
	cmd.SetArgs([]string{"--api-url", srv.URL, "--api-key-stdin"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "refused the key") {
		t.Fatalf("bad key: err = %v", err)
	}
	if _, err := os.Stat(config.Path(home)); err == nil {
		t.Fatal("config written for a refused key")
	}

	f, out := factory(home, goodKey+"\n", nil)
	cmd = NewCmd(f)
	cmd.SetArgs([]string{"--api-url", srv.URL + "/", "--api-key-stdin", "--capture-mode", "metadata", "--batch-size", "250"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	fi, err := os.Stat(config.Path(home))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if strings.Contains(out.String(), goodKey) {
		t.Errorf("init printed the key:\n%s", out)
	}

	// config shows the effective settings, masked, with their sources.
	f, out = factory(home, "", map[string]string{"KILOMETERS_FLUSH_INTERVAL": "9s"})
	cc := configcmd.NewCmd(f)
	cc.SetArgs([]string{"--batch-size", "100"})
	if err := cc.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	rows := map[string][2]string{}
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			rows[f[0]] = [2]string{f[1], f[2]}
		}
	}
	for key, want := range map[string][2]string{
		config.KeyAPIURL:        {srv.URL, "file"},
		config.KeyAPIKey:        {config.MaskKey(goodKey), "file"},
		config.KeyCaptureMode:   {"metadata", "file"},
		config.KeyBatchSize:     {"100", "flag"},
		config.KeyShipInterval:  {"9s", "env"},
		config.KeyRetentionDays: {"30", "default"},
	} {
		if rows[key] != want {
			t.Errorf("config shows %s as %v, want %v:\n%s", key, rows[key], want, s)
		}
	}
	if !strings.Contains(s, "shipping: on") {
		t.Errorf("config does not say shipping is on:\n%s", s)
	}
	if strings.Contains(s, goodKey) {
		t.Errorf("config printed the key:\n%s", s)
	}
}

func TestInitFailuresAndJSON(t *testing.T) {
	srv := fakeAPI(t)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more

	dbDown := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"unavailable","message":"database unreachable"}}`))
			return
		}
		w.Write([]byte(`{"events":[]}`))
	}))
	t.Cleanup(dbDown.Close)

	cases := []struct {
		name     string
		url, key string
		args     []string
		wantErr  string // empty: success
		wantJSON Output
		written  bool
	}{
		{name: "unreachable", url: downURL, key: goodKey, wantErr: "cannot reach the API at " + downURL},
		{name: "bad key", url: srv.URL, key: "km_wrong_key_aaaaaaaaaaaa", wantErr: "refused the key " + config.MaskKey("km_wrong_key_aaaaaaaaaaaa") + ": unknown API key"},
		{name: "missing key", url: srv.URL, wantErr: "an API key is required"},
		{name: "bad capture mode", url: srv.URL, key: goodKey, args: []string{"--capture-mode", "everything"}, wantErr: "capture_mode"},
		{name: "no verify writes anyway", url: downURL, key: goodKey, args: []string{"--no-verify"}, written: true,
			wantJSON: Output{OK: true, APIURL: downURL, APIKey: config.MaskKey(goodKey), CaptureMode: "redacted"}},
		{name: "database down warns and writes", url: dbDown.URL, key: goodKey, written: true,
			wantJSON: Output{OK: true, APIURL: dbDown.URL, APIKey: config.MaskKey(goodKey), CaptureMode: "redacted", Verified: true, Database: "down: database unreachable"}},
		{name: "ok", url: srv.URL, key: goodKey, written: true,
			wantJSON: Output{OK: true, APIURL: srv.URL, APIKey: config.MaskKey(goodKey), CaptureMode: "redacted", Verified: true, Database: "ok"}},
	}
	for _, c := range cases {
		for _, asJSON := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/json=%v", c.name, asJSON), func(t *testing.T) {
				home := t.TempDir()
				env := map[string]string{"KILOMETERS_API_URL": c.url, "KILOMETERS_API_KEY": c.key}
				var out, errOut bytes.Buffer
				f, _ := factory(home, "", env)
				f.IO.Out, f.IO.ErrOut = &out, &errOut
				cmd := NewCmd(f)
				args := append([]string{}, c.args...)
				if asJSON {
					args = append(args, "--json")
				}
				cmd.SetArgs(args)
				cmd.SilenceUsage, cmd.SilenceErrors = true, true
				err := cmd.ExecuteContext(context.Background())
				if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				_, statErr := os.Stat(config.Path(home))
				if (statErr == nil) != c.written {
					t.Errorf("config written = %v, want %v", statErr == nil, c.written)
				}
				if strings.Contains(out.String()+errOut.String(), goodKey) {
					t.Errorf("the key was printed:\n%s%s", out.String(), errOut.String())
				}
				if !asJSON {
					return
				}
				var got Output
				if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil {
					t.Fatalf("--json printed %q: %v", out.String(), jerr)
				}
				want := c.wantJSON
				if c.wantErr != "" {
					if got.OK || !strings.Contains(got.Error, c.wantErr) {
						t.Errorf("--json on failure = %+v", got)
					}
					return
				}
				want.File = config.Path(home)
				if got != want {
					t.Errorf("--json = %+v\nwant     %+v", got, want)
				}
			})
		}
	}
}
