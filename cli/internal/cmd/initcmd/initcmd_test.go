package initcmd

import (
	"bytes"
	"context"
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
	for _, want := range []string{"api_url          " + srv.URL + "  file", config.MaskKey(goodKey), "capture_mode     metadata", "batch_size       100", "flag", "flush_interval   9s", "env", "retention_days   30", "default", "shipping: on"} {
		if !strings.Contains(s, want) {
			t.Errorf("config output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, goodKey) {
		t.Errorf("config printed the key:\n%s", s)
	}
}
